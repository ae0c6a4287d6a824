//! CloudWatch Logs filter patterns, parsed once and matched against event messages.
//!
//! - empty: every event;
//! - terms: `ERROR` (every term), `"exact phrase"`, `?ERROR ?WARN` (any of them), `-DEBUG`
//!   (none of them); case-sensitive, matched anywhere in the message;
//! - JSON: `{ $.level = "error" }`, `{ $.latency > 100 && $.status != 200 }`, `||`,
//!   parentheses, `*` wildcards in string values, `IS NULL|TRUE|FALSE`, `EXISTS`,
//!   `NOT EXISTS`; selectors `$.a.b`, `$.a[0]`, `$.a.*`;
//! - space-delimited: `[ip, user, ts, request, status=5*, size>1000]` with `...` for any
//!   number of fields.

use serde_json::Value;

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    All,
    Terms {
        all: Vec<String>,
        any: Vec<String>,
        none: Vec<String>,
    },
    Json(Expr),
    Space(Vec<Field>),
}

/// A JSON pattern's expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Test(Vec<Step>, Test),
}

/// One step of a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
    Any,
}

/// What a selected value is tested for.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Cmp(Op, Literal),
    IsNull,
    IsTrue,
    IsFalse,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A value in a pattern: a quoted string, or a bare word (a number when it reads as one).
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub text: String,
    pub number: Option<f64>,
}

/// One field of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `...`: any number of fields.
    Rest,
    /// A named field, with a condition or none.
    Named(Option<(Op, Literal)>),
}

impl Pattern {
    /// Parses a pattern; the error is the reason, for `InvalidParameterException`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(Self::All);
        }
        if t.starts_with('{') {
            let inner = t
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or("a JSON filter pattern must end with '}'")?;
            let tokens = lex(inner)?;
            let mut p = Parser {
                tokens,
                pos: 0,
                depth: 0,
            };
            let expr = p.or()?;
            if p.pos != p.tokens.len() {
                return Err(format!("unexpected '{}'", p.tokens[p.pos].text()));
            }
            return Ok(Self::Json(expr));
        }
        if t.starts_with('[') {
            let inner = t
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or("a space-delimited filter pattern must end with ']'")?;
            return space_fields(inner).map(Self::Space);
        }
        terms(t)
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Self::All => true,
            Self::Terms { all, any, none } => {
                all.iter().all(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
                    && !none.iter().any(|t| message.contains(t.as_str()))
            }
            Self::Json(expr) => json_of(message).is_some_and(|v| eval(expr, &v)),
            Self::Space(fields) => {
                let words = split_fields(message);
                match_fields(fields, &words)
            }
        }
    }
}

