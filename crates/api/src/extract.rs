//! Request parsing helpers: bounded JSON bodies, raw query parameters with repeated keys,
//! and running domain calls on the blocking pool.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use kindling_control::ControlError;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads a body of at most `limit` bytes.
pub async fn read_body(
    body: Body,
    limit: usize,
    operation: &'static str,
) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { limit, operation })
}

/// Reads and parses a JSON body of at most `limit` bytes; an empty body parses as `{}`.
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    operation: &'static str,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit, operation).await?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        ApiError::Control(ControlError::InvalidRequestContent(format!(
            "Could not parse request body into json: {e}"
        )))
    })
}

/// The query string as decoded key/value pairs, keeping repeats (`tagKeys=a&tagKeys=b`).
#[derive(Debug, Default, Clone)]
pub struct QueryParams(Vec<(String, String)>);

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl QueryParams {
    pub fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of `key`; an empty value counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `MaxItems` as a number, or Lambda's validation error.
    pub fn max_items(&self) -> Result<Option<i64>, ApiError> {
        self.get("MaxItems")
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::Control(ControlError::Validation(format!(
                        "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must be a number"
                    )))
                })
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query().unwrap_or("")))
    }
}

/// Runs a synchronous domain call on the blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ControlError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await?
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_and_encoded_keys() {
        let q = QueryParams::parse("tagKeys=a&tagKeys=b%20c&Qualifier=%24LATEST&Empty=");
        assert_eq!(q.get_all("tagKeys"), vec!["a", "b c"]);
        assert_eq!(q.get("Qualifier"), Some("$LATEST"));
        assert_eq!(q.get("Empty"), None);
        assert!(QueryParams::parse("MaxItems=x").max_items().is_err());
    }
}
