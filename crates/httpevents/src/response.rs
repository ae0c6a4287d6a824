//! The HTTP response a function's result maps to, and why a result cannot be mapped.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

/// An HTTP response to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header fields in order; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a function's result is not a response the gateway can send (API Gateway's
/// "Malformed Lambda proxy response"; a function URL answers 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the function's result is not JSON")]
    NotJson,
    #[error("the function's result is not a JSON object")]
    NotAnObject,
    #[error("the function's result has no statusCode")]
    MissingStatusCode,
    #[error("statusCode is not an HTTP status (100-599)")]
    BadStatusCode,
    #[error("{0} is not a map of strings")]
    BadHeaders(&'static str),
    #[error("cookies is not a list of strings")]
    BadCookies,
    #[error("body is not a string")]
    BadBody,
    #[error("isBase64Encoded is not a boolean")]
    BadBase64Flag,
    #[error("body is marked isBase64Encoded but is not valid base64")]
    BadBase64,
}

pub(crate) fn status_code(value: &Value) -> Result<u16, ResponseError> {
    let code = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match code {
        Some(c @ 100..=599) => Ok(c as u16),
        _ => Err(ResponseError::BadStatusCode),
    }
}

/// A header value as a string: strings as they are, numbers and booleans printed; `None` for
/// `null` (the header is left out).
pub(crate) fn header_value(
    value: &Value,
    field: &'static str,
) -> Result<Option<String>, ResponseError> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        _ => Err(ResponseError::BadHeaders(field)),
    }
}

/// `headers` (map of scalars) in order; absent or `null` is empty.
pub(crate) fn single_headers(
    value: Option<&Value>,
    field: &'static str,
) -> Result<Vec<(String, String)>, ResponseError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => {
            let mut out = Vec::with_capacity(map.len());
            for (name, v) in map {
                if let Some(v) = header_value(v, field)? {
                    out.push((name.clone(), v));
                }
            }
            Ok(out)
        }
        Some(_) => Err(ResponseError::BadHeaders(field)),
    }
}

pub(crate) fn base64_flag(value: Option<&Value>) -> Result<bool, ResponseError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // Some runtimes' serializers send "true"/"false".
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ResponseError::BadBase64Flag),
    }
}

/// `body` as bytes: absent or `null` is empty; decoded when `decode` (and the flag is set).
pub(crate) fn body_bytes(value: Option<&Value>, decode: bool) -> Result<Bytes, ResponseError> {
    match value {
        None | Some(Value::Null) => Ok(Bytes::new()),
        Some(Value::String(s)) if decode => {
            // Lenient on whitespace/newlines (MIME-style line breaks), strict otherwise.
            let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            STANDARD
                .decode(compact.as_bytes())
                .map(Bytes::from)
                .map_err(|_| ResponseError::BadBase64)
        }
        Some(Value::String(s)) => Ok(Bytes::from(s.clone())),
        Some(_) => Err(ResponseError::BadBody),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_codes() {
        assert_eq!(status_code(&json!(200)), Ok(200));
        assert_eq!(status_code(&json!("404")), Ok(404));
        assert_eq!(status_code(&json!(201.0)), Ok(201));
        for bad in [
            json!(99),
            json!(600),
            json!(-1),
            json!("x"),
            json!(null),
            json!(200.5),
        ] {
            assert_eq!(
                status_code(&bad),
                Err(ResponseError::BadStatusCode),
                "{bad}"
            );
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(body_bytes(None, true), Ok(Bytes::new()));
        assert_eq!(
            body_bytes(Some(&json!("aGk=")), true),
            Ok(Bytes::from_static(b"hi"))
        );
        assert_eq!(
            body_bytes(Some(&json!("aG\nk=")), true),
            Ok(Bytes::from_static(b"hi"))
        );
        assert_eq!(
            body_bytes(Some(&json!("aGk=")), false),
            Ok(Bytes::from_static(b"aGk="))
        );
        assert_eq!(
            body_bytes(Some(&json!("%%%")), true),
            Err(ResponseError::BadBase64)
        );
        assert_eq!(
            body_bytes(Some(&json!({"a": 1})), false),
            Err(ResponseError::BadBody)
        );
    }
}