fn terms(t: &str) -> Result<Pattern, String> {
    let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
    let mut chars = t.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let kind = match first {
            '?' | '-' => {
                chars.next();
                first
            }
            _ => ' ',
        };
        let mut term = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => term.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => term.push(c),
                }
            }
            if !closed {
                return Err("unterminated quoted term".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                term.push(c);
                chars.next();
            }
        }
        if term.is_empty() {
            return Err("empty term".into());
        }
        match kind {
            '?' => any.push(term),
            '-' => none.push(term),
            _ => all.push(term),
        }
    }
    if all.is_empty() && any.is_empty() {
        return Err("a filter pattern needs a term to include".into());
    }
    Ok(Pattern::Terms { all, any, none })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Selector(Vec<Step>),
    Op(Op),
    And,
    Or,
    Open,
    Close,
    Str(String),
    Word(String),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Self::Selector(_) => "selector".into(),
            Self::Op(_) => "operator".into(),
            Self::And => "&&".into(),
            Self::Or => "||".into(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Str(s) | Self::Word(s) => s.clone(),
        }
    }
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push(Tok::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push(Tok::Or);
                i += 2;
            }
            '=' => {
                out.push(Tok::Op(Op::Eq));
                i += if next == Some('=') { 2 } else { 1 };
            }
            '!' if next == Some('=') => {
                out.push(Tok::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let op = match (c, next == Some('=')) {
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    (_, true) => Op::Ge,
                    (_, false) => Op::Gt,
                };
                out.push(Tok::Op(op));
                i += if next == Some('=') { 2 } else { 1 };
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            v.extend(b.get(i + 1));
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            v.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            '$' => {
                i += 1;
                let mut steps = Vec::new();
                loop {
                    match b.get(i) {
                        Some('.') if b.get(i + 1) == Some(&'*') => {
                            steps.push(Step::Any);
                            i += 2;
                        }
                        Some('.') => {
                            i += 1;
                            let start = i;
                            while b.get(i).is_some_and(|c| {
                                c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | ':')
                            }) {
                                i += 1;
                            }
                            if start == i {
                                return Err("a selector needs a key after '.'".into());
                            }
                            steps.push(Step::Key(b[start..i].iter().collect()));
                        }
                        Some('[') => {
                            let start = i + 1;
                            let end = (start..b.len())
                                .find(|&j| b[j] == ']')
                                .ok_or("unterminated '[' in a selector")?;
                            let inner: String = b[start..end].iter().collect();
                            steps.push(if inner == "*" {
                                Step::Any
                            } else {
                                Step::Index(
                                    inner
                                        .trim()
                                        .parse()
                                        .map_err(|_| format!("bad array index '{inner}'"))?,
                                )
                            });
                            i = end + 1;
                        }
                        _ => break,
                    }
                }
                out.push(Tok::Selector(steps));
            }
            _ => {
                let start = i;
                while b.get(i).is_some_and(|c| {
                    !c.is_whitespace()
                        && !matches!(c, '(' | ')' | '=' | '!' | '<' | '>' | '&' | '|' | '"')
                }) {
                    i += 1;
                }
                if start == i {
                    return Err(format!("unexpected '{c}'"));
                }
                out.push(Tok::Word(b[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// How deep parentheses may nest in a JSON pattern (the parser recurses once per level).
const MAX_NESTING: usize = 64;

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Open) => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(format!("parentheses nest deeper than {MAX_NESTING}"));
                }
                let e = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(Tok::Selector(steps)) => {
                if steps.is_empty() {
                    return Err("a selector must name a field ($.field)".into());
                }
                let test = match self.next() {
                    Some(Tok::Op(op)) => Test::Cmp(op, self.literal()?),
                    Some(Tok::Word(w)) if w == "IS" => match self.next() {
                        Some(Tok::Word(w)) if w == "NULL" => Test::IsNull,
                        Some(Tok::Word(w)) if w == "TRUE" => Test::IsTrue,
                        Some(Tok::Word(w)) if w == "FALSE" => Test::IsFalse,
                        _ => return Err("IS must be followed by NULL, TRUE or FALSE".into()),
                    },
                    Some(Tok::Word(w)) if w == "EXISTS" => Test::Exists,
                    Some(Tok::Word(w)) if w == "NOT" => match self.next() {
                        Some(Tok::Word(w)) if w == "EXISTS" => Test::NotExists,
                        _ => return Err("NOT must be followed by EXISTS".into()),
                    },
                    _ => return Err("a selector must be followed by an operator".into()),
                };
                Ok(Expr::Test(steps, test))
            }
            Some(t) => Err(format!("unexpected '{}'", t.text())),
            None => Err("incomplete JSON filter pattern".into()),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal {
                text: s,
                number: None,
            }),
            Some(Tok::Word(w)) => Ok(Literal {
                number: w.parse().ok(),
                text: w,
            }),
            _ => Err("an operator must be followed by a value".into()),
        }
    }
}

/// The JSON of a message: the whole message, else from its first `{` (Lambda's text-format
/// prefixes before a JSON record).
fn json_of(message: &str) -> Option<Value> {
    let m = message.trim();
    if let Ok(v) = serde_json::from_str::<Value>(m)
        && v.is_object()
    {
        return Some(v);
    }
    let start = m.find('{')?;
    serde_json::from_str::<Value>(&m[start..])
        .ok()
        .filter(Value::is_object)
}

fn select<'a>(v: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = steps.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (Step::Key(k), Value::Object(m)) => {
            if let Some(child) = m.get(k) {
                select(child, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            if let Some(child) = a.get(*i) {
                select(child, rest, out);
            }
        }
        (Step::Any, Value::Object(m)) => m.values().for_each(|c| select(c, rest, out)),
        (Step::Any, Value::Array(a)) => a.iter().for_each(|c| select(c, rest, out)),
        _ => {}
    }
}

fn eval(expr: &Expr, v: &Value) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, v) && eval(b, v),
        Expr::Or(a, b) => eval(a, v) || eval(b, v),
        Expr::Test(steps, test) => {
            let mut found = Vec::new();
            select(v, steps, &mut found);
            match test {
                Test::Exists => !found.is_empty(),
                Test::NotExists => found.is_empty(),
                Test::IsNull => found.iter().any(|v| v.is_null()),
                Test::IsTrue => found.iter().any(|v| v.as_bool() == Some(true)),
                Test::IsFalse => found.iter().any(|v| v.as_bool() == Some(false)),
                Test::Cmp(Op::Ne, lit) => {
                    !found.is_empty() && !found.iter().any(|v| compare(v, Op::Eq, lit))
                }
                Test::Cmp(op, lit) => found.iter().any(|v| compare(v, *op, lit)),
            }
        }
    }
}

