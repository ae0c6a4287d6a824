//! The SQS event Lambda gives a function (`{"Records":[...]}`), and the document filters match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_queues::ReceivedMessage;
use serde_json::{Map, Value, json};

/// System attributes the event carries (all values are strings).
const EVENT_ATTRIBUTES: &[&str] = &[
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// One record of the SQS event.
pub(crate) fn sqs_record(m: &ReceivedMessage, queue_arn: &str, region: &str) -> Value {
    let mut attributes = Map::new();
    for name in EVENT_ATTRIBUTES {
        if let Some(v) = m.attributes.get(*name) {
            attributes.insert((*name).to_string(), json!(v));
        }
    }
    let mut message_attributes = Map::new();
    for (name, v) in &m.message_attributes {
        let mut a = Map::new();
        if let Some(s) = &v.string_value {
            a.insert("stringValue".into(), json!(s));
        }
        if let Some(b) = &v.binary_value {
            a.insert("binaryValue".into(), json!(STANDARD.encode(b)));
        }
        a.insert("stringListValues".into(), json!([]));
        a.insert("binaryListValues".into(), json!([]));
        a.insert("dataType".into(), json!(v.data_type));
        message_attributes.insert(name.clone(), Value::Object(a));
    }
    let mut r = Map::new();
    r.insert("messageId".into(), json!(m.message_id));
    r.insert("receiptHandle".into(), json!(m.receipt_handle));
    r.insert("body".into(), json!(m.body));
    r.insert("attributes".into(), Value::Object(attributes));
    r.insert(
        "messageAttributes".into(),
        Value::Object(message_attributes),
    );
    r.insert("md5OfBody".into(), json!(m.md5_body));
    if let Some(md5) = &m.md5_attributes {
        r.insert("md5OfMessageAttributes".into(), json!(md5));
    }
    r.insert("eventSource".into(), json!("aws:sqs"));
    r.insert("eventSourceARN".into(), json!(queue_arn));
    r.insert("awsRegion".into(), json!(region));
    Value::Object(r)
}

/// What filter patterns see: the record with a JSON body parsed (a body that is not JSON stays
/// a string), as Lambda filters SQS messages.
pub(crate) fn filter_document(record: &Value) -> Value {
    let mut doc = record.clone();
    if let Some(body) = record.get("body").and_then(Value::as_str)
        && let Ok(parsed) = serde_json::from_str::<Value>(body)
        && (parsed.is_object() || parsed.is_array())
    {
        doc["body"] = parsed;
    }
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kindling_queues::AttributeValue;

    use super::*;

    #[test]
    fn records_have_lambdas_shape() {
        let m = ReceivedMessage {
            message_id: "m-1".into(),
            receipt_handle: "rh".into(),
            md5_body: "5d41402abc4b2a76b9719d911017c592".into(),
            body: r#"{"k":"v"}"#.into(),
            attributes: BTreeMap::from([
                ("ApproximateReceiveCount".to_string(), "1".to_string()),
                ("SentTimestamp".to_string(), "1714564800000".to_string()),
            ]),
            md5_attributes: Some("abc".into()),
            message_attributes: BTreeMap::from([(
                "a".to_string(),
                AttributeValue {
                    data_type: "Binary".into(),
                    string_value: None,
                    binary_value: Some(b"hi".to_vec()),
                },
            )]),
        };
        let r = sqs_record(&m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(r["messageAttributes"]["a"]["binaryValue"], "aGk=");
        assert_eq!(r["messageAttributes"]["a"]["dataType"], "Binary");
        assert_eq!(r["md5OfMessageAttributes"], "abc");
        assert_eq!(filter_document(&r)["body"]["k"], "v");
    }
}
