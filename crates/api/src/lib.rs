//! Lambda's REST API over HTTP: the only crate that knows paths, status codes, headers and how
//! errors are rendered.
//!
//! [`router`] builds the whole API as an axum `Router`. Each resource parses its requests in its
//! own module under `routes/`, calls the domain, and renders the typed result; every failure is
//! turned into Lambda's error format by [`error::ApiError`], in one place.

mod auth;
mod error;
mod extract;
mod render;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use kindling_control::ControlPlane;

pub use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    /// The data plane; `None` serves the control plane only.
    pub scheduler: Option<kindling_scheduler::Scheduler>,
    /// Asynchronous invocation; `None` serves the control plane only.
    pub events: Option<kindling_events::AsyncInvoker>,
    /// SigV4 verification of every request; `None` accepts unsigned requests (local use).
    pub auth: Option<Arc<kindling_auth::Verifier>>,
}

/// The complete Lambda API. Trailing slashes are trimmed before routing (botocore sends
/// `/2015-03-31/functions/` for ListFunctions), so wrap the result with [`normalize_path`].
pub fn router(state: ApiState) -> Router {
    routes::routes()
        .fallback(routes::unknown_operation)
        .layer(middleware::from_fn_with_state(state.clone(), auth::verify))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Strips a trailing `/` from the request path (keeping `/` itself).
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Gives every response an `x-amzn-RequestId`, and turns axum's own bare rejections (405,
/// unknown paths) into Lambda's error format.
async fn request_id(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(error::ERROR_TYPE_HEADER)
    {
        res = axum::response::IntoResponse::into_response(ApiError::UnknownOperation);
    }
    if !res.headers().contains_key("x-amzn-RequestId") {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert("x-amzn-RequestId", v);
        }
    }
    res
}

#[cfg(test)]
mod tests;
