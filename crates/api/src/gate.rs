//! The gate in front of every operation's handler: path parameters decoded, signature checked
//! as far as the head allows, the caller authorized, the body read within its operation's
//! limit (and the edge's timeout and memory budget), then the signature finished over it.
//!
//! Which requests must be signed: all of them in shared mode; in local mode only those from
//! inside execution environments ([`Origin::Environment`], told by the edge from the peer
//! socket's owner), which must use their environment's own session credentials. Other local
//! requests pass unsigned and unchecked, as before.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kindling_auth::{Payload, PendingSignature};
use kindling_edge::{BodyError, BodyLimits, Origin, RequestContext, read_body};

use crate::ApiState;
use crate::auth::ApiAuth;
use crate::error::ApiError;
use crate::operation::{Access, BodyLimit, Operation};

/// Bodies larger than this are hashed on the blocking pool.
const HASH_INLINE_MAX: usize = 256 * 1024;

/// Limits for requests that did not come through the edge (tests driving the router).
fn default_limits() -> &'static BodyLimits {
    static LIMITS: OnceLock<BodyLimits> = OnceLock::new();
    LIMITS.get_or_init(|| BodyLimits::new(Duration::from_secs(10), 512 * 1024 * 1024))
}

pub(crate) async fn gate(
    State((state, op)): State<(ApiState, Operation)>,
    req: Request,
    next: Next,
) -> Response {
    match run(&state, op, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// Whether a request from `origin` must be signed.
fn must_sign(auth: &ApiAuth, origin: Origin) -> bool {
    auth.require_signature || matches!(origin, Origin::Environment { .. })
}

/// The edge's context of the request (requests that did not come through the edge, such as
/// tests driving the router, count as local and unsigned-capable).
fn context(parts: &Parts) -> (Origin, BodyLimits) {
    match parts.extensions.get::<RequestContext>() {
        Some(c) => (c.origin, c.body_limits.clone()),
        None => (Origin::Other, default_limits().clone()),
    }
}

async fn run(
    state: &ApiState,
    op: Operation,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    if op.access() == Access::Public {
        // Code downloads carry their own (presigned) signature, checked by the handler.
        return Ok(next.run(Request::from_parts(parts, body)).await);
    }
    let auth = &state.auth;
    let (origin, limits) = context(&parts);
    // Unsigned local requests go straight to the body (a path parameter that is not UTF-8 is
    // then refused by the handler's extractor, in Lambda's format by `request_id`).
    let pending = if must_sign(auth, origin) {
        let target = target(&mut parts).await?;
        let pending = check_head(auth, &parts)?;
        if matches!(origin, Origin::Environment { .. }) && pending.identity().session.is_none() {
            return Err(ApiError::EnvironmentCredentialsRequired);
        }
        auth.authorize(
            state.control.arn(),
            op,
            pending.identity(),
            target.as_deref(),
        )?;
        Some(pending)
    } else {
        None
    };
    let limit = op.max_body(&parts.headers);
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let buffered = read_body(body, declared, limit, &limits)
        .await
        .map_err(|e| body_error(e, op, limit))?;
    if let Some(pending) = pending {
        finish(Arc::clone(auth), pending, &parts, buffered.bytes.clone()).await?;
    }
    let req = Request::from_parts(parts, Body::from(buffered.bytes.clone()));
    let res = next.run(req).await;
    drop(buffered);
    Ok(res)
}

/// The resource the request names (`{name}`, `{layer}` or `{resource}`), decoded.
async fn target(parts: &mut Parts) -> Result<Option<String>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::MalformedPath(e.body_text()))?;
    Ok(params
        .iter()
        .find(|(k, _)| matches!(*k, "name" | "layer" | "resource"))
        .map(|(_, v)| v.to_string()))
}

fn headers_of(parts: &Parts) -> Vec<(&str, &[u8])> {
    parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect()
}

/// The signature checks that need no body.
fn check_head(auth: &ApiAuth, parts: &Parts) -> Result<PendingSignature, ApiError> {
    let headers = headers_of(parts);
    let request = kindling_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload: Payload::Bytes(&[]),
    };
    auth.verifier
        .check_head(&request, SystemTime::now())
        .map_err(ApiError::Auth)
}

/// The signature over the body: inline for small bodies, on the blocking pool for large ones.
async fn finish(
    auth: Arc<ApiAuth>,
    pending: PendingSignature,
    parts: &Parts,
    body: Bytes,
) -> Result<(), ApiError> {
    let verify = |auth: &ApiAuth, pending: PendingSignature, parts: &Parts, body: &[u8]| {
        let headers = headers_of(parts);
        let request = kindling_auth::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            payload: Payload::Bytes(body),
        };
        pending.finish(&auth.verifier, &request).map(|_| ())
    };
    if body.len() <= HASH_INLINE_MAX {
        return verify(&auth, pending, parts, &body).map_err(ApiError::Auth);
    }
    let head = Parts::clone_head(parts);
    tokio::task::spawn_blocking(move || verify(&auth, pending, &head, &body))
        .await?
        .map_err(ApiError::Auth)
}

/// A path with no operation: refused as unsigned first where signatures are required.
pub(crate) async fn unknown(State(state): State<ApiState>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    if must_sign(&state.auth, context(&parts).0)
        && let Err(e) = check_head(&state.auth, &parts)
    {
        return e.into_response();
    }
    ApiError::UnknownOperation.into_response()
}

fn body_error(e: BodyError, op: Operation, limit: usize) -> ApiError {
    match e {
        BodyError::TooLarge { .. } => match op.body_limit() {
            BodyLimit::InvokePayload | BodyLimit::InvokeAsyncPayload => {
                ApiError::PayloadTooLarge { limit }
            }
            _ => ApiError::BodyTooLarge {
                limit,
                operation: op.name(),
            },
        },
        BodyError::Timeout(after) => ApiError::BodyTimeout(after),
        BodyError::Busy => ApiError::BodyBudget,
        BodyError::Read(source) => ApiError::BodyRead(source),
    }
}

/// `Parts` has no `Clone`; the head fields the signature needs are copied.
trait CloneHead {
    fn clone_head(parts: &Parts) -> Parts;
}

impl CloneHead for Parts {
    fn clone_head(parts: &Parts) -> Parts {
        let mut builder = axum::http::Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version);
        if let Some(h) = builder.headers_mut() {
            *h = parts.headers.clone();
        }
        let (head, ()) = builder.body(()).unwrap_or_default().into_parts();
        head
    }
}
