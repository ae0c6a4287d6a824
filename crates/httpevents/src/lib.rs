//! Lambda's HTTP events, both ways.
//!
//! * [`v2::event`] builds a payload format 2.0 event (function URLs, HTTP APIs) and
//!   [`v2::response`] maps a function's result back to an HTTP response, including the
//!   inferred form for a result without `statusCode`.
//! * [`v1::event`] builds a payload format 1.0 event (REST APIs, HTTP APIs with 1.0) and
//!   [`v1::response`] maps the result (`statusCode` required; anything else is malformed).
//!
//! * [`stream::PreludeReader`] finds the HTTP prelude (status, headers, cookies) at the start
//!   of a streamed response (function URLs in `RESPONSE_STREAM` mode).
//!
//! Inputs are plain data ([`HttpRequest`], [`RequestContext`]); nothing here reads a clock,
//! a socket or the environment.

mod request;
mod response;
pub mod stream;
mod time;
pub mod v1;
pub mod v2;

pub use request::{BodyEncoding, HttpRequest, RequestContext, is_text_content_type};
pub use response::{HttpResponse, ResponseError};
pub use time::request_time;
