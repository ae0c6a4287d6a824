//! Kindling's one endpoint serves every AWS service an application touches. This crate decides
//! which service a request is for, the way AWS clients tell them apart, in one table
//! ([`dispatch`]); the server mounts each service's router behind it.

pub mod dispatch;

pub use dispatch::{Decision, RequestHead, ServiceId, classify, classify_form};
