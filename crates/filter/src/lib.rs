//! Event patterns as SNS filter policies and Lambda's `FilterCriteria` (EventBridge pattern
//! syntax) write them, parsed once ([`Pattern::parse`]) and matched against a JSON document
//! ([`Pattern::matches`]).
//!
//! A pattern is a JSON object. A key whose value is an object descends into the document's
//! object of that key; a key whose value is an array lists matchers, and the key matches when
//! the document's value (or any element of it, when it is an array) matches ANY of them. Every
//! key of a pattern must match (AND); `"$or": [p1, p2, …]` matches when any sub-pattern does.
//!
//! Matchers: a string, number, boolean or `null` literal (equality; numbers compare as
//! numbers), `{"prefix": s}`, `{"suffix": s}` (either also as
//! `{"prefix": {"equals-ignore-case": s}}`), `{"equals-ignore-case": s}`,
//! `{"anything-but": v | [v…] | {"prefix"|"suffix"|"equals-ignore-case": …}}`,
//! `{"numeric": [op, n (, op, n)]}` with `=`, `<`, `<=`, `>`, `>=`, `{"exists": bool}`,
//! `{"cidr": "10.0.0.0/24"}` and `{"wildcard": "a*b"}`.
//!
//! SNS's own limits on policies (keys, combinations) are measured by [`Pattern::complexity`]
//! and enforced by the caller.
//!
//! *Invariant: pure; no I/O; depends on serde_json only.*

use serde_json::{Map, Value};

/// Why a pattern is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    fields: Vec<(String, Node)>,
    ors: Vec<Vec<Pattern>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Nested(Pattern),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String, bool),
    Suffix(String, bool),
    IgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    AnythingButIgnoreCase(Vec<String>),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Cidr { net: u128, bits: u32, v6: bool },
    Wildcard(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Pattern {
    /// Parses a pattern from its JSON text.
    pub fn parse_str(text: &str) -> Result<Self, PatternError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| PatternError(format!("Filter policy is not valid JSON: {e}")))?;
        Self::parse(&v)
    }

    /// Parses a pattern from JSON.
    pub fn parse(v: &Value) -> Result<Self, PatternError> {
        let Value::Object(map) = v else {
            return err("Filter policy must be a JSON object");
        };
        Self::object(map)
    }

    fn object(map: &Map<String, Value>) -> Result<Self, PatternError> {
        let mut p = Pattern {
            fields: Vec::new(),
            ors: Vec::new(),
        };
        for (k, v) in map {
            if k == "$or" {
                let Value::Array(items) = v else {
                    return err("$or must be an array of objects");
                };
                if items.len() < 2 {
                    return err("$or must have at least two objects");
                }
                p.ors
                    .push(items.iter().map(Self::parse).collect::<Result<_, _>>()?);
                continue;
            }
            let node = match v {
                Value::Object(inner) => Node::Nested(Self::object(inner)?),
                Value::Array(items) => {
                    if items.is_empty() {
                        return err(format!("Empty arrays are not allowed (key {k})"));
                    }
                    Node::Leaf(items.iter().map(matcher).collect::<Result<_, _>>()?)
                }
                _ => {
                    return err(format!(
                        "Match value for key {k} must be an array or an object"
                    ));
                }
            };
            p.fields.push((k.clone(), node));
        }
        Ok(p)
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &Value) -> bool {
        self.fields.iter().all(|(k, node)| {
            let value = doc.as_object().and_then(|o| o.get(k));
            match node {
                Node::Nested(p) => match value {
                    Some(v @ Value::Object(_)) => p.matches(v),
                    Some(Value::Array(items)) => items.iter().any(|i| p.matches(i)),
                    _ => p.matches_absent(),
                },
                Node::Leaf(ms) => ms.iter().any(|m| m.matches(value)),
            }
        }) && self
            .ors
            .iter()
            .all(|alts| alts.iter().any(|p| p.matches(doc)))
    }

    /// A nested pattern against a missing object: only `exists: false` leaves can hold.
    fn matches_absent(&self) -> bool {
        self.matches(&Value::Object(Map::new()))
    }

    /// `(keys, combinations)`: the number of leaf keys, and the product of the number of
    /// matchers per key summed over the `$or` alternatives (SNS limits these to 5 and 150).
    pub fn complexity(&self) -> (usize, usize) {
        let mut keys = 0;
        let mut combos = 1usize;
        for (_, node) in &self.fields {
            match node {
                Node::Nested(p) => {
                    let (k, c) = p.complexity();
                    keys += k;
                    combos = combos.saturating_mul(c);
                }
                Node::Leaf(ms) => {
                    keys += 1;
                    combos = combos.saturating_mul(ms.len());
                }
            }
        }
        for alts in &self.ors {
            let mut sum = 0usize;
            let mut most_keys = 0;
            for p in alts {
                let (k, c) = p.complexity();
                most_keys = most_keys.max(k);
                sum = sum.saturating_add(c);
            }
            keys += most_keys;
            combos = combos.saturating_mul(sum);
        }
        (keys, combos)
    }
}

