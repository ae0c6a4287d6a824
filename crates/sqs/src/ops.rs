//! SQS's operations: each reads its input (the JSON protocol's shape), calls the domain and
//! returns its output in the JSON protocol's shape (the query protocol renders it as XML).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_queues::{
    AttributeValue, EntryResult, QueueError, QueueRecord, QueueService, ReceiveInput,
    ReceivedMessage, SendInput, SendResult,
};
use serde_json::{Map, Value, json};

use crate::error::queue_codes;
use crate::input::{entries, int, required, send_input, string, string_map_of, strings};

/// Every operation Kindling's SQS serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateQueue,
    GetQueueUrl,
    ListQueues,
    DeleteQueue,
    GetQueueAttributes,
    SetQueueAttributes,
    SendMessage,
    SendMessageBatch,
    ReceiveMessage,
    DeleteMessage,
    DeleteMessageBatch,
    ChangeMessageVisibility,
    ChangeMessageVisibilityBatch,
    PurgeQueue,
    TagQueue,
    UntagQueue,
    ListQueueTags,
    ListDeadLetterSourceQueues,
    StartMessageMoveTask,
    ListMessageMoveTasks,
    CancelMessageMoveTask,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        use Operation as O;
        Some(match name {
            "CreateQueue" => O::CreateQueue,
            "GetQueueUrl" => O::GetQueueUrl,
            "ListQueues" => O::ListQueues,
            "DeleteQueue" => O::DeleteQueue,
            "GetQueueAttributes" => O::GetQueueAttributes,
            "SetQueueAttributes" => O::SetQueueAttributes,
            "SendMessage" => O::SendMessage,
            "SendMessageBatch" => O::SendMessageBatch,
            "ReceiveMessage" => O::ReceiveMessage,
            "DeleteMessage" => O::DeleteMessage,
            "DeleteMessageBatch" => O::DeleteMessageBatch,
            "ChangeMessageVisibility" => O::ChangeMessageVisibility,
            "ChangeMessageVisibilityBatch" => O::ChangeMessageVisibilityBatch,
            "PurgeQueue" => O::PurgeQueue,
            "TagQueue" => O::TagQueue,
            "UntagQueue" => O::UntagQueue,
            "ListQueueTags" => O::ListQueueTags,
            "ListDeadLetterSourceQueues" => O::ListDeadLetterSourceQueues,
            "StartMessageMoveTask" => O::StartMessageMoveTask,
            "ListMessageMoveTasks" => O::ListMessageMoveTasks,
            "CancelMessageMoveTask" => O::CancelMessageMoveTask,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Operation as O;
        match self {
            O::CreateQueue => "CreateQueue",
            O::GetQueueUrl => "GetQueueUrl",
            O::ListQueues => "ListQueues",
            O::DeleteQueue => "DeleteQueue",
            O::GetQueueAttributes => "GetQueueAttributes",
            O::SetQueueAttributes => "SetQueueAttributes",
            O::SendMessage => "SendMessage",
            O::SendMessageBatch => "SendMessageBatch",
            O::ReceiveMessage => "ReceiveMessage",
            O::DeleteMessage => "DeleteMessage",
            O::DeleteMessageBatch => "DeleteMessageBatch",
            O::ChangeMessageVisibility => "ChangeMessageVisibility",
            O::ChangeMessageVisibilityBatch => "ChangeMessageVisibilityBatch",
            O::PurgeQueue => "PurgeQueue",
            O::TagQueue => "TagQueue",
            O::UntagQueue => "UntagQueue",
            O::ListQueueTags => "ListQueueTags",
            O::ListDeadLetterSourceQueues => "ListDeadLetterSourceQueues",
            O::StartMessageMoveTask => "StartMessageMoveTask",
            O::ListMessageMoveTasks => "ListMessageMoveTasks",
            O::CancelMessageMoveTask => "CancelMessageMoveTask",
        }
    }
}

/// What an operation needs besides its input.
pub struct Context<'a> {
    pub queues: &'a QueueService,
    pub account_id: &'a str,
    /// `http://<Host>` for minted queue URLs.
    pub base_url: &'a str,
    pub sender_id: &'a str,
    /// The request's `X-Amzn-Trace-Id`: sent messages' `AWSTraceHeader` unless they set one.
    pub trace_header: Option<&'a str>,
}

