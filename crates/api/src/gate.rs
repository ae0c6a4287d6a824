//! The gate in front of every operation's handler: path parameters decoded, signature checked
//! as far as the head allows, the caller authorized, the body read within its operation's
//! limit (and the edge's timeout and memory budget), then the signature finished over it.
//!
//! Which requests must be signed: all of them in shared mode; in local mode only those from
//! inside execution environments ([`Origin::Environment`], told by the edge from the peer
//! socket's owner), which must use their environment's own session credentials. Other local
//! requests pass unsigned and unchecked, as before.

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kindling_edge::gate::GateError;
use kindling_edge::{BodyError, BufferedBody};

use crate::ApiState;
use crate::error::ApiError;
use crate::operation::{Access, BodyLimit, Operation};

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

async fn run(
    state: &ApiState,
    op: Operation,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let op = op.refine(parts.uri.query());
    if op.access() == Access::Public {
        // Code downloads carry their own (presigned) signature, checked by the handler.
        return Ok(next.run(Request::from_parts(parts, body)).await);
    }
    // Unsigned local requests go straight to the body (a path parameter that is not UTF-8 is
    // then refused by the handler's extractor, in Lambda's format by `request_id`).
    let target = if state.auth.gate.must_sign(&parts) {
        target(&mut parts).await?
    } else {
        None
    };
    let buffered = admit(state, op, &parts, target.as_deref(), body).await?;
    let req = Request::from_parts(parts, Body::from(buffered.bytes.clone()));
    let res = next.run(req).await;
    drop(buffered);
    Ok(res)
}

/// The gate's checks of one request for `op` (not [`Access::Public`]) whose resource is
/// `target` (decoded; looked at only when the request must be signed): the head's signature
/// and the caller's authorization, then the body read within the operation's limit and the
/// signature finished over it. The body holds its share of the edge's memory budget until
/// dropped. Also the hot Invoke route's gate (`hot.rs`).
pub(crate) async fn admit<B>(
    state: &ApiState,
    op: Operation,
    parts: &Parts,
    target: Option<&str>,
    body: B,
) -> Result<BufferedBody, ApiError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let gate = &state.auth.gate;
    let admission = gate.check_head(parts)?;
    if admission.is_signed() {
        state
            .auth
            .authorize(state.control.arn(), op, admission.caller(), target)?;
    }
    let limit = op.max_body(&parts.headers);
    let (_caller, buffered) = gate
        .read_body(admission, parts, body, limit)
        .await
        .map_err(|e| gate_error(e, op, limit))?;
    Ok(buffered)
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

/// A path with no operation: refused as unsigned first where signatures are required.
pub(crate) async fn unknown(State(state): State<ApiState>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    if let Err(e) = state.auth.gate.check_head(&parts) {
        return ApiError::from(e).into_response();
    }
    ApiError::UnknownOperation.into_response()
}

/// Lambda's answers for the gate's refusals; body limits name the operation.
fn gate_error(e: GateError, op: Operation, limit: usize) -> ApiError {
    match e {
        GateError::Body(BodyError::TooLarge { .. }) => match op.body_limit() {
            BodyLimit::InvokePayload | BodyLimit::InvokeAsyncPayload => {
                ApiError::PayloadTooLarge { limit }
            }
            _ => ApiError::BodyTooLarge {
                limit,
                operation: op.name(),
            },
        },
        other => other.into(),
    }
}
