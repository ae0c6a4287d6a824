//! The AWS wire protocols that Kindling's services share, below any one service and above
//! nothing: how a query-protocol request's form is read (`Action`, `Version`, nested members,
//! lists and maps in both the flattened and the `member`/`entry` forms), how XML results and
//! errors are written, JSON 1.0/1.1 and rest-json error bodies, the S3 error format, and the
//! timestamp styles of each protocol, and a guarded reader for small XML request bodies
//! ([`xml_read`]).
//!
//! A service defines its errors as a `thiserror` enum, implements [`WireError`] for it once
//! (status, code, message, fault), and renders every failure through the function of its
//! protocol ([`query::error_response`], [`json::error_response`], [`rest::json_error_response`],
//! [`rest::xml_error_response`]). Responses are `http::Response<Bytes>`, so any HTTP framework
//! can send them.
//!
//! *Invariant: no service semantics and no I/O; pure functions of their inputs.*

pub mod error;
pub mod eventstream;
pub mod json;
pub mod query;
pub mod rest;
pub mod time;
pub mod xml;
pub mod xml_read;

pub use error::{Fault, ProtocolError, WireError};

/// An HTTP response with a fully built body.
pub type Response = http::Response<bytes::Bytes>;