impl Context<'_> {
    fn url(&self, q: &QueueRecord) -> String {
        format!("{}/{}/{}", self.base_url, q.account, q.name)
    }

    /// The queue a `QueueUrl` names (its last two path segments: account and name).
    async fn queue(&self, input: &Value) -> Result<std::sync::Arc<QueueRecord>, QueueError> {
        let url = required(input, "QueueUrl")?;
        let (account, name) = parse_queue_url(&url).ok_or(QueueError::QueueDoesNotExist)?;
        self.queues.queue(account, name).await
    }
}

/// `…/<account>/<name>` (scheme, host and any prefix ignored).
pub fn parse_queue_url(url: &str) -> Option<(&str, &str)> {
    let path = url.split(['?', '#']).next()?.trim_end_matches('/');
    let mut segments = path.rsplit('/');
    let name = segments.next().filter(|s| !s.is_empty())?;
    let account = segments.next().filter(|s| !s.is_empty())?;
    Some((account, name))
}

pub async fn execute(op: Operation, input: &Value, cx: &Context<'_>) -> Result<Value, QueueError> {
    use Operation as O;
    let q = cx.queues;
    Ok(match op {
        O::CreateQueue => {
            let name = required(input, "QueueName")?;
            let created = q
                .create_queue(
                    cx.account_id,
                    &name,
                    string_map_of(input, "Attributes")?,
                    string_map_of(input, "tags")?,
                )
                .await?;
            json!({"QueueUrl": cx.url(&created)})
        }
        O::GetQueueUrl => {
            let name = required(input, "QueueName")?;
            let owner = string(input, "QueueOwnerAWSAccountId")?;
            let found = q
                .queue(owner.as_deref().unwrap_or(cx.account_id), &name)
                .await?;
            json!({"QueueUrl": cx.url(&found)})
        }
        O::ListQueues => {
            let prefix = string(input, "QueueNamePrefix")?;
            let token = string(input, "NextToken")?;
            let (queues, next) = q
                .list_queues(
                    cx.account_id,
                    prefix.as_deref(),
                    int(input, "MaxResults")?,
                    token.as_deref(),
                )
                .await?;
            let mut out = Map::new();
            if !queues.is_empty() {
                out.insert(
                    "QueueUrls".into(),
                    json!(queues.iter().map(|x| cx.url(x)).collect::<Vec<_>>()),
                );
            }
            if let Some(t) = next {
                out.insert("NextToken".into(), json!(t));
            }
            Value::Object(out)
        }
        O::DeleteQueue => {
            let queue = cx.queue(input).await?;
            q.delete_queue(&queue).await?;
            json!({})
        }
        O::GetQueueAttributes => {
            let queue = cx.queue(input).await?;
            let names = strings(input, "AttributeNames")?;
            let attrs = q.get_attributes(&queue, &names).await?;
            if attrs.is_empty() {
                json!({})
            } else {
                json!({"Attributes": attrs})
            }
        }
        O::SetQueueAttributes => {
            let queue = cx.queue(input).await?;
            if input.get("Attributes").is_none() {
                return Err(QueueError::MissingParameter("Attributes".into()));
            }
            q.set_attributes(&queue, string_map_of(input, "Attributes")?)
                .await?;
            json!({})
        }
        O::SendMessage => {
            let queue = cx.queue(input).await?;
            let r = q
                .send(&queue, &traced(send_input(input)?, cx), cx.sender_id)
                .await?;
            send_output(&r, None)
        }
        O::SendMessageBatch => {
            let queue = cx.queue(input).await?;
            let mut batch = Vec::new();
            let mut early: Vec<EntryResult<SendResult>> = Vec::new();
            for e in entries(input)? {
                let id = string(&e, "Id")?.unwrap_or_default();
                match send_input(&e) {
                    Ok(i) => batch.push((id, traced(i, cx))),
                    Err(err) => early.push((id, Err(err))),
                }
            }
            let ids: Vec<String> = batch
                .iter()
                .map(|(id, _)| id.clone())
                .chain(early.iter().map(|(id, _)| id.clone()))
                .collect();
            kindling_queues::check_batch(
                ids.iter().map(String::as_str),
                "SendMessageBatchRequestEntry",
            )?;
            let results = if batch.is_empty() {
                Vec::new()
            } else {
                q.send_batch(&queue, batch, cx.sender_id).await?
            };
            batch_output(results.into_iter().chain(early), |id, r| {
                send_output(r, Some(id))
            })
        }
        O::ReceiveMessage => {
            let queue = cx.queue(input).await?;
            let mut system = strings(input, "AttributeNames")?;
            system.extend(strings(input, "MessageSystemAttributeNames")?);
            let r = ReceiveInput {
                max_messages: int(input, "MaxNumberOfMessages")?,
                visibility_timeout: int(input, "VisibilityTimeout")?,
                wait_seconds: int(input, "WaitTimeSeconds")?,
                system_attribute_names: system,
                message_attribute_names: strings(input, "MessageAttributeNames")?,
            };
            let messages = q.receive(&queue, &r).await?;
            if messages.is_empty() {
                json!({})
            } else {
                json!({"Messages": messages.iter().map(message_output).collect::<Vec<_>>()})
            }
        }
        O::DeleteMessage => {
            let queue = cx.queue(input).await?;
            q.delete(&queue, &required(input, "ReceiptHandle")?).await?;
            json!({})
        }
        O::DeleteMessageBatch => {
            let queue = cx.queue(input).await?;
            let mut list = Vec::new();
            for e in entries(input)? {
                list.push((
                    string(&e, "Id")?.unwrap_or_default(),
                    string(&e, "ReceiptHandle")?.unwrap_or_default(),
                ));
            }
            let results = q.delete_batch(&queue, list).await?;
            batch_output(results, |id, ()| json!({"Id": id}))
        }
        O::ChangeMessageVisibility => {
            let queue = cx.queue(input).await?;
            let timeout = int(input, "VisibilityTimeout")?
                .ok_or_else(|| QueueError::MissingParameter("VisibilityTimeout".into()))?;
            q.change_visibility(&queue, &required(input, "ReceiptHandle")?, timeout)
                .await?;
            json!({})
        }
        O::ChangeMessageVisibilityBatch => {
            let queue = cx.queue(input).await?;
            let mut list = Vec::new();
            for e in entries(input)? {
                list.push((
                    string(&e, "Id")?.unwrap_or_default(),
                    string(&e, "ReceiptHandle")?.unwrap_or_default(),
                    int(&e, "VisibilityTimeout")?.unwrap_or(0),
                ));
            }
            let results = q.change_visibility_batch(&queue, list).await?;
            batch_output(results, |id, ()| json!({"Id": id}))
        }
        O::PurgeQueue => {
            let queue = cx.queue(input).await?;
            q.purge(&queue).await?;
            json!({})
        }
        O::TagQueue => {
            let queue = cx.queue(input).await?;
            q.tag(&queue, string_map_of(input, "Tags")?).await?;
            json!({})
        }
        O::UntagQueue => {
            let queue = cx.queue(input).await?;
            q.untag(&queue, &strings(input, "TagKeys")?).await?;
            json!({})
        }
        O::ListQueueTags => {
            let queue = cx.queue(input).await?;
            if queue.tags.is_empty() {
                json!({})
            } else {
                json!({"Tags": queue.tags})
            }
        }
        O::ListDeadLetterSourceQueues => {
            let queue = cx.queue(input).await?;
            let token = string(input, "NextToken")?;
            let (sources, next) = q
                .dead_letter_sources(&queue, int(input, "MaxResults")?, token.as_deref())
                .await?;
            let mut out =
                json!({"queueUrls": sources.iter().map(|x| cx.url(x)).collect::<Vec<_>>()});
            if let Some(t) = next {
                out["NextToken"] = json!(t);
            }
            out
        }
        O::StartMessageMoveTask => {
            let source = required(input, "SourceArn")?;
            let dest = string(input, "DestinationArn")?;
            let handle = q
                .start_move_task(
                    &source,
                    dest.as_deref(),
                    int(input, "MaxNumberOfMessagesPerSecond")?,
                )
                .await?;
            json!({"TaskHandle": handle})
        }
        O::ListMessageMoveTasks => {
            let source = required(input, "SourceArn")?;
            let tasks = q
                .list_move_tasks(&source, int(input, "MaxResults")?)
                .await?;
            json!({"Results": tasks})
        }
        O::CancelMessageMoveTask => {
            let handle = required(input, "TaskHandle")?;
            let moved = q.cancel_move_task(&handle).await?;
            json!({"ApproximateNumberOfMessagesMoved": moved})
        }
    })
}

