//! What Kindling's tests share, so that no suite carries its own copy: gating of tests that
//! need root ([`root`]), polling with a deadline instead of sleeping ([`wait`]), free loopback
//! ports ([`net`]), an HTTP body sink ([`sink`]) and zip fixtures ([`zip`]).
//!
//! *Invariant: a dev-dependency only; nothing here is linked into the server.*

// Test support panics by design: a failed expectation is a failed test.
#![allow(clippy::unwrap_used)]

pub mod net;
pub mod root;
pub mod sink;
pub mod wait;
pub mod zip;

pub use net::free_port;
pub use root::{cannot_run, is_root};
pub use sink::body_sink;
pub use wait::{eventually, eventually_async};
pub use zip::{zip_of, zip_with_modes};
