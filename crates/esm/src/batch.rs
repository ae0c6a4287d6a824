//! Reading a function's answer to a batch: with `ReportBatchItemFailures`, which items failed
//! (Lambda's partial batch response rules, lambda-facts §6.4).

use std::collections::HashSet;

use serde_json::Value;

/// What to do with a batch after the function answered without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Every item succeeded.
    AllSucceeded,
    /// These item ids failed; the others succeeded.
    Failed(HashSet<String>),
    /// The answer is unusable: the whole batch failed.
    AllFailed,
}

/// Reads a partial batch response. A complete success is an empty or null response or
/// `batchItemFailures` list; a complete failure is invalid JSON, or an item whose
/// `itemIdentifier` is missing, empty, not a string or not in the batch.
pub(crate) fn settle(payload: &[u8], batch_ids: &HashSet<&str>) -> Settlement {
    let text = std::str::from_utf8(payload).unwrap_or("\u{fffd}").trim();
    if text.is_empty() {
        return Settlement::AllSucceeded;
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Settlement::AllFailed;
    };
    let list = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return Settlement::AllSucceeded,
        Some(Value::Array(list)) => list,
        Some(_) => return Settlement::AllFailed,
    };
    if list.is_empty() {
        return Settlement::AllSucceeded;
    }
    let mut failed = HashSet::new();
    for item in list {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && batch_ids.contains(id) => {
                failed.insert(id.to_string());
            }
            _ => return Settlement::AllFailed,
        }
    }
    Settlement::Failed(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_rules() {
        let ids: HashSet<&str> = ["a", "b"].into_iter().collect();
        assert_eq!(settle(b"", &ids), Settlement::AllSucceeded);
        assert_eq!(settle(b"null", &ids), Settlement::AllSucceeded);
        assert_eq!(settle(b"{}", &ids), Settlement::AllSucceeded);
        assert_eq!(
            settle(br#"{"batchItemFailures":[]}"#, &ids),
            Settlement::AllSucceeded
        );
        assert_eq!(
            settle(br#"{"batchItemFailures":null}"#, &ids),
            Settlement::AllSucceeded
        );
        assert_eq!(
            settle(br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#, &ids),
            Settlement::Failed(["b".to_string()].into_iter().collect())
        );
        assert_eq!(settle(b"{nope", &ids), Settlement::AllFailed);
        assert_eq!(
            settle(br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, &ids),
            Settlement::AllFailed
        );
        assert_eq!(
            settle(br#"{"batchItemFailures":[{"itemId":"a"}]}"#, &ids),
            Settlement::AllFailed
        );
        assert_eq!(
            settle(br#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#, &ids),
            Settlement::AllFailed
        );
    }
}
