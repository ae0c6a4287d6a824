//! Validation helpers that reproduce the constraint messages of Lambda's API model.
//!
//! Model-level violations (pattern, length, range, enum) are collected in [`Violations`] and
//! reported together, as AWS does: `2 validation errors detected: Value '0' at 'timeout' failed to
//! satisfy constraint: ...; Value ...`.

use std::fmt;

/// A pattern as shown in messages, and the check that implements it.
pub type Pattern<'a> = (&'a str, fn(&str) -> bool);

/// Collected model-constraint violations of one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records a violation of `constraint` by `value` at `field` (a camelCase member path).
    pub fn add(&mut self, value: impl fmt::Display, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Checks `value` against a character class predicate and a length range.
    pub fn string(
        &mut self,
        value: &str,
        field: &str,
        min: usize,
        max: usize,
        pattern: Option<Pattern<'_>>,
    ) {
        let len = value.chars().count();
        if len < min {
            self.add(
                value,
                field,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.add(
                value,
                field,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
        if let Some((text, check)) = pattern
            && len > 0
            && !check(value)
        {
            self.add(
                value,
                field,
                &format!("Member must satisfy regular expression pattern: {text}"),
            );
        }
    }

    /// Checks an integer range.
    pub fn range(&mut self, value: i64, field: &str, min: Option<i64>, max: Option<i64>) {
        if let Some(min) = min
            && value < min
        {
            self.add(
                value,
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && value > max
        {
            self.add(
                value,
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// Checks membership of an enum.
    pub fn one_of(&mut self, value: &str, field: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.add(
                value,
                field,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// The AWS message for these violations, or `None` when there are none.
    pub fn message(&self) -> Option<String> {
        match self.0.len() {
            0 => None,
            1 => Some(format!("1 validation error detected: {}", self.0[0])),
            n => Some(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            )),
        }
    }
}

/// `[a-zA-Z0-9-_]+`
pub fn is_name_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `[a-zA-Z0-9-_\.]+` (namespaced function names accept dots).
pub fn is_namespaced_name_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `\d+` (non-empty, digits only).
pub fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Alias names: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`.
pub fn is_alias_name(s: &str) -> bool {
    is_name_chars(s) && !is_digits(s)
}

/// Environment variable keys: `[a-zA-Z]([a-zA-Z0-9_])+`.
pub fn is_env_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && s.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Handler: `[^\s]+`.
pub fn is_handler(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// Execution role ARN: `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !(partition.is_empty() || partition.starts_with("aws"))
        || !partition
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-')
    {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    account.len() == 12
        && is_digits(account)
        && !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

/// Statement ids: `[a-zA-Z0-9-_]+` (the RemovePermission path also allows `.`).
pub fn is_statement_id(s: &str) -> bool {
    is_name_chars(s)
}

/// Policy actions: `lambda:*`, `lambda:<Letters>` or `*`.
pub fn is_action(s: &str) -> bool {
    s == "*"
        || s == "lambda:*"
        || s.strip_prefix("lambda:")
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_messages_like_aws() {
        let mut v = Violations::new();
        assert!(v.message().is_none());
        v.range(64, "memorySize", Some(128), None);
        assert_eq!(
            v.message().as_deref(),
            Some(
                "1 validation error detected: Value '64' at 'memorySize' failed to satisfy \
                 constraint: Member must have value greater than or equal to 128"
            )
        );
        v.string(
            "bad name",
            "functionName",
            1,
            64,
            Some(("[a-zA-Z0-9-_]+", is_name_chars)),
        );
        assert!(
            v.message()
                .is_some_and(|m| m.starts_with("2 validation errors detected"))
        );
    }

    #[test]
    fn character_classes() {
        assert!(is_name_chars("my-fn_1"));
        assert!(!is_name_chars("my fn"));
        assert!(is_alias_name("prod"));
        assert!(!is_alias_name("123"));
        assert!(is_env_key("AB"));
        assert!(!is_env_key("A"));
        assert!(!is_env_key("1A"));
        assert!(is_role_arn(
            "arn:aws:iam::123456789012:role/service-role/exec"
        ));
        assert!(!is_role_arn("arn:aws:iam::1234:role/x"));
        assert!(!is_role_arn("role"));
        assert!(is_action("lambda:InvokeFunction"));
        assert!(is_action("*"));
        assert!(!is_action("s3:GetObject"));
    }
}