fn matcher(v: &Value) -> Result<Matcher, PatternError> {
    match v {
        Value::Object(o) => {
            let mut it = o.iter();
            let (Some((op, arg)), None) = (it.next(), it.next()) else {
                return err("A match object must have exactly one operator");
            };
            operator(op, arg)
        }
        Value::Array(_) => err("Nested arrays are not allowed in a match list"),
        literal => Ok(Matcher::Exact(literal.clone())),
    }
}

fn string_arg(op: &str, arg: &Value) -> Result<(String, bool), PatternError> {
    match arg {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(o) if o.len() == 1 => match o.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok((s.clone(), true)),
            _ => err(format!("Unsupported argument to {op}")),
        },
        _ => err(format!("{op} match pattern must be a string")),
    }
}

fn operator(op: &str, arg: &Value) -> Result<Matcher, PatternError> {
    Ok(match op {
        "prefix" => {
            let (s, ic) = string_arg(op, arg)?;
            Matcher::Prefix(s, ic)
        }
        "suffix" => {
            let (s, ic) = string_arg(op, arg)?;
            Matcher::Suffix(s, ic)
        }
        "equals-ignore-case" => match arg {
            Value::String(s) => Matcher::IgnoreCase(s.clone()),
            _ => return err("equals-ignore-case match pattern must be a string"),
        },
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![arg.clone()]),
            Value::Array(items) => {
                if items.is_empty()
                    || items
                        .iter()
                        .any(|i| !matches!(i, Value::String(_) | Value::Number(_)))
                {
                    return err("anything-but list must hold strings or numbers");
                }
                Matcher::AnythingBut(items.clone())
            }
            Value::Object(o) if o.len() == 1 => {
                let (k, v) = o.iter().next().ok_or_else(|| PatternError("".into()))?;
                match (k.as_str(), v) {
                    ("prefix", Value::String(s)) => Matcher::AnythingButPrefix(s.clone()),
                    ("suffix", Value::String(s)) => Matcher::AnythingButSuffix(s.clone()),
                    ("equals-ignore-case", Value::String(s)) => {
                        Matcher::AnythingButIgnoreCase(vec![s.clone()])
                    }
                    ("equals-ignore-case", Value::Array(items)) => Matcher::AnythingButIgnoreCase(
                        items
                            .iter()
                            .map(|i| {
                                i.as_str().map(str::to_string).ok_or_else(|| {
                                    PatternError("equals-ignore-case takes strings".into())
                                })
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return err(format!("Unsupported anything-but pattern: {k}")),
                }
            }
            _ => return err("Unsupported anything-but pattern"),
        },
        "numeric" => numeric(arg)?,
        "exists" => match arg {
            Value::Bool(b) => Matcher::Exists(*b),
            _ => return err("exists match pattern must be either true or false."),
        },
        "cidr" => match arg {
            Value::String(s) => cidr(s)?,
            _ => return err("cidr match pattern must be a string"),
        },
        "wildcard" => match arg {
            Value::String(s) => Matcher::Wildcard(s.clone()),
            _ => return err("wildcard match pattern must be a string"),
        },
        other => return err(format!("Unrecognized match type {other}")),
    })
}

fn numeric(arg: &Value) -> Result<Matcher, PatternError> {
    let Value::Array(items) = arg else {
        return err("Value of numeric must be an array.");
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return err("Invalid numeric match: expected one or two operator/value pairs");
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let cmp = match pair[0].as_str() {
            Some("=") => Cmp::Eq,
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some(">") => Cmp::Gt,
            Some(">=") => Cmp::Ge,
            _ => return err(format!("Unrecognized numeric range operator: {}", pair[0])),
        };
        let Some(n) = pair[1].as_f64() else {
            return err("Value of numeric operator must be numeric");
        };
        if !(-1e9..=1e9).contains(&n) {
            return err("Numeric values must be within -1,000,000,000 and 1,000,000,000");
        }
        out.push((cmp, n));
    }
    if out.len() == 2 {
        let lower = matches!(out[0].0, Cmp::Gt | Cmp::Ge);
        let upper = matches!(out[1].0, Cmp::Lt | Cmp::Le);
        if !lower || !upper || out[0].1 >= out[1].1 {
            return err("Bad numeric range: expected a lower bound then a larger upper bound");
        }
    }
    Ok(Matcher::Numeric(out))
}

fn parse_ip(s: &str) -> Option<(u128, bool)> {
    if let Ok(v4) = s.parse::<std::net::Ipv4Addr>() {
        return Some((u128::from(u32::from(v4)), false));
    }
    s.parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|v6| (u128::from(v6), true))
}

