//! Queue attributes: names, defaults, ranges and the JSON policies (redrive, redrive-allow).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::QueueError;

/// Attributes a client may set (at creation or later), FIFO ones aside.
const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
];

/// Attributes only FIFO queues have (`FifoQueue` itself is set at creation only).
const FIFO_ONLY: &[&str] = &[
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Computed attributes, readable only.
pub const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// The largest message (body and attributes) and the default `MaximumMessageSize`.
pub const MAX_MESSAGE_SIZE: usize = 1_048_576;

/// Defaults of a new queue.
pub fn defaults(fifo: bool) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = [
        ("DelaySeconds", "0"),
        ("MaximumMessageSize", "1048576"),
        ("MessageRetentionPeriod", "345600"),
        ("ReceiveMessageWaitTimeSeconds", "0"),
        ("VisibilityTimeout", "30"),
        ("SqsManagedSseEnabled", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if fifo {
        for (k, v) in [
            ("FifoQueue", "true"),
            ("ContentBasedDeduplication", "false"),
            ("DeduplicationScope", "queue"),
            ("FifoThroughputLimit", "perQueue"),
        ] {
            a.insert(k.into(), v.into());
        }
    }
    a
}

fn int_in(name: &str, value: &str, lo: i64, hi: i64) -> Result<String, QueueError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n.to_string()),
        _ => Err(QueueError::InvalidAttributeValue(format!(
            "Invalid value for the parameter {name}."
        ))),
    }
}

fn boolean(name: &str, value: &str) -> Result<String, QueueError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err(QueueError::InvalidAttributeValue(format!(
            "Invalid value for the parameter {name}."
        ))),
    }
}

/// Checks one attribute a client sets and returns its normalized value (`""` removes the
/// JSON policies).
pub fn normalize(name: &str, value: &str, fifo: bool) -> Result<String, QueueError> {
    if !(SETTABLE.contains(&name) || fifo && FIFO_ONLY.contains(&name)) {
        return Err(QueueError::InvalidAttributeName(name.to_string()));
    }
    match name {
        "DelaySeconds" => int_in(name, value, 0, 900),
        "MaximumMessageSize" => int_in(name, value, 1024, MAX_MESSAGE_SIZE as i64),
        "MessageRetentionPeriod" => int_in(name, value, 60, 1_209_600),
        "ReceiveMessageWaitTimeSeconds" => int_in(name, value, 0, 20),
        "VisibilityTimeout" => int_in(name, value, 0, 43_200),
        "KmsDataKeyReusePeriodSeconds" => int_in(name, value, 60, 86_400),
        "SqsManagedSseEnabled" | "ContentBasedDeduplication" => boolean(name, value),
        "DeduplicationScope" => match value {
            "messageGroup" | "queue" => Ok(value.to_string()),
            _ => Err(QueueError::InvalidAttributeValue(format!(
                "Invalid value for the parameter {name}."
            ))),
        },
        "FifoThroughputLimit" => match value {
            "perQueue" | "perMessageGroupId" => Ok(value.to_string()),
            _ => Err(QueueError::InvalidAttributeValue(format!(
                "Invalid value for the parameter {name}."
            ))),
        },
        "Policy" => {
            if value.is_empty() {
                return Ok(String::new());
            }
            match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(_)) => Ok(value.to_string()),
                _ => Err(QueueError::InvalidAttributeValue(
                    "Invalid value for the parameter Policy.".into(),
                )),
            }
        }
        "RedrivePolicy" => redrive_policy(value),
        "RedriveAllowPolicy" => redrive_allow_policy(value),
        _ => Ok(value.to_string()),
    }
}

fn bad_redrive(reason: &str) -> QueueError {
    QueueError::InvalidParameterValue(format!(
        "Value for parameter RedrivePolicy is invalid. Reason: {reason}"
    ))
}

/// A parsed `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    pub fn parse(value: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(value).ok()?;
        let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
        let count = match v.get("maxReceiveCount")? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        Some(Self {
            dead_letter_target_arn: arn,
            max_receive_count: u32::try_from(count).ok()?,
        })
    }
}

