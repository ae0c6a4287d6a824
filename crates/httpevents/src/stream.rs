//! Streamed HTTP responses (function URLs in `RESPONSE_STREAM` mode): a function that sets the
//! content type `application/vnd.awslambda.http-integration-response` starts its stream with a
//! JSON prelude `{"statusCode":..,"headers":{..},"cookies":[..]}` and 8 NUL bytes; what follows
//! is the body. [`PreludeReader`] finds the prelude in the chunks as they arrive, however they
//! are cut, and never holds more than [`MAX_PRELUDE_BYTES`].

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::response::{ResponseError, status_code};

/// The content type that announces a prelude.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// The longest prelude read before giving up (Lambda's limit is not documented).
pub const MAX_PRELUDE_BYTES: usize = 64 * 1024;

/// What separates the prelude from the body.
const SEPARATOR: [u8; 8] = [0; 8];

/// The status line and headers a prelude asks for (`cookies` as `set-cookie` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// Why a stream's prelude cannot be used (a function URL answers 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreludeError {
    #[error("the response prelude is longer than {MAX_PRELUDE_BYTES} bytes")]
    TooLarge,
    #[error("the stream ended before its prelude did")]
    Ended,
    #[error("malformed response prelude: {0}")]
    Malformed(#[from] ResponseError),
}

/// Accumulates the first chunks of a stream until its prelude is complete.
#[derive(Debug, Default)]
pub struct PreludeReader {
    buf: BytesMut,
}

impl PreludeReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk. Once the separator has arrived: the head and the body bytes that
    /// came after it in the same chunk (possibly empty).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<(StreamHead, Bytes)>, PreludeError> {
        let from = self.buf.len().saturating_sub(SEPARATOR.len() - 1);
        self.buf.extend_from_slice(chunk);
        let found = self.buf[from..]
            .windows(SEPARATOR.len())
            .position(|w| w == SEPARATOR)
            .map(|i| from + i);
        let Some(at) = found else {
            if self.buf.len() > MAX_PRELUDE_BYTES {
                return Err(PreludeError::TooLarge);
            }
            return Ok(None);
        };
        if at > MAX_PRELUDE_BYTES {
            return Err(PreludeError::TooLarge);
        }
        let mut all = std::mem::take(&mut self.buf);
        let rest = all.split_off(at + SEPARATOR.len()).freeze();
        let head = parse_prelude(&all[..at])?;
        Ok(Some((head, rest)))
    }
}

/// The prelude's JSON: `statusCode` (default 200), `headers` (a map of strings), `cookies` (a
/// list of strings, one `set-cookie` each).
pub fn parse_prelude(json: &[u8]) -> Result<StreamHead, ResponseError> {
    let value: Value = serde_json::from_slice(json).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(doc) = value else {
        return Err(ResponseError::NotAnObject);
    };
    let status = match doc.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(v) => status_code(v)?,
    };
    let mut headers = Vec::new();
    match doc.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(ResponseError::BadHeaders("headers")),
                };
                headers.push((name.to_ascii_lowercase(), value));
            }
        }
        Some(_) => return Err(ResponseError::BadHeaders("headers")),
    }
    match doc.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let Value::String(c) = cookie else {
                    return Err(ResponseError::BadCookies);
                };
                headers.push(("set-cookie".to_owned(), c.clone()));
            }
        }
        Some(_) => return Err(ResponseError::BadCookies),
    }
    Ok(StreamHead { status, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_split_anywhere() {
        let stream = b"{\"statusCode\":201,\"headers\":{\"X-A\":\"1\"},\"cookies\":[\"a=1\",\"b=2\"]}\0\0\0\0\0\0\0\0body";
        for cut in 0..stream.len() {
            let mut r = PreludeReader::new();
            let first = r.push(&stream[..cut]).unwrap();
            let done_early = first.is_some();
            let (head, rest) = match first {
                Some(done) => done,
                None => r.push(&stream[cut..]).unwrap().expect("complete"),
            };
            assert_eq!(head.status, 201, "cut at {cut}");
            assert_eq!(
                head.headers,
                vec![
                    ("x-a".to_owned(), "1".to_owned()),
                    ("set-cookie".to_owned(), "a=1".to_owned()),
                    ("set-cookie".to_owned(), "b=2".to_owned()),
                ]
            );
            let body_start = stream.len() - 4;
            let expect: &[u8] = if cut > body_start {
                &stream[body_start..cut]
            } else {
                b""
            };
            if done_early {
                assert_eq!(&rest[..], expect);
            } else {
                assert_eq!(&rest[..], b"body");
            }
        }
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(parse_prelude(b"{}").unwrap().status, 200);
        assert_eq!(parse_prelude(b"[]"), Err(ResponseError::NotAnObject));
        assert_eq!(parse_prelude(b"{"), Err(ResponseError::NotJson));
        assert_eq!(
            parse_prelude(br#"{"cookies":"x"}"#),
            Err(ResponseError::BadCookies)
        );
        let mut r = PreludeReader::new();
        assert_eq!(
            r.push(&vec![b' '; MAX_PRELUDE_BYTES + 1]),
            Err(PreludeError::TooLarge)
        );
    }
}
