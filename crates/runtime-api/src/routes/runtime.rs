//! The Runtime API (2018-06-01): `/runtime/invocation/next`, `/runtime/invocation/{id}/response`,
//! `/runtime/invocation/{id}/error` and `/runtime/init/error`.

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, EXPECT, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response};

use super::{Res, header_string, read_body};
use crate::body::{self, ReadError};
use crate::error::{ApiError, accepted};
use crate::state::{Poll, Shared};
use crate::stream::{self, Relayed};
use crate::types::{Invocation, Outcome, ResponseStream};

const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
const FUNCTION_ARN: HeaderName = HeaderName::from_static("lambda-runtime-invoked-function-arn");
const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
const CLIENT_CONTEXT: HeaderName = HeaderName::from_static("lambda-runtime-client-context");
const COGNITO_IDENTITY: HeaderName = HeaderName::from_static("lambda-runtime-cognito-identity");
const TENANT_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-tenant-id");
const ERROR_TYPE: HeaderName = HeaderName::from_static("lambda-runtime-function-error-type");
const ERROR_BODY: HeaderName = HeaderName::from_static("lambda-runtime-function-error-body");
const RESPONSE_MODE: HeaderName = HeaderName::from_static("lambda-runtime-function-response-mode");

const DEFAULT_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json");

/// `GET /runtime/invocation/next`: a true long poll, answered only with an event (or a
/// refusal), never with "nothing yet".
pub(super) async fn next(shared: &Shared) -> Result<Res, ApiError> {
    let inv = match shared.runtime_next()? {
        Poll::Ready(inv) => inv,
        Poll::Wait(rx) => rx.await.map_err(|_| ApiError::RuntimeNextSuperseded)?,
    };
    Ok(render_invocation(inv))
}

/// The `/next` answer: the payload as the body, the invocation's metadata as headers (each
/// only when set). The invocation's strings become the header values without a copy.
fn render_invocation(inv: Invocation) -> Res {
    let mut res = Response::new(Full::new(inv.payload));
    let headers = res.headers_mut();
    headers.reserve(8);
    put(headers, REQUEST_ID, Some(inv.request_id));
    headers.insert(DEADLINE_MS, HeaderValue::from(inv.deadline_ms));
    put(headers, FUNCTION_ARN, Some(inv.invoked_function_arn));
    put(headers, TRACE_ID, inv.trace_id);
    put(headers, CLIENT_CONTEXT, inv.client_context);
    put(headers, COGNITO_IDENTITY, inv.cognito_identity);
    put(headers, TENANT_ID, inv.tenant_id);
    match inv.content_type {
        Some(ct) if !ct.is_empty() => put(headers, CONTENT_TYPE, Some(ct)),
        _ => {
            headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
        }
    }
    res
}

/// Sets `name` when `value` is non-empty. Values that cannot be an HTTP header (control
/// characters) are left out and logged; UTF-8 text is sent as its bytes.
fn put(headers: &mut HeaderMap, name: HeaderName, value: Option<String>) {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return;
    };
    // `Bytes::from(String)` takes the string's buffer; `from_maybe_shared` keeps it.
    match HeaderValue::from_maybe_shared(Bytes::from(value)) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => tracing::warn!(header = %name, "value is not a valid HTTP header; not sent"),
    }
}

/// Which answer the runtime is posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Response,
    Error,
}

/// Gives a claimed invocation back if the answer's body could not be read (including when
/// the connection closes mid-body and this request's future is dropped).
struct Claim<'a> {
    shared: &'a Shared,
    seq: u64,
    armed: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.unclaim(self.seq);
        }
    }
}

