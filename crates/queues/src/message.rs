//! Messages as clients send them: validation (characters, attributes, sizes, FIFO ids) and the
//! stored form with its digests.

use std::collections::BTreeMap;

use kindling_model::messaging::{AttributeValue, NewMessage};

use crate::digest::{md5_of_attributes, md5_of_body};
use crate::error::QueueError;

/// One message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendInput {
    pub body: String,
    pub delay_seconds: Option<i64>,
    pub attributes: BTreeMap<String, AttributeInput>,
    pub system_attributes: BTreeMap<String, AttributeInput>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// A message attribute as sent (the list values are reserved by SQS and refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeInput {
    pub data_type: Option<String>,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
    pub has_list_values: bool,
}

/// Characters SQS accepts in bodies and attribute values.
pub fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(text: &str, what: &str) -> Result<(), QueueError> {
    if let Some(c) = text.chars().find(|c| !allowed_char(*c)) {
        return Err(QueueError::InvalidMessageContents(format!(
            "Invalid binary character '#x{:X}' was found in the {what}, the set of allowed \
             characters is: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            c as u32
        )));
    }
    Ok(())
}

fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// Validates user attributes; returns them in stored form and their size in bytes.
pub fn user_attributes(
    attrs: &BTreeMap<String, AttributeInput>,
) -> Result<(BTreeMap<String, AttributeValue>, usize), QueueError> {
    if attrs.len() > 10 {
        return Err(QueueError::invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attrs.len()
        )));
    }
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (name, a) in attrs {
        if !valid_attribute_name(name) {
            return Err(QueueError::invalid(format!(
                "Message (user) attribute name '{name}' is invalid. The attribute name can \
                 contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters, \
                 must not start or end with a period, must not have successive periods and \
                 must not start with 'AWS.' or 'Amazon.'."
            )));
        }
        let v = attribute_value(name, a, "user")?;
        size += name.len() + v.data_type.len() + value_len(&v);
        out.insert(name.clone(), v);
    }
    Ok((out, size))
}

fn value_len(v: &AttributeValue) -> usize {
    v.string_value.as_ref().map_or(0, String::len) + v.binary_value.as_ref().map_or(0, Vec::len)
}

fn attribute_value(
    name: &str,
    a: &AttributeInput,
    kind: &str,
) -> Result<AttributeValue, QueueError> {
    let data_type = a.data_type.clone().unwrap_or_default();
    if data_type.is_empty() {
        return Err(QueueError::invalid(format!(
            "The message ({kind}) attribute '{name}' must contain a non-empty attribute type."
        )));
    }
    let base = data_type.split('.').next().unwrap_or_default();
    let custom = data_type.get(base.len()..).unwrap_or_default();
    if !matches!(base, "String" | "Number" | "Binary")
        || data_type.len() > 256
        || (!custom.is_empty() && (custom.len() == 1 || !custom.starts_with('.')))
    {
        return Err(QueueError::invalid(format!(
            "The type of message ({kind}) attribute '{name}' is invalid. You must use only the \
             following supported type prefixes: Binary, Number, String."
        )));
    }
    if a.has_list_values {
        return Err(QueueError::invalid(format!(
            "Message ({kind}) attribute '{name}': StringListValues and BinaryListValues are \
             reserved for future use and are not supported."
        )));
    }
    let missing = || {
        QueueError::invalid(format!(
            "The message ({kind}) attribute '{name}' must contain a non-empty message \
             attribute value for message attribute type '{data_type}'."
        ))
    };
    if base == "Binary" {
        let b = a
            .binary_value
            .clone()
            .filter(|b| !b.is_empty())
            .ok_or_else(missing)?;
        return Ok(AttributeValue {
            data_type,
            string_value: None,
            binary_value: Some(b),
        });
    }
    let s = a
        .string_value
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(missing)?;
    check_chars(&s, &format!("message ({kind}) attribute '{name}'"))?;
    if base == "Number" && !valid_number(&s) {
        return Err(QueueError::invalid(format!(
            "Can't cast the value of message ({kind}) attribute '{name}' to a number."
        )));
    }
    Ok(AttributeValue {
        data_type,
        string_value: Some(s),
        binary_value: None,
    })
}

