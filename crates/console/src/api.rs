//! The JSON endpoints the console reads besides the AWS APIs:
//!
//! - `GET /_kindling/api/info`: whether requests must be signed, the region (not gated: the
//!   page needs it before it has credentials; it reveals nothing else);
//! - `GET /_kindling/api/invocations?function=&limit=`: recent invocations, newest first, from
//!   the scheduler's bounded ring (see `kindling_scheduler::activity`);
//! - `GET /_kindling/api/charts?function=&minutes=`: 10-second buckets of invocations, errors,
//!   cold starts and p50/p99 duration;
//! - `GET /_kindling/api/queues/<name>/messages?limit=`: a queue's messages without receiving
//!   them (SQS has no such operation);
//! - `POST /_kindling/api/queues/<name>/redrive` `{"function": "..."}`: `kindling dlq
//!   redrive` — the queue's messages become asynchronous invocations of their function.
//!
//! Errors are `{"__type": "...", "message": "..."}` with the status, as Lambda's REST errors.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kindling_edge::gate::{Access, Caller, Gate, GateError};
use kindling_queues::dlq::{self, DlqError};
use kindling_scheduler::activity::{BUCKET_MS, BUCKETS, RECENT};
use serde_json::{Value, json};

use crate::ConsoleState;

/// Largest request body (a redrive's options).
const MAX_BODY: usize = 4096;
/// Messages listed per peek at most.
const MAX_PEEK: usize = 1000;

/// A refusal, in one wire format for every endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Gate(#[from] GateError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Gate(GateError::Auth(a)) => (
                StatusCode::from_u16(a.status()).unwrap_or(StatusCode::FORBIDDEN),
                a.error_type(),
                a.message().to_string(),
            ),
            Self::Gate(GateError::AccessDenied {
                caller,
                action,
                resource,
            }) => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                GateError::access_denied_message(caller, action, resource),
            ),
            Self::Gate(GateError::Body(kindling_edge::BodyError::TooLarge { limit })) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                format!("The request body is larger than {limit} bytes."),
            ),
            Self::Gate(e @ GateError::EnvironmentCredentialsRequired) => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                e.to_string(),
            ),
            Self::Gate(e) => (
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                e.to_string(),
            ),
            Self::Invalid(m) => (
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                m.clone(),
            ),
            Self::NotFound(m) => (
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                m.clone(),
            ),
            Self::Internal(m) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                m.clone(),
            ),
        }
    }
}

impl From<DlqError> for ApiError {
    fn from(e: DlqError) -> Self {
        match e {
            DlqError::NoSuchQueue(_) => Self::NotFound(e.to_string()),
            DlqError::FunctionRequired { .. } => Self::Invalid(e.to_string()),
            DlqError::Store(_) => Self::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %message, "console request failed");
        }
        let body = json!({"__type": code, "message": message}).to_string();
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::HeaderName::from_static("x-amzn-errortype"), code),
            ],
            body,
        )
            .into_response()
    }
}

