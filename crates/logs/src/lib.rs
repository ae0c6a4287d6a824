//! CloudWatch Logs (AWS JSON 1.1, `X-Amz-Target: Logs_20140328.<Op>`) over the log streams
//! Kindling writes: a function's environments write streams `YYYY/MM/DD/[<version>]<id>` into
//! the group of its `LoggingConfig.LogGroup` (`/aws/lambda/<function>` by default), and this
//! crate reads them the way `aws logs tail`, `aws logs filter-log-events`/`get-log-events` and
//! `sam logs` ask.
//!
//! - [`ops`]: the operations (groups, streams, GetLogEvents with forward/backward tokens that
//!   repeat at the end, FilterLogEvents interleaved by time with stable `eventId`s and a
//!   resumable `nextToken`, retention, and the writes clients of the Logs API use);
//! - `get`: GetLogEvents' pages and their tokens (a place in one file of the stream, which
//!   follows the file when a rotation renames it);
//! - [`pattern`]: filter patterns (terms, phrases, `?any`, `-exclusions`, JSON and
//!   space-delimited patterns);
//! - [`registry`]: groups made with `CreateLogGroup` and retention policies (also the age
//!   limits of the server's retention sweeps);
//! - [`search`]: FilterLogEvents' search within a work budget (paused and resumed by token);
//! - [`stream`]: reading stream files;
//! - [`streams`]: a group's streams and their files (an environment's stream that rotated
//!   is one stream of two files).
//!
//! Decisions: an event is a line of the stream; `ingestionTime` is the event's timestamp;
//! retention deletes whole streams whose last event is older than the period (at once when
//! the policy is set, then at every sweep), never a stream an environment still writes.
//! *Invariant: every file access runs on the blocking pool; every error leaves as the
//! service's JSON error.*

pub mod error;
mod get;
pub mod live;
pub mod ops;
pub mod pattern;
pub mod registry;
pub mod search;
pub mod stream;
pub mod streams;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use kindling_edge::gate::{Access, Gate, GateError};
use kindling_protocol::WireError;
use kindling_protocol::json::{self, JsonVersion};
use serde_json::Value;

pub use error::LogsError;
pub use ops::{Logs, Operation};
pub use registry::Registry;

/// The `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "Logs_20140328";
/// Largest request body (PutLogEvents: 1 MiB of events plus JSON framing).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// What the router serves with.
#[derive(Clone)]
pub struct LogsState {
    pub logs: Logs,
    /// Who may call (signing name `logs`).
    pub gate: Gate,
    /// Live Tail sessions running.
    pub live: Arc<live::Sessions>,
}

/// The CloudWatch Logs API.
pub fn router(state: LogsState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<LogsState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let response = match serve(&state, req, &request_id).await {
        Ok(Reply::Json(v)) => json::response(JsonVersion::V1_1, &request_id, &v),
        Ok(Reply::Stream(r)) => return r,
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(error = &e as &dyn std::error::Error, "Logs request failed");
            }
            json::error_response(&e, JsonVersion::V1_1, &request_id, "", None)
        }
    };
    response.map(Body::from).into_response()
}

/// An operation's answer: JSON, or an event stream (StartLiveTail).
enum Reply {
    Json(Value),
    Stream(Response),
}

async fn serve(state: &LogsState, req: Request, request_id: &str) -> Result<Reply, LogsError> {
    let (parts, body) = req.into_parts();
    let admission = state.gate.check_head(&parts)?;
    let (caller, body) = state
        .gate
        .read_body(admission, &parts, body, MAX_BODY)
        .await?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let name = json::target_operation(target, TARGET_PREFIX)
        .ok_or_else(|| LogsError::UnknownOperation(target.to_string()))?;
    let op = Operation::parse(name).ok_or_else(|| LogsError::UnknownOperation(name.into()))?;
    let input: Value = if body.bytes.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(&body.bytes).map_err(|e| {
            LogsError::Serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    if !input.is_object() {
        return Err(LogsError::Serialization(
            "The request body must be a JSON object.".into(),
        ));
    }
    let access = if op.is_read() {
        Access::Read
    } else if op.is_data() {
        Access::Data
    } else {
        Access::Write
    };
    let resource = input
        .get("logGroupName")
        .and_then(Value::as_str)
        .map_or_else(
            || "*".to_string(),
            |g| {
                format!(
                    "arn:aws:logs:{}:{}:log-group:{g}",
                    state.logs.region, state.logs.account_id
                )
            },
        );
    state
        .gate
        .authorize(&caller, access, &format!("logs:{name}"), &resource, false)?;
    if op == Operation::StartLiveTail {
        return live::start(&state.logs, &state.live, input, request_id)
            .await
            .map(Reply::Stream);
    }
    let logs = state.logs.clone();
    tokio::task::spawn_blocking(move || ops::execute(&logs, op, input))
        .await
        .map_err(|e| LogsError::Io(std::io::Error::other(e)))?
        .map(Reply::Json)
}

impl From<GateError> for LogsError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::Auth(a) => Self::Auth {
                status: a.status(),
                code: a.error_type(),
                message: a.message().to_string(),
            },
            GateError::AccessDenied {
                caller,
                action,
                resource,
            } => Self::Auth {
                status: 400,
                code: "AccessDeniedException",
                message: GateError::access_denied_message(&caller, &action, &resource),
            },
            GateError::EnvironmentCredentialsRequired => Self::Auth {
                status: 400,
                code: "AccessDeniedException",
                message: e.to_string(),
            },
            GateError::Body(kindling_edge::BodyError::TooLarge { limit }) => Self::TooLarge(limit),
            other => Self::Body(other.to_string()),
        }
    }
}