/// Numbers SQS accepts: decimal with optional sign, fraction and exponent, up to 38 digits.
fn valid_number(s: &str) -> bool {
    let t = s.trim();
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    digits > 0 && digits <= 38 && t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Validates system attributes (only `AWSTraceHeader`, a String).
pub fn system_attributes(
    attrs: &BTreeMap<String, AttributeInput>,
) -> Result<(BTreeMap<String, AttributeValue>, usize), QueueError> {
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (name, a) in attrs {
        if name != "AWSTraceHeader" {
            return Err(QueueError::invalid(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
        let v = attribute_value(name, a, "system")?;
        if !v.data_type.starts_with("String") {
            return Err(QueueError::invalid(format!(
                "The message system attribute '{name}' must be of type String."
            )));
        }
        size += name.len() + v.data_type.len() + value_len(&v);
        out.insert(name.clone(), v);
    }
    Ok((out, size))
}

/// `MessageGroupId` / `MessageDeduplicationId`: 1-128 alphanumerics and punctuation.
pub fn check_fifo_id(param: &str, value: &str) -> Result<(), QueueError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(QueueError::invalid(format!(
            "Value {value} for parameter {param} is invalid. Reason: {param} can only include \
             alphanumeric and punctuation characters. 1 to 128 in length."
        )));
    }
    Ok(())
}

/// The queue settings a send is checked against.
#[derive(Debug, Clone)]
pub struct SendRules {
    pub fifo: bool,
    pub max_size: usize,
    pub queue_delay: i64,
    pub content_dedup: bool,
    pub dedup_per_group: bool,
}

/// Validates a send and builds the stored message (ids, digests, timing). `size` is the
/// message's size in bytes (body and attributes).
pub fn build(
    input: &SendInput,
    rules: &SendRules,
    message_id: String,
    sender_id: &str,
    now_ms: i64,
) -> Result<(NewMessage, usize), QueueError> {
    if input.body.is_empty() {
        return Err(QueueError::MissingParameter("MessageBody".into()));
    }
    check_chars(&input.body, "message body")?;
    let (attributes, attr_size) = user_attributes(&input.attributes)?;
    let (system, sys_size) = system_attributes(&input.system_attributes)?;
    let size = input.body.len() + attr_size + sys_size;
    if size > rules.max_size {
        return Err(QueueError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            rules.max_size
        )));
    }
    let delay = match input.delay_seconds {
        Some(d) if rules.fifo => {
            return Err(QueueError::invalid(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: The request include \
                 parameter that is not valid for this queue type."
            )));
        }
        Some(d) if !(0..=900).contains(&d) => {
            return Err(QueueError::invalid(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be \
                 >= 0 and <= 900."
            )));
        }
        Some(d) => d,
        None => rules.queue_delay,
    };
    if let Some(g) = &input.group_id {
        check_fifo_id("MessageGroupId", g)?;
    }
    if let Some(d) = &input.dedup_id {
        check_fifo_id("MessageDeduplicationId", d)?;
    }
    let (mut dedup_id, mut dedup_key) = (None, None);
    if rules.fifo {
        let Some(group) = &input.group_id else {
            return Err(QueueError::MissingParameter("MessageGroupId".into()));
        };
        let id = match &input.dedup_id {
            Some(d) => d.clone(),
            None if rules.content_dedup => sha256_hex(input.body.as_bytes()),
            None => {
                return Err(QueueError::invalid(
                    "The queue should either have ContentBasedDeduplication enabled or \
                     MessageDeduplicationId provided explicitly",
                ));
            }
        };
        dedup_key = Some(if rules.dedup_per_group {
            format!("g:{group}\u{0}{id}")
        } else {
            format!("q:{id}")
        });
        dedup_id = Some(id);
    } else if let Some(d) = &input.dedup_id {
        return Err(QueueError::invalid(format!(
            "Value {d} for parameter MessageDeduplicationId is invalid. Reason: The request \
             include parameter that is not valid for this queue type."
        )));
    }
    Ok((
        NewMessage {
            message_id,
            md5_body: md5_of_body(&input.body),
            md5_attributes: md5_of_attributes(&attributes),
            md5_system_attributes: md5_of_attributes(&system),
            body: input.body.clone(),
            attributes,
            system_attributes: system,
            sender_id: sender_id.to_string(),
            sent_ms: now_ms,
            visible_ms: now_ms + delay * 1000,
            group_id: input.group_id.clone(),
            dedup_id,
            dedup_key,
            dedup_until_ms: now_ms + DEDUP_WINDOW_MS,
            dead_letter_source_arn: None,
            receive_count: 0,
            first_receive_ms: None,
        },
        size,
    ))
}

/// FIFO deduplication window: five minutes.
pub const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(fifo: bool) -> SendRules {
        SendRules {
            fifo,
            max_size: 1024,
            queue_delay: 0,
            content_dedup: true,
            dedup_per_group: false,
        }
    }

    #[test]
    fn validates_bodies_attributes_and_fifo_ids() {
        let ok = SendInput {
            body: "hi".into(),
            ..SendInput::default()
        };
        let (m, size) = build(&ok, &rules(false), "id".into(), "s", 1000).unwrap();
        assert_eq!((m.visible_ms, size), (1000, 2));
        let bad = SendInput {
            body: "a\u{1}".into(),
            ..SendInput::default()
        };
        assert!(matches!(
            build(&bad, &rules(false), "id".into(), "s", 0),
            Err(QueueError::InvalidMessageContents(_))
        ));
        let big = SendInput {
            body: "x".repeat(1025),
            ..SendInput::default()
        };
        assert!(build(&big, &rules(false), "id".into(), "s", 0).is_err());
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "AWS.x".to_string(),
            AttributeInput {
                data_type: Some("String".into()),
                string_value: Some("v".into()),
                ..AttributeInput::default()
            },
        );
        assert!(user_attributes(&attrs).is_err());
        let fifo = SendInput {
            body: "b".into(),
            group_id: Some("g".into()),
            ..SendInput::default()
        };
        let (m, _) = build(&fifo, &rules(true), "id".into(), "s", 0).unwrap();
        assert_eq!(m.dedup_id.as_deref(), Some(sha256_hex(b"b").as_str()));
        let no_group = SendInput {
            body: "b".into(),
            ..SendInput::default()
        };
        assert!(matches!(
            build(&no_group, &rules(true), "id".into(), "s", 0),
            Err(QueueError::MissingParameter(_))
        ));
        assert!(valid_number("-1.5e3"));
        assert!(!valid_number("abc"));
    }
}