fn compare(v: &Value, op: Op, lit: &Literal) -> bool {
    match (v, op) {
        (Value::Number(n), _) => {
            let (Some(a), Some(b)) = (n.as_f64(), lit.number) else {
                return false;
            };
            num_cmp(a, op, b)
        }
        (Value::String(s), Op::Eq) => glob(&lit.text, s),
        (Value::Bool(b), Op::Eq) => lit.text == b.to_string(),
        (Value::String(s), _) => match (s.parse::<f64>(), lit.number) {
            (Ok(a), Some(b)) => num_cmp(a, op, b),
            _ => false,
        },
        _ => false,
    }
}

fn num_cmp(a: f64, op: Op, b: f64) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Gt => a > b,
        Op::Le => a <= b,
        Op::Ge => a >= b,
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, s: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == s;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn space_fields(inner: &str) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty field in a space-delimited pattern".into());
        }
        if item == "..." {
            out.push(Field::Rest);
            continue;
        }
        let ops = [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let cond = ops.iter().find_map(|(s, op)| {
            item.split_once(s).map(|(_, v)| {
                let v = v.trim();
                let text = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
                    .to_string();
                (
                    *op,
                    Literal {
                        number: text.parse().ok(),
                        text,
                    },
                )
            })
        });
        out.push(Field::Named(cond));
    }
    Ok(out)
}

/// Whitespace-separated fields; `"..."` and `[...]` are one field each (without the quotes).
fn split_fields(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = message.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut f = String::new();
        let close = match c {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            chars.next();
            for c in chars.by_ref() {
                if c == close {
                    break;
                }
                f.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                f.push(c);
                chars.next();
            }
        }
        out.push(f);
    }
    out
}

/// Whether the words match the fields. `...` matches any run of words, every other field
/// exactly one, so the pattern is runs of one-word fields between `...`s, and each run may
/// take its leftmost place (as `*` does in a glob): time is fields × words, never the
/// exponential of trying every split (`[..., ..., ..., x=1]` over many words).
fn match_fields(fields: &[Field], words: &[String]) -> bool {
    let runs: Vec<&[Field]> = fields.split(|f| matches!(f, Field::Rest)).collect();
    let run_at = |run: &[Field], at: usize| {
        at + run.len() <= words.len()
            && run.iter().zip(&words[at..]).all(|(f, w)| match f {
                Field::Named(cond) => word_matches(cond.as_ref(), w),
                Field::Rest => true,
            })
    };
    let (first, last) = (runs[0], runs[runs.len() - 1]);
    if runs.len() == 1 {
        return first.len() == words.len() && run_at(first, 0);
    }
    if first.len() + last.len() > words.len()
        || !run_at(first, 0)
        || !run_at(last, words.len() - last.len())
    {
        return false;
    }
    let end = words.len() - last.len();
    let mut at = first.len();
    for run in &runs[1..runs.len() - 1] {
        match (at..)
            .take_while(|i| i + run.len() <= end)
            .find(|&i| run_at(run, i))
        {
            Some(i) => at = i + run.len(),
            None => return false,
        }
    }
    true
}