fn ok(v: &Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The gate: signature (when required), then whether the caller may do `action`.
async fn admit(
    state: &ConsoleState,
    req: Request,
    access: Access,
    action: &str,
) -> Result<(Caller, Vec<u8>), ApiError> {
    admit_through(&state.gate, req, access, action).await
}

/// [`admit`] for Kindling's other gated endpoints (`/_kindling/nodes`): the body (at most
/// 4 KiB) read and signed, the caller allowed `kindling:<action>`; refusals render as these
/// endpoints' errors ([`ApiError`]).
pub async fn admit_through(
    gate: &Gate,
    req: Request,
    access: Access,
    action: &str,
) -> Result<(Caller, Vec<u8>), ApiError> {
    let (parts, body) = req.into_parts();
    let admission = gate.check_head(&parts)?;
    let (caller, body) = gate.read_body(admission, &parts, body, MAX_BODY).await?;
    gate.authorize(&caller, access, &format!("kindling:{action}"), "*", false)?;
    Ok((caller, body.bytes.to_vec()))
}

pub async fn info(State(state): State<ConsoleState>) -> Response {
    ok(&json!({
        "signatureRequired": state.gate.policy().require_signature,
        "region": state.region,
        "accountId": state.account_id,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn param_usize(
    q: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::Invalid(format!(
                "{name} must be a whole number between 1 and {max}, not {v:?}."
            ))),
        },
    }
}

pub async fn invocations(
    State(state): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    admit(&state, req, Access::Read, "ListInvocations").await?;
    let limit = param_usize(&q, "limit", 100, RECENT)?;
    let function = q.get("function").filter(|f| !f.is_empty());
    let records = state
        .scheduler
        .activity()
        .recent(function.map(String::as_str), limit);
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "timestamp": r.at_ms,
                "function": r.function,
                "version": r.version,
                "resource": r.resource,
                "requestId": r.request_id,
                "status": r.error.as_deref().unwrap_or("Success"),
                "durationMs": r.duration.as_secs_f64() * 1000.0,
                "initDurationMs": r.init.map(|d| d.as_secs_f64() * 1000.0),
                "asynchronous": r.asynchronous,
            })
        })
        .collect();
    Ok(ok(&json!({"invocations": rows})))
}

pub async fn charts(
    State(state): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    admit(&state, req, Access::Read, "GetCharts").await?;
    let max_minutes = BUCKETS * BUCKET_MS as usize / 60_000;
    let minutes = param_usize(&q, "minutes", 15, max_minutes)?;
    let now = now_ms();
    let since = now - now.rem_euclid(BUCKET_MS) - (minutes as i64 * 60_000) + BUCKET_MS;
    let function = q.get("function").filter(|f| !f.is_empty());
    let buckets = state
        .scheduler
        .activity()
        .chart(function.map(String::as_str), since);
    let rows: Vec<Value> = buckets
        .iter()
        .map(|b| {
            json!({
                "start": b.start_ms,
                "invocations": b.invocations,
                "errors": b.errors,
                "coldStarts": b.cold_starts,
                "p50Ms": b.quantile_ms(0.5),
                "p99Ms": b.quantile_ms(0.99),
            })
        })
        .collect();
    Ok(ok(&json!({
        "bucketSeconds": BUCKET_MS / 1000,
        "since": since,
        "now": now,
        "buckets": rows,
    })))
}

pub async fn messages(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    admit(&state, req, Access::Read, "PeekMessages").await?;
    let limit = param_usize(&q, "limit", 100, MAX_PEEK)?;
    let store = state.queues.clone();
    let rows =
        tokio::task::spawn_blocking(move || dlq::messages(store.as_ref(), Some(&name), limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    let listed: Vec<Value> = rows
        .iter()
        .map(|(q, m)| {
            let mut v = dlq::listed(q, m);
            v["receiveCount"] = json!(m.message.receive_count);
            v["target"] = match dlq::redrive_target(&v["body"]) {
                Some((f, qualifier, _)) => json!({"function": f, "qualifier": qualifier}),
                None => Value::Null,
            };
            v
        })
        .collect();
    Ok(ok(&json!({"messages": listed})))
}

pub async fn redrive(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, body) = admit(&state, req, Access::Write, "RedriveMessages").await?;
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Invalid(format!("The request body is not valid JSON: {e}")))?
    };
    let function = match options.get("function") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f.is_empty() => None,
        Some(Value::String(f)) => Some(f.clone()),
        Some(_) => return Err(ApiError::Invalid("function must be a string.".into())),
    };
    let store = state.queues.clone();
    let total = tokio::task::spawn_blocking(move || {
        dlq::redrive(store.as_ref(), Some(&name), function.as_deref(), now_ms())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    if total > 0 {
        state.events.wake();
    }
    Ok(ok(&json!({"redriven": total})))
}
