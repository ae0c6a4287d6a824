//! Invoke (RequestResponse, Event, DryRun) and the deprecated InvokeAsync.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use kindling_control::ControlError;
use kindling_model::limits;
use kindling_scheduler::{InvokeRequest, InvokeResult};
use serde_json::json;

use std::time::Duration;

use super::forward::{Forwarded, Hop};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking};

/// Largest `X-Amz-Client-Context` (base64).
const CLIENT_CONTEXT_MAX: usize = 3583;
/// InvokeAsync's payload limit.
const INVOKE_ASYNC_PAYLOAD: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

fn invalid(message: String) -> ApiError {
    ApiError::Control(ControlError::InvalidParameter(message))
}

/// A header's non-empty text value. `name` is best a [`HeaderName`] constant: a `&str` is
/// parsed (and lower-cased) on every call.
pub(super) fn header(
    headers: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match header(headers, INVOCATION_TYPE) {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("Event") => Ok(InvocationType::Event),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(ApiError::Control(ControlError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        )))),
    }
}

/// `X-Amz-Log-Type: Tail`.
pub(super) fn log_tail(headers: &HeaderMap) -> Result<bool, ApiError> {
    match header(headers, LOG_TYPE) {
        None | Some("None") => Ok(false),
        Some("Tail") => Ok(true),
        Some(other) => Err(ApiError::Control(ControlError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
        )))),
    }
}

/// Decodes `X-Amz-Client-Context` (base64 of a JSON object).
pub(super) fn client_context(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = header(headers, CLIENT_CONTEXT) else {
        return Ok(None);
    };
    if raw.len() > CLIENT_CONTEXT_MAX {
        return Err(invalid(format!(
            "Client context must be at most {CLIENT_CONTEXT_MAX} bytes."
        )));
    }
    let decoded = B64
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| serde_json::from_str::<serde_json::Value>(s).is_ok_and(|v| v.is_object()))
        .ok_or_else(|| {
            invalid("Client context must be a valid Base64-encoded JSON object.".into())
        })?;
    Ok(Some(decoded))
}

/// Reads the payload within `limit`; an empty body is the event `{}`; anything else must be JSON.
pub(super) async fn payload(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    check_payload(raw_payload(body, limit).await?)
}

/// The body's bytes as received, within `limit`.
async fn raw_payload(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// The event of a payload: an empty body is `{}`; anything else must be JSON.
fn check_payload(bytes: Bytes) -> Result<Bytes, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return Err(ApiError::Control(ControlError::InvalidRequestContent(
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        )));
    }
    Ok(bytes)
}

/// The invoke target: from the control plane's memory when cached (warm path), else read from
/// the store on the blocking pool.
pub(super) async fn resolve(
    s: &ApiState,
    name: &str,
    qualifier: Option<&str>,
) -> Result<kindling_scheduler::InvokeTarget, ApiError> {
    if let Some(t) = s.control.cached_invoke_target(name, qualifier)? {
        return Ok(t);
    }
    let control = s.control.clone();
    let (name, qualifier) = (name.to_owned(), qualifier.map(str::to_owned));
    blocking(move || control.invoke_target(&name, qualifier.as_deref())).await
}

/// A new request id (a random UUID, version 4) from the thread's fast generator: no system
/// call per invocation.
pub(super) fn new_request_id() -> String {
    kindling_edge::new_request_id()
}

/// `POST /2015-03-31/functions/{name}/invocations`
pub async fn invoke(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    // The head's headers are read in place (the `HeaderMap` extractor would copy them).
    let (parts, body) = req.into_parts();
    let limit = match invocation_type(&parts.headers) {
        Ok(InvocationType::Event) => limits::ASYNC_PAYLOAD,
        _ => limits::SYNC_PAYLOAD,
    };
    // The gate read the body within the same limit: this takes it as it is.
    let raw = raw_payload(body, limit).await?;
    serve(&s, &parts, &name, q.get("Qualifier"), raw).await
}

