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

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kindling_edge::gate::{Access, Caller, Gate, GateError};
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
    /// Signatures and function access, shared with every service (signing name `sqs`).
    pub gate: Gate,
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
    let admission = match state.gate.check_head(&parts) {
        Ok(a) => a,
        Err(e) => return (None, Err(e.into())),
    };
    let (caller, body) = match state
        .gate
        .read_body(admission, &parts, body, MAX_BODY)
        .await
    {
        Ok(x) => x,
        Err(e) => return (None, Err(e.into())),
    };
    let (op, mut input) = match read(&parts, &body.bytes) {
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
    if matches!(op, Operation::SendMessage | Operation::SendMessageBatch)
        && let Some(trace) = parts
            .headers
            .get("x-amzn-trace-id")
            .and_then(|h| h.to_str().ok())
            .filter(|t| kindling_model::trace::TraceHeader::parse(t).is_ok())
    {
        carry_trace_header(&mut input, trace);
    }
    let resource = resource_arn(state, &input);
    if let Err(e) = state.gate.authorize(
        &caller,
        access(op),
        &format!("sqs:{}", op.name()),
        &resource,
        false,
    ) {
        return (Some(op), Err(e.into()));
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base_url = format!("http://{host}");
    let sender = match &caller {
        Caller::Operator { access_key_id } => access_key_id.clone(),
        Caller::Function(session) => session.function_name().to_string(),
        Caller::Anonymous => sender_id(&parts.headers).unwrap_or_else(|| state.account_id.clone()),
    };
    // SQS keeps the sender's X-Ray header (the SDKs send `_X_AMZN_TRACE_ID` inside Lambda) as
    // the messages' `AWSTraceHeader`: Lambda's recursive loop detection reads its `Lineage`.
    let trace_header = parts
        .headers
        .get("x-amzn-trace-id")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 2048);
    let cx = Context {
        queues: &state.queues,
        account_id: &state.account_id,
        base_url: &base_url,
        sender_id: &sender,
        trace_header,
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

/// SQS sets a message's `AWSTraceHeader` from the sender's `X-Amzn-Trace-Id` when the message
/// does not carry one: the trace continues through the queue (to a consumer function).
fn carry_trace_header(input: &mut Value, trace: &str) {
    let attribute = serde_json::json!({"DataType": "String", "StringValue": trace});
    let mut add = |message: &mut Value| {
        let Value::Object(m) = message else { return };
        let system = m
            .entry("MessageSystemAttributes")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(system) = system {
            system
                .entry("AWSTraceHeader")
                .or_insert_with(|| attribute.clone());
        }
    };
    match input.get_mut("Entries") {
        Some(Value::Array(entries)) => entries.iter_mut().for_each(&mut add),
        _ => add(input),
    }
}

/// The access key id of a signed request (the messages' `SenderId`).
fn sender_id(headers: &http::HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (_, rest) = auth.split_once("Credential=")?;
    let akid = rest.split('/').next()?;
    (!akid.is_empty()).then(|| akid.to_string())
}

/// Who may call each operation with a function's session credentials.
fn access(op: Operation) -> Access {
    use Operation as O;
    match op {
        O::SendMessage
        | O::SendMessageBatch
        | O::ReceiveMessage
        | O::DeleteMessage
        | O::DeleteMessageBatch
        | O::ChangeMessageVisibility
        | O::ChangeMessageVisibilityBatch
        | O::GetQueueUrl => Access::Data,
        O::ListQueues
        | O::GetQueueAttributes
        | O::ListQueueTags
        | O::ListDeadLetterSourceQueues
        | O::ListMessageMoveTasks => Access::Read,
        O::CreateQueue
        | O::DeleteQueue
        | O::SetQueueAttributes
        | O::PurgeQueue
        | O::TagQueue
        | O::UntagQueue
        | O::StartMessageMoveTask
        | O::CancelMessageMoveTask => Access::Write,
    }
}

/// The ARN of the queue a request names (`*` when it names none).
fn resource_arn(state: &SqsState, input: &Value) -> String {
    let named = input
        .get("QueueUrl")
        .and_then(Value::as_str)
        .and_then(ops::parse_queue_url)
        .map(|(account, name)| (account.to_string(), name.to_string()))
        .or_else(|| {
            input
                .get("QueueName")
                .and_then(Value::as_str)
                .map(|n| (state.account_id.clone(), n.to_string()))
        });
    match named {
        Some((account, name)) => format!(
            "arn:aws:sqs:{}:{account}:{name}",
            state.queues.config().region
        ),
        None => "*".into(),
    }
}

impl From<GateError> for SqsError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::Auth(a) => Self::Auth {
                status: a.status(),
                code: query_auth_code(a.error_type()),
                message: a.message().to_string(),
            },
            GateError::EnvironmentCredentialsRequired => Self::Auth {
                status: 403,
                code: "AccessDenied",
                message: e.to_string(),
            },
            GateError::AccessDenied {
                caller,
                action,
                resource,
            } => Self::Auth {
                status: 403,
                code: "AccessDenied",
                message: GateError::access_denied_message(&caller, &action, &resource),
            },
            GateError::Body(kindling_edge::BodyError::TooLarge { limit }) => Self::TooLarge(limit),
            other => Self::Body(other.to_string()),
        }
    }
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
