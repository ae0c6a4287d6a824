//! samtranslator's logical-id hashes: SHA-1 over Python's
//! `json.dumps(data, separators=(",", ":"), sort_keys=True)` (or the string itself).

use serde_json::Value;
use sha1::{Digest, Sha1};

/// Python's compact, key-sorted, ASCII-only JSON.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&python_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Python sorts str keys by code point; UTF-16 vs UTF-8 order differs only beyond the BMP.
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                if let Some(v) = map.get(k.as_str()) {
                    write(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn python_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The full SHA-1 hex of a value as samtranslator's `LogicalIdGenerator` sees it.
pub fn full_hash(data: &Value) -> String {
    let text = match data {
        Value::String(s) => s.clone(),
        Value::Null => return String::new(),
        other => python_json(other),
    };
    let digest = Sha1::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 10-character suffix samtranslator appends to generated logical ids.
pub fn logical_id_hash(data: &Value) -> String {
    full_hash(data).chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps() {
        let v = json!({"b": [1, 2.5, true, null], "a": "é\"\n", "c": {"z": 1, "y": 3.0}});
        assert_eq!(
            python_json(&v),
            r#"{"a":"\u00e9\"\n","b":[1,2.5,true,null],"c":{"y":3.0,"z":1}}"#
        );
    }

    #[test]
    fn version_hash_of_the_layer_canary_fixture() {
        // samtranslator: PaymentsFunctionVersionec819c4808
        let data = json!({"MemorySize": 512, "S3Bucket": "deploy-bucket", "S3Key": "payments/c9f0f895fb98ab9159f51fd0297e236d"});
        assert_eq!(logical_id_hash(&data), "ec819c4808");
    }
}
