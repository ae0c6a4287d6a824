//! Function references in every form Lambda accepts, qualifiers, and ARN construction.

use std::fmt;

use crate::validate::{is_alias_name, is_digits, is_name_chars, is_namespaced_name_chars};

/// The region and account this Kindling instance presents itself as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    pub partition: String,
    pub region: String,
    pub account_id: String,
}

impl ArnContext {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        Self {
            partition: "aws".into(),
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    /// `arn:aws:lambda:{region}:{account}:function:{name}`
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            self.partition, self.region, self.account_id
        )
    }

    /// `...:function:{name}:{qualifier}`
    pub fn qualified_arn(&self, name: &str, qualifier: &Qualifier) -> String {
        format!("{}:{qualifier}", self.function_arn(name))
    }

    /// `arn:aws:lambda:{region}:{account}:layer:{name}`
    pub fn layer_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:layer:{name}",
            self.partition, self.region, self.account_id
        )
    }

    /// `...:layer:{name}:{version}`
    pub fn layer_version_arn(&self, name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(name))
    }
}

/// A version or alias of a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Qualifier {
    Latest,
    Version(u64),
    Alias(String),
}

impl Qualifier {
    /// Parses `$LATEST`, a version number or an alias name; `None` when it is none of these.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "$LATEST" {
            Some(Self::Latest)
        } else if is_digits(s) {
            s.parse().ok().map(Self::Version)
        } else if is_alias_name(s) && s.len() <= 128 {
            Some(Self::Alias(s.to_string()))
        } else {
            None
        }
    }

    pub fn is_latest(&self) -> bool {
        matches!(self, Self::Latest)
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("$LATEST"),
            Self::Version(v) => write!(f, "{v}"),
            Self::Alias(a) => f.write_str(a),
        }
    }
}

/// A function named by a client: `name`, `name:qualifier`, `account:function:name[:q]`,
/// `region:account:function:name[:q]` or a full ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<Qualifier>,
    /// Region named by the reference, if any.
    pub region: Option<String>,
    /// Account named by the reference, if any.
    pub account_id: Option<String>,
}

/// Why a function reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// The text does not match Lambda's FunctionName pattern.
    #[error("malformed function name")]
    Malformed,
    /// The text is well-formed but its qualifier is not one Lambda accepts.
    #[error("malformed qualifier")]
    BadQualifier,
}

/// Whether `s` is a region this crate's ARNs may name (and [`FunctionRef::parse`] accepts):
/// two lowercase letters, one or more '-'-separated words of lowercase letters, and a single
/// digit, as in `us-east-1` or `us-gov-west-1` (Lambda's pattern,
/// `[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}`, loosened to any words in the middle).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|d| d.len() == 1 && is_digits(d))
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && is_digits(s)
}

impl FunctionRef {
    /// Parses a (percent-decoded) function reference. `namespaced` selects the looser pattern of
    /// the Get/Delete/Invoke operations (names may contain dots).
    pub fn parse(input: &str, namespaced: bool) -> Result<Self, RefError> {
        let parts: Vec<&str> = input.split(':').collect();
        let (region, account, rest): (Option<&str>, Option<&str>, &[&str]) = match parts.as_slice()
        {
            [
                "arn",
                partition,
                "lambda",
                region,
                account,
                "function",
                rest @ ..,
            ] => {
                if !partition.starts_with("aws") || !is_region(region) || !is_account(account) {
                    return Err(RefError::Malformed);
                }
                (Some(region), Some(account), rest)
            }
            [region, account, "function", rest @ ..]
                if is_region(region) && is_account(account) =>
            {
                (Some(region), Some(account), rest)
            }
            [account, "function", rest @ ..] if is_account(account) => (None, Some(account), rest),
            ["function", rest @ ..] => (None, None, rest),
            rest => (None, None, rest),
        };
        let (name, qualifier) = match rest {
            [name] => (*name, None),
            [name, q] => (*name, Some(*q)),
            _ => return Err(RefError::Malformed),
        };
        let name_ok = if namespaced {
            is_namespaced_name_chars(name)
        } else {
            is_name_chars(name)
        };
        if !name_ok || name.len() > 64 {
            return Err(RefError::Malformed);
        }
        let qualifier = match qualifier {
            None => None,
            Some(q) => Some(Qualifier::parse(q).ok_or(RefError::BadQualifier)?),
        };
        Ok(Self {
            name: name.to_string(),
            qualifier,
            region: region.map(str::to_string),
            account_id: account.map(str::to_string),
        })
    }

    /// True when the reference names a region/account other than `ctx`'s.
    pub fn is_foreign(&self, ctx: &ArnContext) -> bool {
        self.region.as_deref().is_some_and(|r| r != ctx.region)
            || self
                .account_id
                .as_deref()
                .is_some_and(|a| a != ctx.account_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let plain = FunctionRef::parse("my-fn", false).unwrap();
        assert_eq!(plain.name, "my-fn");
        assert_eq!(plain.qualifier, None);

        let q = FunctionRef::parse("my-fn:prod", false).unwrap();
        assert_eq!(q.qualifier, Some(Qualifier::Alias("prod".into())));

        let partial = FunctionRef::parse("123456789012:function:my-fn:7", false).unwrap();
        assert_eq!(partial.account_id.as_deref(), Some("123456789012"));
        assert_eq!(partial.qualifier, Some(Qualifier::Version(7)));

        let full = FunctionRef::parse(
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
            false,
        )
        .unwrap();
        assert_eq!(full.region.as_deref(), Some("us-east-1"));
        assert_eq!(full.qualifier, Some(Qualifier::Latest));

        let gov = FunctionRef::parse(
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
            false,
        )
        .unwrap();
        assert_eq!(gov.region.as_deref(), Some("us-gov-west-1"));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(FunctionRef::parse("", false), Err(RefError::Malformed));
        assert_eq!(FunctionRef::parse("a b", false), Err(RefError::Malformed));
        assert_eq!(FunctionRef::parse("a.b", false), Err(RefError::Malformed));
        assert!(FunctionRef::parse("a.b", true).is_ok());
        assert_eq!(
            FunctionRef::parse("a:b:c:d", false),
            Err(RefError::Malformed)
        );
        assert_eq!(
            FunctionRef::parse(&"x".repeat(65), false),
            Err(RefError::Malformed)
        );
        assert_eq!(
            FunctionRef::parse("f:bad.q", false),
            Err(RefError::BadQualifier)
        );
    }

    #[test]
    fn builds_arns() {
        let ctx = ArnContext::new("us-east-1", "000000000000");
        assert_eq!(
            ctx.qualified_arn("f", &Qualifier::Latest),
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
        assert_eq!(
            ctx.layer_version_arn("l", 3),
            "arn:aws:lambda:us-east-1:000000000000:layer:l:3"
        );
        let foreign = FunctionRef::parse("111111111111:function:f", false).unwrap();
        assert!(foreign.is_foreign(&ctx));
    }
}