/// Invoke once the gate admitted the request and read its body (`raw`, as received): the
/// handler's work, shared by the router's route and the hot route (`crate::hot`). `name` is
/// the decoded `{name}`, `qualifier` the decoded `Qualifier` parameter.
pub(crate) async fn serve(
    s: &ApiState,
    parts: &Parts,
    name: &str,
    qualifier: Option<&str>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let headers = &parts.headers;
    let kind = invocation_type(headers)?;
    let tail = log_tail(headers)?;
    let client_context = client_context(headers)?;
    let payload = check_payload(raw.clone())?;
    let t = resolve(s, name, qualifier).await?;
    let scheduler = s.scheduler.clone().ok_or(ApiError::DataPlaneDisabled)?;
    // Several nodes: a synchronous invoke with no idle environment here goes to a node that
    // has one (see `forward`); one forwarded here runs on an idle environment or is declined.
    let hop = match &s.routing {
        Some(r) if kind == InvocationType::RequestResponse => Some((r, r.hop(parts))),
        _ => None,
    };
    if let Some((r, Hop::Client)) = hop
        && forwardable(s, headers)
        && !scheduler.has_idle(&t)
    {
        let key = kindling_scheduler::Scheduler::route_key(&t);
        if let Some(peer) = r.cluster().route(&key) {
            let timeout = Duration::from_secs(u64::from(t.record.spec.timeout));
            match r.forward(&peer, &key, parts, raw, timeout).await {
                Forwarded::Answer(res) => return Ok(res),
                Forwarded::Failed(e) => return Err(e),
                Forwarded::RunHere => {}
            }
        }
    }
    let request_id = new_request_id();
    let req = InvokeRequest {
        target: t,
        request_id,
        payload,
        client_context,
        trace_id: header(headers, TRACE_ID).map(str::to_string),
        tail: tail && kind == InvocationType::RequestResponse,
        enqueued_ms: None,
    };
    match kind {
        InvocationType::DryRun => Ok(with_request_id(
            StatusCode::NO_CONTENT.into_response(),
            &req.request_id,
        )),
        InvocationType::Event => {
            enqueue(s, &req).await?;
            Ok(with_request_id(
                StatusCode::ACCEPTED.into_response(),
                &req.request_id,
            ))
        }
        InvocationType::RequestResponse => {
            if let Some((r, Hop::Peer)) = hop {
                return r.serve(&scheduler, req).await;
            }
            let result = scheduler.invoke(req).await?;
            Ok(render(result))
        }
    }
}

/// `POST /2014-11-13/functions/{name}/invoke-async` (deprecated): 202 `{"Status": 202}`.
pub async fn invoke_async(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let payload = payload(body, INVOKE_ASYNC_PAYLOAD).await?;
    let t = resolve(&s, &name, None).await?;
    let request_id = new_request_id();
    let req = InvokeRequest {
        target: t,
        request_id: request_id.clone(),
        payload,
        client_context: None,
        trace_id: None,
        tail: false,
        enqueued_ms: None,
    };
    enqueue(&s, &req).await?;
    let res = (StatusCode::ACCEPTED, axum::Json(json!({ "Status": 202 }))).into_response();
    Ok(with_request_id(res, &request_id))
}

/// Stores an Event invocation durably (the qualifier is kept as invoked: an alias is routed
/// again on every attempt).
async fn enqueue(s: &ApiState, req: &InvokeRequest) -> Result<(), ApiError> {
    let events = s.events.clone().ok_or(ApiError::DataPlaneDisabled)?;
    let qualifier = req.target.qualifier.as_ref().map(ToString::to_string);
    events
        .enqueue(
            req.request_id.clone(),
            req.target.record.function_name.clone(),
            qualifier,
            req.payload.to_vec(),
            req.trace_id.as_deref(),
        )
        .await
        .map_err(ApiError::from)
}

pub(super) fn set(res: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

pub(super) fn with_request_id(mut res: Response, request_id: &str) -> Response {
    set(&mut res, "x-amzn-RequestId", request_id);
    res
}

/// Whether this request may be run by another node: not when signatures are required and
/// it is signed with session credentials (a function's, or from STS), whose tokens only the
/// node that issued them can open.
fn forwardable(s: &ApiState, headers: &HeaderMap) -> bool {
    !(s.auth.gate.policy().require_signature && headers.contains_key("x-amz-security-token"))
}

const INVOCATION_TYPE: HeaderName = HeaderName::from_static("x-amz-invocation-type");
const LOG_TYPE: HeaderName = HeaderName::from_static("x-amz-log-type");
const CLIENT_CONTEXT: HeaderName = HeaderName::from_static("x-amz-client-context");
const EXECUTED_VERSION: HeaderName = HeaderName::from_static("x-amz-executed-version");
const FUNCTION_ERROR: HeaderName = HeaderName::from_static("x-amz-function-error");
const LOG_RESULT: HeaderName = HeaderName::from_static("x-amz-log-result");
const TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// The 200 response of a synchronous invocation, function errors included. The values are
/// moved into the headers, not copied; the header order is the one clients always got
/// (`Content-Type`, version, error, log, trace, request id).
pub(super) fn render(r: InvokeResult) -> Response {
    fn put(h: &mut HeaderMap, name: HeaderName, value: String) {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(name, v);
        }
    }
    let mut res = Response::new(Body::from(r.payload));
    let h = res.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    put(h, EXECUTED_VERSION, r.executed_version);
    if r.function_error.is_some() {
        h.insert(FUNCTION_ERROR, HeaderValue::from_static("Unhandled"));
    }
    if let Some(tail) = r.log_tail {
        put(h, LOG_RESULT, B64.encode(tail));
    }
    put(h, TRACE_ID, r.trace_id);
    put(h, REQUEST_ID, r.request_id);
    res
}