/// `POST /runtime/invocation/{id}/response` and `/error`.
pub(super) async fn post_result(
    shared: &Shared,
    request_id: &str,
    answer: Answer,
    req: Request<Incoming>,
) -> Result<Res, ApiError> {
    let (parts, body) = req.into_parts();
    if answer == Answer::Response
        && let Some(mode) = parts.headers.get(RESPONSE_MODE)
    {
        if !mode.as_bytes().eq_ignore_ascii_case(b"streaming") {
            return Err(ApiError::InvalidResponseMode);
        }
        return post_stream(shared, request_id, &parts.headers, body).await;
    }
    let seq = shared.claim(request_id)?;
    let mut claim = Claim {
        shared,
        seq,
        armed: true,
    };
    let max = shared.config.max_response_bytes;
    match body::read_capped(body, max).await {
        Ok(collected) => {
            claim.armed = false;
            let outcome = match answer {
                Answer::Response => response_outcome(&parts.headers, collected),
                Answer::Error => Outcome::Error {
                    error_type: header_string(&parts.headers, &ERROR_TYPE),
                    body: collected.bytes,
                },
            };
            if shared.complete(seq, outcome) {
                Ok(accepted())
            } else {
                Err(ApiError::InvalidRequestId)
            }
        }
        Err(ReadError::TooLarge { rest, announced }) => {
            claim.armed = false;
            shared.complete(seq, Outcome::ResponseTooLarge);
            tracing::debug!(request_id, max, "runtime answer too large");
            // With `Expect: 100-continue` and a refused length the client has not sent the
            // body yet: nothing to drain.
            let expects_continue = parts.headers.get(EXPECT).is_some();
            if !(announced && expects_continue) {
                body::drain(rest).await;
            }
            Err(ApiError::TooLarge { max })
        }
        Err(ReadError::Truncated) => Err(ApiError::TruncatedRequest),
    }
}

/// A streamed `/response`: the caller gets the stream as soon as the head is in, then each
/// frame as it arrives; the runtime's answer comes once the body has ended.
async fn post_stream(
    shared: &Shared,
    request_id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Res, ApiError> {
    let seq = shared.claim(request_id)?;
    let (relay, chunks, end) = stream::channel(shared.config.stream_limits);
    let response = ResponseStream {
        content_type: header_string(headers, &CONTENT_TYPE),
        chunks,
        end,
    };
    if !shared.complete(seq, Outcome::Stream(response)) {
        // The caller abandoned the invocation: nothing to stream to.
        body::drain(body).await;
        return Err(ApiError::InvalidRequestId);
    }
    match relay.run(body).await {
        Relayed::Done => Ok(accepted()),
        Relayed::TooLarge { max } => Err(ApiError::TooLarge {
            max: usize::try_from(max).unwrap_or(usize::MAX),
        }),
        Relayed::Truncated => Err(ApiError::TruncatedRequest),
    }
}

/// A `/response`: the body and its content type, unless a streamed response ended with the
/// error trailers (`Lambda-Runtime-Function-Error-Type`, base64 `...-Error-Body`).
fn response_outcome(headers: &HeaderMap, collected: crate::body::Collected) -> Outcome {
    if let Some(trailers) = &collected.trailers
        && let Some(error_type) = header_string(trailers, &ERROR_TYPE)
    {
        let body = trailers.get(ERROR_BODY).map_or_else(Bytes::new, |v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .map_or_else(|_| Bytes::copy_from_slice(v.as_bytes()), Bytes::from)
        });
        return Outcome::Error {
            error_type: Some(error_type),
            body,
        };
    }
    Outcome::Response {
        body: collected.bytes,
        content_type: header_string(headers, &CONTENT_TYPE),
    }
}

/// `POST /runtime/init/error`.
pub(super) async fn init_error(shared: &Shared, req: Request<Incoming>) -> Result<Res, ApiError> {
    let (parts, body) = req.into_parts();
    let error_type = header_string(&parts.headers, &ERROR_TYPE);
    let body = read_body(body, shared.config.max_response_bytes).await?;
    shared.runtime_init_error(error_type, body.bytes)?;
    Ok(accepted())
}