/// Gives a message the request's trace header as `AWSTraceHeader` when it has none.
fn traced(mut input: SendInput, cx: &Context<'_>) -> SendInput {
    if let Some(h) = cx.trace_header
        && !input.system_attributes.contains_key("AWSTraceHeader")
    {
        input.system_attributes.insert(
            "AWSTraceHeader".into(),
            kindling_queues::AttributeInput {
                data_type: Some("String".into()),
                string_value: Some(h.to_string()),
                ..Default::default()
            },
        );
    }
    input
}

fn send_output(r: &SendResult, id: Option<&str>) -> Value {
    let mut out = Map::new();
    if let Some(id) = id {
        out.insert("Id".into(), json!(id));
    }
    out.insert("MessageId".into(), json!(r.message_id));
    out.insert("MD5OfMessageBody".into(), json!(r.md5_body));
    if let Some(m) = &r.md5_attributes {
        out.insert("MD5OfMessageAttributes".into(), json!(m));
    }
    if let Some(m) = &r.md5_system_attributes {
        out.insert("MD5OfMessageSystemAttributes".into(), json!(m));
    }
    if let Some(s) = &r.sequence_number {
        out.insert("SequenceNumber".into(), json!(s));
    }
    Value::Object(out)
}

fn batch_output<T>(
    results: impl IntoIterator<Item = EntryResult<T>>,
    ok: impl Fn(&str, &T) -> Value,
) -> Value {
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for (id, r) in results {
        match r {
            Ok(v) => successful.push(ok(&id, &v)),
            Err(e) => {
                let (_, legacy, _) = queue_codes(&e);
                failed.push(json!({
                    "Id": id,
                    "SenderFault": !e.is_internal(),
                    "Code": legacy,
                    "Message": e.to_string(),
                }));
            }
        }
    }
    json!({"Successful": successful, "Failed": failed})
}

