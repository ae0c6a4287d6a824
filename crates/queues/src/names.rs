//! Queue and topic names and ARNs.

/// `[A-Za-z0-9_-]{1,80}`, FIFO names ending in `.fifo` (counted in the 80).
pub fn valid_queue_name(name: &str, fifo: bool) -> bool {
    let stem = if fifo {
        match name.strip_suffix(".fifo") {
            Some(s) => s,
            None => return false,
        }
    } else {
        name
    };
    !stem.is_empty()
        && name.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `arn:aws:sqs:<region>:<account>:<name>` → (region, account, name).
pub fn parse_queue_arn(arn: &str) -> Option<(&str, &str, &str)> {
    parse_arn(arn, "sqs")
}

/// `arn:aws:sns:<region>:<account>:<name>` → (region, account, name).
pub fn parse_topic_arn(arn: &str) -> Option<(&str, &str, &str)> {
    parse_arn(arn, "sns")
}

fn parse_arn<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, s, region, account, name]
            if *s == service && !name.is_empty() && !name.contains(':') =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

/// A topic name: `[A-Za-z0-9_-]{1,256}`, FIFO topics ending in `.fifo`.
pub fn valid_topic_name(name: &str, fifo: bool) -> bool {
    let stem = if fifo {
        match name.strip_suffix(".fifo") {
            Some(s) => s,
            None => return false,
        }
    } else {
        name
    };
    !stem.is_empty()
        && name.len() <= 256
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert!(valid_queue_name("q-1_a", false));
        assert!(!valid_queue_name("q.fifo", false));
        assert!(valid_queue_name("q.fifo", true));
        assert!(!valid_queue_name(".fifo", true));
        assert!(!valid_queue_name(&"a".repeat(81), false));
        assert_eq!(
            parse_queue_arn("arn:aws:sqs:us-east-1:000000000000:q"),
            Some(("us-east-1", "000000000000", "q"))
        );
        assert_eq!(parse_queue_arn("arn:aws:sns:us-east-1:0:q"), None);
        assert!(valid_topic_name("t", false));
    }
}
