//! YAML templates → JSON values, the way CloudFormation reads them.
//!
//! Short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) become their long forms on scalars,
//! sequences and mappings. Plain scalars are resolved conservatively: only `true`/`false`,
//! `null`/`~`/empty, decimal integers without leading zeros and decimal numbers with a dot
//! become non-strings. Everything else stays a string — in particular dates (`2010-09-09`,
//! `2012-10-17`), `0123`, `1e3`, `0x1F`, `.inf`, and the YAML 1.1 booleans `yes`/`no`/`on`/`off`
//! (CloudFormation keeps the text of such values; a property that wants a boolean accepts the
//! string forms anyway). Quoted and block scalars are always strings.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

use crate::error::{Location, Result, TemplateError};

/// Deepest nesting accepted (deeper input is rejected instead of exhausting the stack), as
/// serde_json's recursion limit holds JSON templates. Each level costs the loader a few KB of
/// stack in a debug build: block-style nesting 200 deep overflowed a 2 MB worker's stack.
const MAX_DEPTH: usize = 128;

/// Most the parsed value may weigh, aliases expanded ([`weight`] units: about bytes). An alias
/// copies its anchor's whole value, so a small document of aliases of aliases ("billion
/// laughs") would otherwise expand exponentially; a real template (at most 1 MB of text)
/// weighs a few times its size.
const MAX_WEIGHT: usize = 32 << 20;

/// What a node adds to the parsed value's weight: a fixed cost per node, plus its text.
const NODE_WEIGHT: usize = 16;

/// Short-form tag names and the key of the long form they stand for.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("GetAtt", "Fn::GetAtt"),
    ("Sub", "Fn::Sub"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("FindInMap", "Fn::FindInMap"),
    ("If", "Fn::If"),
    ("Equals", "Fn::Equals"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("Not", "Fn::Not"),
    ("Base64", "Fn::Base64"),
    ("GetAZs", "Fn::GetAZs"),
    ("Cidr", "Fn::Cidr"),
    ("ImportValue", "Fn::ImportValue"),
    ("Transform", "Fn::Transform"),
    ("Length", "Fn::Length"),
    ("ToJsonString", "Fn::ToJsonString"),
    ("ForEach", "Fn::ForEach"),
];

fn location(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn scan_error(e: ScanError) -> TemplateError {
    let at = Location {
        line: e.marker().line(),
        column: e.marker().col() + 1,
    };
    TemplateError::Yaml { at, source: e }
}

fn content_error(span: &Span, detail: impl Into<String>) -> TemplateError {
    TemplateError::YamlContent {
        at: location(span),
        detail: detail.into(),
    }
}

/// Parses one YAML document into a JSON value.
pub fn parse_yaml(text: &str) -> Result<Value> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        weight: 0,
    };
    let mut documents = 0usize;
    let mut value = Value::Null;
    loop {
        let (event, span) = loader.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(content_error(&span, "A template holds one YAML document."));
                }
                let (first, first_span) = loader.next()?;
                value = if matches!(first, Event::DocumentEnd) {
                    Value::Null
                } else {
                    loader.node(first, first_span, 0)?
                };
            }
            other => return Err(content_error(&span, format!("unexpected {other:?}"))),
        }
    }
    Ok(value)
}

struct Loader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// Each anchor's value and its weight (what every alias of it adds again).
    anchors: HashMap<usize, (Value, usize)>,
    /// The weight of everything built so far, aliases expanded.
    weight: usize,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span)> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(scan_error(e)),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    /// Adds `weight` to the value's, refusing a value that outgrows [`MAX_WEIGHT`].
    fn add_weight(&mut self, weight: usize, span: &Span) -> Result<()> {
        self.weight = self.weight.saturating_add(weight);
        if self.weight > MAX_WEIGHT {
            return Err(content_error(
                span,
                "The document expands beyond 32 MB (aliases of aliases).",
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(content_error(&span, "The template nests too deeply."));
        }
        let start = self.weight;
        match event {
            Event::Alias(id) => {
                let (value, weight) = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| content_error(&span, "unknown alias"))?;
                let (value, weight) = (value.clone(), *weight);
                self.add_weight(weight, &span)?;
                Ok(value)
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.add_weight(NODE_WEIGHT + text.len(), &span)?;
                let value = scalar(&text, style, tag.as_deref(), &span)?;
                self.remember(anchor, &value, start);
                Ok(value)
            }
            Event::SequenceStart(anchor, tag) => {
                self.add_weight(NODE_WEIGHT, &span)?;
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    if matches!(ev, Event::StreamEnd) {
                        return Err(content_error(&sp, "unterminated sequence"));
                    }
                    items.push(self.node(ev, sp, depth + 1)?);
                }
                let value = wrap(tag.as_deref(), Value::Array(items), &span)?;
                self.remember(anchor, &value, start);
                Ok(value)
            }
            Event::MappingStart(anchor, tag) => {
                self.add_weight(NODE_WEIGHT, &span)?;
                let mut map = Map::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    if matches!(ev, Event::StreamEnd) {
                        return Err(content_error(&sp, "unterminated mapping"));
                    }
                    let key = match ev {
                        Event::Scalar(text, ..) => text.into_owned(),
                        Event::Alias(id) => match self.anchors.get(&id).map(|a| &a.0) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Number(n)) => n.to_string(),
                            Some(Value::Bool(b)) => b.to_string(),
                            _ => return Err(content_error(&sp, "mapping keys must be strings")),
                        },
                        _ => return Err(content_error(&sp, "mapping keys must be strings")),
                    };
                    self.add_weight(NODE_WEIGHT + key.len(), &sp)?;
                    let (vev, vsp) = self.next()?;
                    let value = self.node(vev, vsp, depth + 1)?;
                    if map.contains_key(&key) {
                        return Err(content_error(&sp, format!("Duplicate key '{key}'.")));
                    }
                    map.insert(key, value);
                }
                let value = wrap(tag.as_deref(), Value::Object(map), &span)?;
                self.remember(anchor, &value, start);
                Ok(value)
            }
            other => Err(content_error(&span, format!("unexpected {other:?}"))),
        }
    }

    /// Keeps an anchored value, with the weight it added since `start` (its own, aliases
    /// inside it expanded).
    fn remember(&mut self, anchor: usize, value: &Value, start: usize) {
        if anchor != 0 {
            self.anchors
                .insert(anchor, (value.clone(), self.weight - start));
        }
    }
}