fn cidr(s: &str) -> Result<Matcher, PatternError> {
    let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
    let Some((ip, v6)) = parse_ip(addr) else {
        return err(format!("Malformed CIDR: {s}"));
    };
    let max = if v6 { 128 } else { 32 };
    let bits = if bits.is_empty() {
        max
    } else {
        bits.parse::<u32>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| PatternError(format!("Malformed CIDR: {s}")))?
    };
    Ok(Matcher::Cidr {
        net: mask(ip, bits, max),
        bits,
        v6,
    })
}

fn mask(ip: u128, bits: u32, max: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        let shift = max - bits;
        (ip >> shift) << shift
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(r) = rest.strip_prefix(first) else {
        return false;
    };
    rest = r;
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl Matcher {
    /// Matches the value at the key (`None`: the key is absent).
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Self::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (m, Some(Value::Array(items))) => items.iter().any(|i| m.one(i)),
            (m, Some(v)) => m.one(v),
        }
    }

    fn one(&self, v: &Value) -> bool {
        let s = v.as_str();
        match self {
            Self::Exact(Value::Number(n)) => {
                as_number(v).is_some_and(|x| n.as_f64().is_some_and(|n| n == x))
            }
            Self::Exact(lit) => lit == v,
            Self::Prefix(p, false) => s.is_some_and(|s| s.starts_with(p.as_str())),
            Self::Prefix(p, true) => s.is_some_and(|s| {
                s.len() >= p.len()
                    && s.is_char_boundary(p.len())
                    && s[..p.len()].eq_ignore_ascii_case(p)
            }),
            Self::Suffix(p, false) => s.is_some_and(|s| s.ends_with(p.as_str())),
            Self::Suffix(p, true) => s.is_some_and(|s| {
                s.len() >= p.len()
                    && s.is_char_boundary(s.len() - p.len())
                    && s[s.len() - p.len()..].eq_ignore_ascii_case(p)
            }),
            Self::IgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
            Self::AnythingBut(values) => !values.iter().any(|b| match b {
                Value::Number(n) => as_number(v).is_some_and(|x| n.as_f64() == Some(x)),
                other => other == v,
            }),
            Self::AnythingButPrefix(p) => s.is_some_and(|s| !s.starts_with(p.as_str())),
            Self::AnythingButSuffix(p) => s.is_some_and(|s| !s.ends_with(p.as_str())),
            Self::AnythingButIgnoreCase(values) => s.is_some_and(|s| {
                let s = s.to_lowercase();
                !values.iter().any(|b| b.to_lowercase() == s)
            }),
            Self::Numeric(conds) => as_number(v).is_some_and(|x| {
                conds.iter().all(|(c, n)| match c {
                    Cmp::Eq => x == *n,
                    Cmp::Lt => x < *n,
                    Cmp::Le => x <= *n,
                    Cmp::Gt => x > *n,
                    Cmp::Ge => x >= *n,
                })
            }),
            Self::Exists(_) => true,
            Self::Cidr { net, bits, v6 } => s.and_then(parse_ip).is_some_and(|(ip, is6)| {
                is6 == *v6 && mask(ip, *bits, if is6 { 128 } else { 32 }) == *net
            }),
            Self::Wildcard(p) => s.is_some_and(|s| wildcard(p, s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(pattern: Value, doc: Value) -> bool {
        Pattern::parse(&pattern).unwrap().matches(&doc)
    }

    #[test]
    fn exact_values_and_arrays() {
        assert!(m(
            json!({"color": ["red", "blue"]}),
            json!({"color": "red"})
        ));
        assert!(!m(json!({"color": ["red"]}), json!({"color": "Red"})));
        assert!(m(
            json!({"color": ["red"]}),
            json!({"color": ["green", "red"]})
        ));
        assert!(m(json!({"n": [5]}), json!({"n": 5.0})));
        assert!(!m(json!({"n": [5]}), json!({"n": "5"})));
        assert!(!m(json!({"color": ["red"]}), json!({})));
        assert!(m(json!({"v": [null]}), json!({"v": null})));
    }

    #[test]
    fn operators() {
        assert!(m(json!({"k": [{"prefix": "ab"}]}), json!({"k": "abc"})));
        assert!(m(
            json!({"k": [{"prefix": {"equals-ignore-case": "AB"}}]}),
            json!({"k": "abc"})
        ));
        assert!(m(json!({"k": [{"suffix": ".png"}]}), json!({"k": "a.png"})));
        assert!(m(
            json!({"k": [{"equals-ignore-case": "RED"}]}),
            json!({"k": "red"})
        ));
        assert!(m(
            json!({"k": [{"anything-but": ["a", "b"]}]}),
            json!({"k": "c"})
        ));
        assert!(!m(json!({"k": [{"anything-but": "a"}]}), json!({"k": "a"})));
        assert!(!m(json!({"k": [{"anything-but": "a"}]}), json!({})));
        assert!(m(
            json!({"k": [{"anything-but": {"prefix": "x"}}]}),
            json!({"k": "ya"})
        ));
        assert!(m(json!({"k": [{"anything-but": 5}]}), json!({"k": 6})));
        assert!(m(
            json!({"k": [{"numeric": [">", 0, "<=", 100]}]}),
            json!({"k": 100})
        ));
        assert!(!m(
            json!({"k": [{"numeric": [">", 0, "<=", 100]}]}),
            json!({"k": 0})
        ));
        assert!(m(
            json!({"k": [{"numeric": ["=", 3.5]}]}),
            json!({"k": 3.5})
        ));
        assert!(m(json!({"k": [{"exists": true}]}), json!({"k": "x"})));
        assert!(m(json!({"k": [{"exists": false}]}), json!({"j": "x"})));
        assert!(!m(json!({"k": [{"exists": false}]}), json!({"k": "x"})));
        assert!(m(
            json!({"ip": [{"cidr": "10.0.0.0/24"}]}),
            json!({"ip": "10.0.0.7"})
        ));
        assert!(!m(
            json!({"ip": [{"cidr": "10.0.0.0/24"}]}),
            json!({"ip": "10.0.1.7"})
        ));
        assert!(m(
            json!({"k": [{"wildcard": "a*c*e"}]}),
            json!({"k": "abcde"})
        ));
    }

    #[test]
    fn nesting_and_or() {
        let p = json!({"detail": {"state": ["ok"]}, "$or": [{"a": [1]}, {"b": [2]}]});
        assert!(m(p.clone(), json!({"detail": {"state": "ok"}, "b": 2})));
        assert!(!m(p.clone(), json!({"detail": {"state": "ok"}, "c": 2})));
        assert!(!m(p, json!({"detail": {"state": "no"}, "a": 1})));
        assert!(m(json!({"d": {"x": [{"exists": false}]}}), json!({})));
    }

    #[test]
    fn invalid_patterns_and_complexity() {
        assert!(Pattern::parse(&json!([1])).is_err());
        assert!(Pattern::parse(&json!({"k": "red"})).is_err());
        assert!(Pattern::parse(&json!({"k": []})).is_err());
        assert!(Pattern::parse(&json!({"k": [{"numeric": ["<", 5, ">", 1]}]})).is_err());
        assert!(Pattern::parse(&json!({"k": [{"bogus": 1}]})).is_err());
        assert!(Pattern::parse_str("{").is_err());
        let p = Pattern::parse(&json!({"a": [1, 2, 3], "b": ["x", "y"]})).unwrap();
        assert_eq!(p.complexity(), (2, 6));
    }
}
