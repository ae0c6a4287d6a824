//! The SQS event Lambda gives a function (`{"Records":[...]}`), and the document filters match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_queues::{AttributeValue, ReceivedMessage};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

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

/// The SQS event: `{"Records":[...]}`, serialized straight from the received messages (no
/// intermediate JSON values).
pub(crate) struct SqsEvent<'a> {
    pub records: Vec<SqsRecord<'a>>,
}

impl Serialize for SqsEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("Records", &self.records)?;
        map.end()
    }
}

impl SqsEvent<'_> {
    /// The event's JSON, in a buffer sized for it up front.
    pub(crate) fn to_vec(&self) -> serde_json::Result<Vec<u8>> {
        let size: usize = self
            .records
            .iter()
            .map(|r| r.m.body.len() + r.m.receipt_handle.len() + RECORD_OVERHEAD)
            .sum();
        let mut out = Vec::with_capacity(size + 16);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }
}

/// Bytes of a record besides its body and receipt handle (keys, ids, digests, ARN), roughly.
const RECORD_OVERHEAD: usize = 640;

/// One record of the SQS event (keys in Lambda's order).
#[derive(Clone, Copy)]
pub(crate) struct SqsRecord<'a> {
    pub m: &'a ReceivedMessage,
    pub queue_arn: &'a str,
    pub region: &'a str,
}

impl Serialize for SqsRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.m;
        let mut r = s.serialize_map(None)?;
        r.serialize_entry("messageId", &m.message_id)?;
        r.serialize_entry("receiptHandle", &m.receipt_handle)?;
        r.serialize_entry("body", &m.body)?;
        r.serialize_entry("attributes", &SystemAttributes(m))?;
        r.serialize_entry("messageAttributes", &MessageAttributes(m))?;
        r.serialize_entry("md5OfBody", &m.md5_body)?;
        if let Some(md5) = &m.md5_attributes {
            r.serialize_entry("md5OfMessageAttributes", md5)?;
        }
        r.serialize_entry("eventSource", "aws:sqs")?;
        r.serialize_entry("eventSourceARN", self.queue_arn)?;
        r.serialize_entry("awsRegion", self.region)?;
        r.end()
    }
}

/// The system attributes the event carries, in [`EVENT_ATTRIBUTES`] order (all strings).
struct SystemAttributes<'a>(&'a ReceivedMessage);

impl Serialize for SystemAttributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for name in EVENT_ATTRIBUTES {
            if let Some(v) = self.0.attributes.get(*name) {
                map.serialize_entry(name, v)?;
            }
        }
        map.end()
    }
}

/// Message attributes as Lambda renders them (`stringValue`/`binaryValue` base64, empty list
/// values, `dataType`).
struct MessageAttributes<'a>(&'a ReceivedMessage);

impl Serialize for MessageAttributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.message_attributes.len()))?;
        for (name, v) in &self.0.message_attributes {
            map.serialize_entry(name, &MessageAttribute(v))?;
        }
        map.end()
    }
}

struct MessageAttribute<'a>(&'a AttributeValue);

impl Serialize for MessageAttribute<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let mut a = s.serialize_map(None)?;
        if let Some(sv) = &v.string_value {
            a.serialize_entry("stringValue", sv)?;
        }
        if let Some(b) = &v.binary_value {
            a.serialize_entry("binaryValue", &STANDARD.encode(b))?;
        }
        a.serialize_entry("stringListValues", &[] as &[&str])?;
        a.serialize_entry("binaryListValues", &[] as &[&str])?;
        a.serialize_entry("dataType", &v.data_type)?;
        a.end()
    }
}

/// What filter patterns see: the record with a JSON body parsed (a body that is not JSON stays
/// a string), as Lambda filters SQS messages. Built only when the mapping has filters.
pub(crate) fn filter_document(record: &SqsRecord<'_>) -> Value {
    let mut doc = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Ok(parsed) = serde_json::from_str::<Value>(&record.m.body)
        && (parsed.is_object() || parsed.is_array())
    {
        doc["body"] = parsed;
    }
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
        let rec = SqsRecord {
            m: &m,
            queue_arn: "arn:aws:sqs:us-east-1:123456789012:q",
            region: "us-east-1",
        };
        let bytes = SqsEvent { records: vec![rec] }.to_vec().unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        let r = &event["Records"][0];
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "messageId",
                "receiptHandle",
                "body",
                "attributes",
                "messageAttributes",
                "md5OfBody",
                "md5OfMessageAttributes",
                "eventSource",
                "eventSourceARN",
                "awsRegion"
            ]
        );
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["receiptHandle"], "rh");
        assert_eq!(r["body"], r#"{"k":"v"}"#);
        assert_eq!(r["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(r["messageAttributes"]["a"]["binaryValue"], "aGk=");
        assert_eq!(r["messageAttributes"]["a"]["dataType"], "Binary");
        assert_eq!(r["md5OfMessageAttributes"], "abc");
        assert_eq!(
            r["messageAttributes"]["a"]["stringListValues"],
            serde_json::json!([])
        );
        assert!(r["messageAttributes"]["a"].get("stringValue").is_none());
        assert_eq!(filter_document(&rec)["body"]["k"], "v");
        assert_eq!(
            filter_document(&rec)["attributes"]["SentTimestamp"],
            "1714564800000"
        );
    }
}