/// The long-form key of a short-form tag (`!GetAtt` → `Fn::GetAtt`).
fn short_form(tag: &Tag) -> Option<&'static str> {
    if tag.handle != "!" {
        return None;
    }
    SHORT_FORMS
        .iter()
        .find(|(short, _)| *short == tag.suffix)
        .map(|(_, long)| *long)
}

/// Wraps a sequence or mapping in the intrinsic its tag names.
fn wrap(tag: Option<&Tag>, value: Value, span: &Span) -> Result<Value> {
    let Some(tag) = tag else { return Ok(value) };
    if let Some(long) = short_form(tag) {
        return Ok(single(long, value));
    }
    if tag.is_yaml_core_schema() && matches!(tag.suffix.as_str(), "seq" | "map") {
        return Ok(value);
    }
    Err(content_error(span, format!("Unsupported tag {tag}.")))
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: &Span) -> Result<Value> {
    if let Some(tag) = tag {
        if let Some(long) = short_form(tag) {
            // `!GetAtt A.B` splits on the first dot only: `Stack.Outputs.X` → [Stack, Outputs.X].
            if long == "Fn::GetAtt"
                && let Some((resource, attribute)) = text.split_once('.')
            {
                let parts = vec![Value::from(resource), Value::from(attribute)];
                return Ok(single(long, Value::Array(parts)));
            }
            return Ok(single(long, Value::String(text.to_string())));
        }
        if tag.is_yaml_core_schema() {
            return match tag.suffix.as_str() {
                "str" | "binary" | "timestamp" => Ok(Value::String(text.to_string())),
                "int" | "float" => number(text)
                    .ok_or_else(|| content_error(span, format!("'{text}' is not a number."))),
                "bool" => bool_value(text)
                    .map(Value::Bool)
                    .ok_or_else(|| content_error(span, format!("'{text}' is not a boolean."))),
                "null" => Ok(Value::Null),
                _ => Err(content_error(span, format!("Unsupported tag {tag}."))),
            };
        }
        return Err(content_error(span, format!("Unsupported tag {tag}.")));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    Ok(resolve_plain(text))
}

/// How a plain (unquoted, untagged) scalar is typed.
pub(crate) fn resolve_plain(text: &str) -> Value {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = bool_value(text) {
        return Value::Bool(b);
    }
    number(text).unwrap_or_else(|| Value::String(text.to_string()))
}

fn bool_value(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn number(text: &str) -> Option<Value> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned.is_empty() {
        return None;
    }
    let bytes = unsigned.as_bytes();
    if bytes.iter().all(u8::is_ascii_digit) {
        // A leading zero (`0123`) keeps the text: it is an id, not octal.
        if bytes.len() > 1 && bytes[0] == b'0' {
            return None;
        }
        let trimmed = text.strip_prefix('+').unwrap_or(text);
        if let Ok(i) = trimmed.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        if let Ok(u) = trimmed.parse::<u64>() {
            return Some(Value::Number(u.into()));
        }
        return None;
    }
    // Decimal with a dot, optional exponent: `1.5`, `.5`, `2.`, `6.02e23`. `1e3` stays text.
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || !digits(frac_part) || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    if let Some(exp) = exponent {
        let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if exp.is_empty() || !digits(exp) {
            return None;
        }
    }
    let f: f64 = text.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn y(text: &str) -> Value {
        parse_yaml(text).expect("yaml parses")
    }

    #[test]
    fn short_forms_on_scalars_sequences_and_mappings() {
        let v = y(
            "a: !Ref X\nb: !GetAtt Res.Arn\nc: !GetAtt Stack.Outputs.Url\nd: !Join [',', [a, b]]\n\
                   e: !Base64 {\"Fn::Sub\": x}\nf: !Condition C\ng: !GetAtt [R, Arn]\nh: !Sub\n  - '${x}'\n  - x: 1\n",
        );
        assert_eq!(
            v,
            json!({
                "a": {"Ref": "X"},
                "b": {"Fn::GetAtt": ["Res", "Arn"]},
                "c": {"Fn::GetAtt": ["Stack", "Outputs.Url"]},
                "d": {"Fn::Join": [",", ["a", "b"]]},
                "e": {"Fn::Base64": {"Fn::Sub": "x"}},
                "f": {"Condition": "C"},
                "g": {"Fn::GetAtt": ["R", "Arn"]},
                "h": {"Fn::Sub": ["${x}", {"x": 1}]},
            })
        );
    }

    #[test]
    fn every_short_form_is_mapped() {
        for (short, long) in SHORT_FORMS {
            let v = y(&format!("k: !{short} [a]\n"));
            assert_eq!(v["k"][long], json!(["a"]), "{short}");
        }
    }

    #[test]
    fn scalars_keep_text_where_cloudformation_does() {
        let v = y(
            "a: 2010-09-09\nb: 0123\nc: 1e3\nd: yes\ne: 12\nf: 1.5\ng: true\nh: ~\ni: '12'\n\
                   j: 0x1F\nk: .inf\nl: -7\nm: 123456789012\nn: no\no: 99999999999999999999999\np: 0\nq: \"true\"\n",
        );
        assert_eq!(
            v,
            json!({"a": "2010-09-09", "b": "0123", "c": "1e3", "d": "yes", "e": 12, "f": 1.5, "g": true,
                   "h": null, "i": "12", "j": "0x1F", "k": ".inf", "l": -7, "m": 123456789012u64, "n": "no",
                   "o": "99999999999999999999999", "p": 0, "q": "true"})
        );
    }

    #[test]
    fn tagged_scalars_are_strings() {
        let v = y("a: !Ref 123\nb: !GetAZs ''\nc: !!str 5\nd: !!int 5\n");
        assert_eq!(
            v,
            json!({"a": {"Ref": "123"}, "b": {"Fn::GetAZs": ""}, "c": "5", "d": 5})
        );
    }

    #[test]
    fn anchors_and_block_scalars() {
        let v = y("a: &x\n  k: v\nb: *x\nc: |\n  line1\n  line2\n");
        assert_eq!(
            v,
            json!({"a": {"k": "v"}, "b": {"k": "v"}, "c": "line1\nline2\n"})
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse_yaml("a: b\n  c: [d\n").expect_err("bad yaml");
        let msg = err.to_string();
        assert!(
            msg.starts_with("Template format error: YAML not well-formed. (line"),
            "{msg}"
        );

        let err = parse_yaml("a: 1\nb: !Bogus x\n").expect_err("bad tag");
        assert_eq!(
            err.to_string(),
            "Template format error: YAML not well-formed. Unsupported tag !Bogus. (line 2, column 4)"
        );

        let err = parse_yaml("a: 1\na: 2\n").expect_err("duplicate");
        assert!(err.to_string().contains("Duplicate key 'a'"), "{err}");
    }

    #[test]
    fn deep_nesting_is_rejected_not_a_crash() {
        let text = "[".repeat(5000);
        assert!(parse_yaml(&text).is_err());
        // Block style has no flow-depth limit in the scanner: 1000 nested sequences (500 KB)
        // and mappings, on a stack the size of a tokio worker's.
        let seqs: String = (0..1000)
            .map(|i| format!("{}- \n", " ".repeat(i)))
            .collect();
        let maps: String = (0..1000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        let ok: String = (0..100).map(|i| format!("{}- \n", " ".repeat(i))).collect();
        let results = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || [seqs, maps, ok].map(|t| parse_yaml(&t).map_err(|e| e.to_string())))
            .expect("thread")
            .join()
            .expect("no stack overflow");
        let [seqs, maps, ok] = results;
        assert!(seqs.unwrap_err().contains("nests too deeply"));
        assert!(maps.unwrap_err().contains("nests too deeply"));
        assert!(ok.is_ok());
    }

    /// "Billion laughs": nine aliases per level, nine levels: 9^9 scalars from 1 KB of text
    /// (it exhausted 24 GB before the weight limit).
    #[test]
    fn aliases_of_aliases_cannot_expand_without_bound() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9u8 {
            let (prev, name) = ((b'a' + level - 1) as char, (b'a' + level) as char);
            let refs = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let start = std::time::Instant::now();
        let err = parse_yaml(&text).expect_err("a bomb");
        assert!(err.to_string().contains("expands beyond"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // A long string aliased many times is weighed by its length.
        let long = "y".repeat(1 << 20);
        let many = vec!["*s"; 40].join(", ");
        let err = parse_yaml(&format!("s: &s {long}\nl: [{many}]\n")).expect_err("too big");
        assert!(err.to_string().contains("expands beyond"), "{err}");
        // Ordinary aliases still work.
        let v = parse_yaml("base: &b {k: v}\nuse: [*b, *b]\n").unwrap();
        assert_eq!(v["use"][1]["k"], "v");
    }
}