fn redrive_policy(value: &str) -> Result<String, QueueError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let v: Value = serde_json::from_str(value).map_err(|_| bad_redrive("Invalid JSON"))?;
    let Value::Object(map) = &v else {
        return Err(bad_redrive("Invalid JSON"));
    };
    for k in map.keys() {
        if k != "deadLetterTargetArn" && k != "maxReceiveCount" {
            return Err(bad_redrive(&format!("Unknown attribute {k}")));
        }
    }
    let arn = v
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_redrive("Redrive policy must contain deadLetterTargetArn"))?;
    if crate::names::parse_queue_arn(arn).is_none() {
        return Err(bad_redrive("Invalid deadLetterTargetArn"));
    }
    let policy = RedrivePolicy::parse(value)
        .ok_or_else(|| bad_redrive("Redrive policy must contain maxReceiveCount"))?;
    if !(1..=1000).contains(&policy.max_receive_count) {
        return Err(bad_redrive(
            "Invalid value for maxReceiveCount: must be between 1 and 1000",
        ));
    }
    Ok(
        json!({"deadLetterTargetArn": arn, "maxReceiveCount": policy.max_receive_count})
            .to_string(),
    )
}

fn redrive_allow_policy(value: &str) -> Result<String, QueueError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let bad = |reason: &str| {
        QueueError::InvalidParameterValue(format!(
            "Value for parameter RedriveAllowPolicy is invalid. Reason: {reason}"
        ))
    };
    let v: Value = serde_json::from_str(value).map_err(|_| bad("Invalid JSON"))?;
    let permission = v
        .get("redrivePermission")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("redrivePermission is required"))?;
    let sources = v.get("sourceQueueArns");
    match permission {
        "allowAll" | "denyAll" if sources.is_some() => Err(bad(
            "sourceQueueArns may only be given with redrivePermission byQueue",
        )),
        "allowAll" | "denyAll" => Ok(json!({"redrivePermission": permission}).to_string()),
        "byQueue" => {
            let arns = sources
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.len() <= 10)
                .ok_or_else(|| bad("byQueue requires 1 to 10 sourceQueueArns"))?;
            if arns.iter().any(|a| a.as_str().is_none()) {
                return Err(bad("sourceQueueArns must be strings"));
            }
            Ok(json!({"redrivePermission": "byQueue", "sourceQueueArns": arns}).to_string())
        }
        _ => Err(bad("Invalid redrivePermission")),
    }
}

/// Whether `source_arn` may use the queue with this `RedriveAllowPolicy` as its dead-letter
/// queue.
pub fn redrive_allowed(allow_policy: Option<&str>, source_arn: &str) -> bool {
    let Some(v) = allow_policy.and_then(|p| serde_json::from_str::<Value>(p).ok()) else {
        return true;
    };
    match v.get("redrivePermission").and_then(Value::as_str) {
        Some("denyAll") => false,
        Some("byQueue") => v
            .get("sourceQueueArns")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(source_arn))),
        _ => true,
    }
}

/// A numeric attribute of a stored queue (always present: defaults are stored).
pub fn number(attrs: &BTreeMap<String, String>, name: &str, default: i64) -> i64 {
    attrs
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ranges_names_and_policies() {
        assert_eq!(normalize("VisibilityTimeout", "60", false).unwrap(), "60");
        assert!(matches!(
            normalize("VisibilityTimeout", "43201", false),
            Err(QueueError::InvalidAttributeValue(_))
        ));
        assert!(matches!(
            normalize("ContentBasedDeduplication", "true", false),
            Err(QueueError::InvalidAttributeName(_))
        ));
        assert_eq!(
            normalize("ContentBasedDeduplication", "TRUE", true).unwrap(),
            "true"
        );
        let p = normalize(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            RedrivePolicy::parse(&p).unwrap().max_receive_count,
            3,
            "{p}"
        );
        assert!(normalize("RedrivePolicy", r#"{"maxReceiveCount":3}"#, false).is_err());
        assert!(!redrive_allowed(
            Some(r#"{"redrivePermission":"denyAll"}"#),
            "arn"
        ));
        assert!(redrive_allowed(None, "arn"));
    }
}