/// One word against a field's condition, without allocating (this runs fields × words
/// times): a word that reads as a number compares as one when the literal is a number
/// (a non-finite one equals nothing), else as text (`=`/`!=` with `*` wildcards).
fn word_matches(cond: Option<&(Op, Literal)>, w: &str) -> bool {
    let Some((op, lit)) = cond else {
        return true;
    };
    let number = lit
        .number
        .and_then(|b| w.parse::<f64>().ok().map(|a| (a, b)));
    let equal = || match number {
        Some((a, b)) => a.is_finite() && a == b,
        None => glob(&lit.text, w),
    };
    match (op, number) {
        (Op::Eq, _) => equal(),
        (Op::Ne, _) => !equal(),
        (op, Some((a, b))) => a.is_finite() && num_cmp(a, *op, b),
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        Pattern::parse(p).unwrap().matches(msg)
    }

    #[test]
    fn terms_phrases_alternatives_and_exclusions() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "[ERROR] boom"));
        assert!(!m("ERROR", "[error] boom"));
        assert!(m("ERROR boom", "[ERROR] boom now"));
        assert!(!m("ERROR bang", "[ERROR] boom"));
        assert!(m("\"user 42 failed\"", "x user 42 failed y"));
        assert!(!m("\"user 42 failed\"", "user 42 did not fail"));
        assert!(m("?ERROR ?WARN", "WARN disk"));
        assert!(!m("?ERROR ?WARN", "INFO disk"));
        assert!(m("ERROR -retry", "ERROR final"));
        assert!(!m("ERROR -retry", "ERROR will retry"));
        assert!(Pattern::parse("-only").is_err());
        assert!(Pattern::parse("\"open").is_err());
    }

    #[test]
    fn json_patterns() {
        let rec = r#"{"level":"ERROR","latency":150,"user":{"id":"u-7","tags":["a","b"]},"ok":false,"gone":null}"#;
        assert!(m(r#"{ $.level = "ERROR" }"#, rec));
        assert!(m(r#"{ $.level = ERR* }"#, rec));
        assert!(!m(r#"{ $.level = "INFO" }"#, rec));
        assert!(m(r#"{ $.level != "INFO" }"#, rec));
        assert!(!m(r#"{ $.level != "ERROR" }"#, rec));
        assert!(!m(r#"{ $.missing != "x" }"#, rec));
        assert!(m(r#"{ $.latency > 100 && $.user.id = "u-7" }"#, rec));
        assert!(!m(r#"{ $.latency < 100 }"#, rec));
        assert!(m(r#"{ $.latency = 150 }"#, rec));
        assert!(m(
            r#"{ ($.latency < 10 || $.level = "ERROR") && $.user.tags[1] = "b" }"#,
            rec
        ));
        assert!(m(r#"{ $.ok IS FALSE }"#, rec));
        assert!(m(r#"{ $.gone IS NULL }"#, rec));
        assert!(m(r#"{ $.nope NOT EXISTS }"#, rec));
        assert!(m(r#"{ $.user.tags[*] = "a" }"#, rec));
        assert!(!m(r#"{ $.level = "ERROR" }"#, "not json"));
        assert!(m(
            r#"{ $.level = "ERROR" }"#,
            "2024-01-01T00:00:00Z\treq\t{\"level\":\"ERROR\"}"
        ));
        for bad in [
            "{ $.a = }",
            "{ $.a }",
            "{ level = 1 }",
            "{ $.a = 1",
            "{ ($.a = 1 }",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn space_delimited_patterns() {
        let line =
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        assert!(m("[ip, id, user, ts, request, status=404, size]", line));
        assert!(m("[ip, id, user, ts, request, status=4*, size>1000]", line));
        assert!(!m("[ip, id, user, ts, request, status!=404, size]", line));
        assert!(m("[ip=127.0.0.1, ...]", line));
        assert!(m("[..., status, size<2000]", line));
        assert!(!m("[ip, user]", line));
        assert!(m("[ip, ..., status=404, ..., size]", line));
        assert!(m("[..., user=frank, ts, ..., size>1000]", line));
        assert!(!m("[ip, ..., status=404, size, ..., size]", line));
        assert!(!m("[..., user=frank, ..., user=frank, ...]", line));
        assert!(m("[..., user=frank, ..., status=404, ...]", line));
        assert!(m("[a, b>1.5, c!=3, d=x*]", "q 2 4 xy"));
        assert!(!m("[a, b<1.5, c!=4, d=x*]", "q 2 4 xy"));
        assert!(!m("[a=inf, b, c<5]", "inf inf 4"));
        assert!(!m("[a, b=5]", "q inf"));
        assert!(!m("[a, b>5]", "q inf"));
        assert!(m("[a, b!=5]", "q inf"));
    }

    #[test]
    fn hostile_patterns_cost_little() {
        let started = std::time::Instant::now();
        // Every way to split 3000 words among 100 `...` is C(3100, 100): the matcher must
        // not try them.
        let rests = "..., ".repeat(100);
        let p = Pattern::parse(&format!("[{rests}x=nomatch]")).unwrap();
        assert!(!p.matches(&"w ".repeat(3000)));
        let p = Pattern::parse(&format!("[{rests}w, w=w, ...]")).unwrap();
        assert!(p.matches(&"w ".repeat(3000)));
        let p = Pattern::parse(&format!("[{rests}x=nomatch, ...]")).unwrap();
        assert!(!p.matches(&"w ".repeat(3000)));
        // Deep parentheses are refused, not a stack overflow.
        let deep = format!(
            "{{ {}$.a = 1{} }}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(Pattern::parse(&deep).unwrap_err().contains("nest deeper"));
        let ok = format!("{{ {}$.a = 1{} }}", "(".repeat(64), ")".repeat(64));
        assert!(Pattern::parse(&ok).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