fn attribute_output(a: &AttributeValue) -> Value {
    let mut v = Map::new();
    if let Some(s) = &a.string_value {
        v.insert("StringValue".into(), json!(s));
    }
    if let Some(b) = &a.binary_value {
        v.insert("BinaryValue".into(), json!(STANDARD.encode(b)));
    }
    v.insert("DataType".into(), json!(a.data_type));
    Value::Object(v)
}

fn message_output(m: &ReceivedMessage) -> Value {
    let mut v = Map::new();
    v.insert("MessageId".into(), json!(m.message_id));
    v.insert("ReceiptHandle".into(), json!(m.receipt_handle));
    v.insert("MD5OfBody".into(), json!(m.md5_body));
    v.insert("Body".into(), json!(m.body));
    if !m.attributes.is_empty() {
        v.insert("Attributes".into(), json!(m.attributes));
    }
    if let Some(md5) = &m.md5_attributes {
        v.insert("MD5OfMessageAttributes".into(), json!(md5));
        let attrs: BTreeMap<&String, Value> = m
            .message_attributes
            .iter()
            .map(|(k, a)| (k, attribute_output(a)))
            .collect();
        v.insert("MessageAttributes".into(), json!(attrs));
    }
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_by_their_last_two_segments() {
        assert_eq!(
            parse_queue_url("http://localhost:4566/000000000000/q1"),
            Some(("000000000000", "q1"))
        );
        assert_eq!(
            parse_queue_url("https://sqs.us-east-1.amazonaws.com/123/q.fifo/"),
            Some(("123", "q.fifo"))
        );
        assert_eq!(parse_queue_url("q1"), None);
    }
}
