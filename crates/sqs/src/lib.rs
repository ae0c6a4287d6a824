//! SQS on the wire, over the queue domain (`kindling-queues`).
//!
//! Two protocols share one operation table ([`ops::Operation`]) and one input shape (the JSON
//! protocol's; query forms are converted by [`input::from_query`]):
//! - **AWS JSON 1.0**: `X-Amz-Target: AmazonSQS.<Op>`, JSON in and out; errors as
//!   `{"__type": "com.amazonaws.sqs#<Shape>", "message"}` with `x-amzn-query-error:
//!   <legacy code>;Sender` (boto3, the aws CLI, current SDKs);
//! - **query**: `Action=<Op>&Version=2012-11-05` forms (body or URL), XML results with the
//!   legacy element names ([`xml`]) and errors with the legacy codes.
//!
//! Either may be posted to the service root or to the queue URL (`POST /<account>/<queue>`, as
//! JS v2 and Java v1 do); a request without `QueueUrl` takes the queue from the path. Queue
//! URLs are minted as `http://<request Host>/<account>/<name>`, and a `QueueUrl` is read by its
//! last two path segments, so URLs work whatever host name the client used.
//!
//! Decisions where SQS's behaviour is not documented:
//! - batch entries that fail carry the legacy code (`InvalidParameterValue`,
//!   `AWS.SimpleQueueService.MessageNotInflight`...) in `Code`, in both protocols;
//! - unknown operations are `InvalidAction` (400) in both protocols; `AddPermission` and
//!   `RemovePermission` are not served (a queue's `Policy` attribute is stored as given);
//! - `ReceiveRequestAttemptId` is accepted and ignored: a retried FIFO receive claims afresh
//!   (the messages of the lost answer come back after their visibility timeout).

pub mod error;
pub mod input;
pub mod ops;
pub mod xml;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kindling_auth::{Payload, Verifier};
use kindling_protocol::json::{self, JsonVersion};
use kindling_protocol::query::{self, Params};
use kindling_protocol::{ProtocolError, WireError};
use kindling_queues::QueueService;
use serde_json::Value;

use crate::error::{Legacy, SqsError};
use crate::ops::{Context, Operation, execute};

/// The query protocol's XML namespace.
pub const NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
/// Largest request body read (a 1 MiB batch, base64 and form-encoded).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// What the router needs.
#[derive(Clone)]
pub struct SqsState {
    pub queues: QueueService,
    pub account_id: String,
    /// SigV4 verification (signing name `sqs`); `None` accepts unsigned requests.
    pub auth: Option<Arc<Verifier>>,
}

/// Serves every SQS request (any path: the root or a queue URL).
pub fn router(state: SqsState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Query,
}

async fn handle(State(state): State<SqsState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let protocol = if req.headers().contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    };
    let (op, result) = serve(&state, req).await;
    let response = match (protocol, result) {
        (Protocol::Json, Ok(v)) => json::response(JsonVersion::V1_0, &request_id, &v),
        (Protocol::Query, Ok(v)) => {
            let op = op.unwrap_or(Operation::ListQueues);
            let with_result = !matches!(
                op,
                Operation::DeleteQueue
                    | Operation::SetQueueAttributes
                    | Operation::DeleteMessage
                    | Operation::ChangeMessageVisibility
                    | Operation::PurgeQueue
                    | Operation::TagQueue
                    | Operation::UntagQueue
            );
            let write = |x: &mut kindling_protocol::xml::Xml| xml::write(op, x, &v);
            query::response(
                op.name(),
                NAMESPACE,
                &request_id,
                with_result.then_some(&write as &dyn Fn(&mut kindling_protocol::xml::Xml)),
            )
        }
        (protocol, Err(e)) => {
            if e.status() >= 500 {
                tracing::error!(error = &e as &dyn std::error::Error, "SQS request failed");
            }
            match protocol {
                Protocol::Json => json::error_response(
                    &e,
                    JsonVersion::V1_0,
                    &request_id,
                    "com.amazonaws.sqs#",
                    Some(e.codes().1),
                ),
                Protocol::Query => query::error_response(&Legacy(&e), NAMESPACE, &request_id),
            }
        }
    };
    response.map(Body::from).into_response()
}

async fn serve(state: &SqsState, req: Request) -> (Option<Operation>, Result<Value, SqsError>) {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (None, Err(SqsError::TooLarge(MAX_BODY))),
    };
    if let Some(verifier) = &state.auth
        && let Err(e) = verify(verifier, &parts, &body)
    {
        return (None, Err(e));
    }
    let (op, mut input) = match read(&parts, &body) {
        Ok(x) => x,
        Err(e) => return (None, Err(e)),
    };
    // A request posted to the queue URL names its queue by the path.
    if input.get("QueueUrl").is_none()
        && let Some((account, name)) = ops::parse_queue_url(parts.uri.path())
        && let Value::Object(map) = &mut input
    {
        map.insert(
            "QueueUrl".into(),
            Value::String(format!("/{account}/{name}")),
        );
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base_url = format!("http://{host}");
    let sender = sender_id(&parts.headers).unwrap_or_else(|| state.account_id.clone());
    let cx = Context {
        queues: &state.queues,
        account_id: &state.account_id,
        base_url: &base_url,
        sender_id: &sender,
    };
    let result = execute(op, &input, &cx).await.map_err(SqsError::from);
    (Some(op), result)
}

/// The operation and its input, from either protocol.
fn read(parts: &http::request::Parts, body: &Bytes) -> Result<(Operation, Value), SqsError> {
    if let Some(target) = parts.headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let name = json::target_operation(target, "AmazonSQS")
            .ok_or_else(|| SqsError::InvalidAction(target.to_string()))?;
        let op = Operation::parse(name).ok_or_else(|| SqsError::InvalidAction(name.to_string()))?;
        let input: Value = if body.is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(body).map_err(|e| {
                SqsError::Protocol(ProtocolError::Malformed(format!(
                    "The request body is not valid JSON: {e}"
                )))
            })?
        };
        if !input.is_object() {
            return Err(SqsError::Protocol(ProtocolError::Malformed(
                "The request body must be a JSON object.".into(),
            )));
        }
        return Ok((op, input));
    }
    let mut params = Params::parse(body)?;
    if let Some(q) = parts.uri.query() {
        params.extend(Params::parse(q.as_bytes())?);
    }
    let action = params
        .action()
        .ok_or_else(|| SqsError::Protocol(ProtocolError::Missing("Action".into())))?
        .to_string();
    let op = Operation::parse(&action).ok_or(SqsError::InvalidAction(action))?;
    Ok((op, input::from_query(op.name(), &params)))
}

/// The access key id of a signed request (the messages' `SenderId`).
fn sender_id(headers: &http::HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (_, rest) = auth.split_once("Credential=")?;
    let akid = rest.split('/').next()?;
    (!akid.is_empty()).then(|| akid.to_string())
}

fn verify(verifier: &Verifier, parts: &http::request::Parts, body: &[u8]) -> Result<(), SqsError> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = kindling_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload: Payload::Bytes(body),
    };
    verifier
        .verify(&request, SystemTime::now())
        .map(|_| ())
        .map_err(|e| SqsError::Auth {
            status: e.status(),
            code: query_auth_code(e.error_type()),
            message: e.message().to_string(),
        })
}

/// The query-protocol services' names for signature failures.
fn query_auth_code(error_type: &str) -> &'static str {
    match error_type {
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "IncompleteSignatureException" => "IncompleteSignature",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        _ => "SignatureDoesNotMatch",
    }
}

#[cfg(test)]
mod tests;
