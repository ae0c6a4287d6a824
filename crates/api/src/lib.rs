//! Lambda's REST API over HTTP: the only crate that knows paths, status codes, headers and how
//! errors are rendered.
//!
//! [`router`] builds the whole API as an axum `Router`. Each resource parses its requests in its
//! own module under `routes/`, calls the domain, and renders the typed result; every failure is
//! turned into Lambda's error format by [`error::ApiError`], in one place.
//!
//! Every operation is listed in [`Operation`] with its access class and body limit, and runs
//! behind the gate (`gate.rs`): where signatures are required (shared mode, and every request
//! from inside an execution environment) the head's credentials are checked and the caller
//! authorized before the body is read; the body is read within the operation's limit through
//! `kindling-edge`, whose listener serves this router ([`edge_renderer`] gives it Lambda's
//! error format for the requests it answers itself).
//!
//! [`HotInvoke`] serves `Invoke` (`POST /2015-03-31/functions/{name}/invocations`) straight
//! from the edge's dispatch decision, through the same gate and handler functions but without
//! the router, its middleware layers and their copies of the request.

mod auth;
mod error;
mod extract;
mod gate;
mod hot;
mod operation;
mod render;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use kindling_control::ControlPlane;
use kindling_edge::Rejection;

pub use auth::{ApiAuth, CODE_URL_LIFETIME, CodeUrls};
pub use error::ApiError;
pub use hot::HotInvoke;
pub use kindling_edge::gate::{AuthPolicy, FunctionAccess};
pub use operation::{Access, Operation};
pub use routes::{
    HOP_HEADER, NODE_HEADER, Routing, provision, restore_provisioned, sync_provisioned,
};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    /// The data plane; `None` serves the control plane only.
    pub scheduler: Option<kindling_scheduler::Scheduler>,
    /// Asynchronous invocation; `None` serves the control plane only.
    pub events: Option<kindling_events::AsyncInvoker>,
    /// Event source mappings; `None` answers their operations `ServiceException`.
    pub esm: Option<kindling_esm::Mappings>,
    /// Signatures, function credentials and code download URLs.
    pub auth: Arc<ApiAuth>,
    /// Several nodes on one database: synchronous invokes go to warm environments on other
    /// nodes; `None` alone.
    pub routing: Option<Arc<Routing>>,
}

/// The complete Lambda API. Trailing slashes are trimmed before routing (botocore sends
/// `/2015-03-31/functions/` for ListFunctions), so wrap the result with [`normalize_path`].
pub fn router(state: ApiState) -> Router {
    routes::routes(&state)
        .fallback(gate::unknown)
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Strips a trailing `/` from the request path (keeping `/` itself).
pub fn normalize_path<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
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

/// Gives every response an `x-amzn-RequestId`, and turns any error response not in Lambda's
/// format (axum's own rejections: 405 and the like) into it.
async fn request_id(req: Request, next: Next) -> Response {
    finish(next.run(req).await).await
}

/// What [`request_id`] does to a response (also the hot route's last step).
pub(crate) async fn finish(mut res: Response) -> Response {
    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(error::ERROR_TYPE_HEADER)
    {
        res = if status == StatusCode::METHOD_NOT_ALLOWED {
            ApiError::UnknownOperation.into_response()
        } else {
            error::foreign_error(res).await
        };
    }
    // A constant name: a `&str` would be parsed and lower-cased on every answer.
    const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
    if !res.headers().contains_key(REQUEST_ID)
        && let Ok(v) = HeaderValue::try_from(kindling_edge::new_request_id())
    {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// The edge's own answers (unparsable requests, too many requests, too many busy connections
/// from one address) in Lambda's format.
pub fn edge_renderer() -> kindling_edge::Renderer {
    Arc::new(|rejection: Rejection| match rejection {
        Rejection::Malformed(status) => error::wire_error(
            status,
            "ValidationException",
            error::malformed_message(status),
        ),
        Rejection::Busy => ApiError::BodyBudget.to_wire(),
        Rejection::MethodNotAllowed => ApiError::UnknownOperation.to_wire(),
        Rejection::TooManyConnections => error::wire_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Too many connections from your address have a request in progress; retry later.",
        ),
    })
}

#[cfg(test)]
mod tests;
