//! S3's REST-XML protocol over [`kindling_objects`]: the subset deployment tooling uses (the
//! SAM CLI, `aws s3`/`aws s3api`, `aws cloudformation package`, boto3's transfer manager).
//!
//! A request goes: addressing ([`addressing`]: path-style or virtual-hosted) → the operation
//! table ([`operation`]) → who may call it ([`auth`]: the edge's shared SigV4 gate) → the
//! operation's handler (`handlers/`), which reads headers ([`request`]) and XML bodies
//! ([`xml_in`]), streams uploads through [`body`] (plain or [`chunked`] `aws-chunked`) into
//! the object store, and renders XML or an object. Every failure is an [`error::S3Error`],
//! rendered in one place as S3's `<Error>` document.
//!
//! *Invariant: no storage here; the domain crate owns files and metadata. No upload or
//! download is held whole in memory.*

pub mod addressing;
pub mod auth;
pub mod body;
pub mod chunked;
pub mod error;
mod handlers;
pub mod operation;
mod preconditions;
pub mod request;
pub mod response;
pub mod xml_in;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use kindling_objects::Objects;

pub use addressing::Hosts;
pub use auth::S3Auth;
pub use error::S3Error;
pub use operation::Operation;

/// Settings of the S3 endpoint.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Host names `<bucket>.<host>` is virtual-hosted addressing under (besides
    /// `<bucket>.s3.<anything>` and `<bucket>.localhost`).
    pub hosts: Hosts,
    /// Longest pause in a request body before the request is cut (`RequestTimeout`).
    pub body_idle_timeout: Duration,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            hosts: Hosts::default(),
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What the S3 router serves with.
#[derive(Clone)]
pub struct S3State {
    pub objects: Objects,
    pub config: Arc<S3Config>,
    /// Who may call what (the server's shared authentication policy).
    pub auth: Arc<S3Auth>,
}

/// The S3 API: every path and method goes to one dispatcher (S3's routes depend on the Host
/// header and the query, not on path templates).
pub fn router(state: S3State) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// What a handler knows about its request.
pub(crate) struct Ctx {
    pub state: S3State,
    pub request_id: String,
    pub bucket: Option<String>,
    pub key: String,
    pub query: operation::Query,
    pub headers: http::HeaderMap,
    pub op: Operation,
}

impl Ctx {
    /// The bucket of a bucket or object operation (the table guarantees one).
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or_default()
    }

    pub fn objects(&self) -> &Objects {
        &self.state.objects
    }

    pub fn idle(&self) -> Duration {
        self.state.config.body_idle_timeout
    }
}

async fn dispatch(State(state): State<S3State>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase()[..16]
        .to_string();
    let head = req.method() == Method::HEAD;
    match serve(state, request_id.clone(), req).await {
        Ok(res) => res,
        Err(e) => error::error_response(&e, &request_id, head),
    }
}

async fn serve(state: S3State, request_id: String, req: Request) -> Result<Response, S3Error> {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host());
    let target = addressing::locate(host, parts.uri.path(), &state.config.hosts)?;
    let query = operation::Query::parse(parts.uri.query())?;
    let op = operation::classify(
        &parts.method,
        target.bucket.as_deref(),
        &target.key,
        &query,
        &parts.headers,
    )?;
    let signing = state.auth.check(&parts, &target, op)?;
    let ctx = Ctx {
        state,
        request_id,
        bucket: target.bucket,
        key: target.key,
        query,
        headers: parts.headers,
        op,
    };
    handlers::handle(ctx, body, signing).await
}
