//! The HTTP request an event is built from, and what both payload formats derive from it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use percent_encoding::percent_decode_str;

/// One HTTP request as it reached the front door.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ... as sent.
    pub method: String,
    /// The path as sent (still percent-encoded), without any prefix the front door routed on
    /// (`/lambda-url/<id>`, `/restapis/<id>/<stage>/_user_request_`): what the function sees.
    pub path: String,
    /// The raw query string without the leading `?` (empty when there is none).
    pub query: String,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: String,
    /// Header fields in the order received, names as sent, one entry per field line.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The client's address, without port.
    pub source_ip: String,
}

/// Who answers the request: the API (or URL) and this request's ids and time.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub account_id: String,
    /// The API id, or for a function URL its url-id.
    pub api_id: String,
    /// `<url-id>.lambda-url.<region>.on.aws`, `<api-id>.execute-api.<region>.amazonaws.com`...
    pub domain_name: String,
    /// The first label of `domain_name`.
    pub domain_prefix: String,
    pub request_id: String,
    /// `$default` for function URLs and HTTP APIs' default stage.
    pub stage: String,
    /// When the request arrived, milliseconds since the epoch.
    pub time_epoch_ms: i64,
}

/// How the request body is put into the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyEncoding {
    /// As function URLs and HTTP APIs do: text (`text/*`, JSON, XML, JavaScript) stays a
    /// string, anything else — or bytes that are not UTF-8 — is base64.
    #[default]
    Auto,
    /// A string; bytes that are not UTF-8 are base64 all the same.
    Text,
    /// Always base64 (REST APIs for a content type in `binaryMediaTypes`).
    Base64,
}

/// True for content types function URLs and HTTP APIs pass as text: `text/*`,
/// `application/json`, `application/javascript`, `application/xml`, and `+json`/`+xml`
/// suffixes. Form posts (`application/x-www-form-urlencoded`) are base64, as on AWS.
pub fn is_text_content_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/x-javascript"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
}

impl HttpRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as the event carries it: `None` when empty, else the text and whether it is
    /// base64.
    pub(crate) fn event_body(&self, encoding: BodyEncoding) -> Option<(String, bool)> {
        if self.body.is_empty() {
            return None;
        }
        let want_text = match encoding {
            BodyEncoding::Base64 => false,
            BodyEncoding::Text => true,
            BodyEncoding::Auto => self
                .header("content-type")
                .is_some_and(is_text_content_type),
        };
        if want_text && let Ok(text) = std::str::from_utf8(&self.body) {
            return Some((text.to_owned(), false));
        }
        Some((STANDARD.encode(&self.body), true))
    }

    /// Cookies from every `Cookie` header, split at `;`.
    pub(crate) fn cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Headers with lower-cased names, repeated ones comma-joined in order, `Cookie` left out
    /// when `skip_cookie` (2.0 moves cookies to their own field).
    pub(crate) fn joined_headers(&self, skip_cookie: bool) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            if skip_cookie && name == "cookie" {
                continue;
            }
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(value);
                }
                None => out.push((name, value.clone())),
            }
        }
        out
    }

    /// Headers as 1.0 shows them: names as sent; the single-value map holds the last value,
    /// the multi-value map every value. Names that differ only in case are one header (the
    /// first spelling is kept).
    pub(crate) fn multi_headers(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, values)) => values.push(value.clone()),
                None => out.push((name.clone(), vec![value.clone()])),
            }
        }
        out
    }

    /// Query parameters decoded as forms are (`+` is a space, then percent-decoding, as API
    /// Gateway and function URLs decode them), in order, every value of a repeated key kept.
    pub(crate) fn query_multi(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key);
            let value = decode(value);
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => out.push((key, vec![value])),
            }
        }
        out
    }

    pub(crate) fn user_agent(&self) -> Option<&str> {
        self.header("user-agent")
    }
}

fn decode(s: &str) -> String {
    if s.contains('+') {
        let spaced = s.replace('+', " ");
        percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    } else {
        percent_decode_str(s).decode_utf8_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect(),
            body: Bytes::copy_from_slice(body),
            ..HttpRequest::default()
        }
    }

    #[test]
    fn text_types() {
        for t in [
            "text/plain",
            "text/html; charset=utf-8",
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/vnd.api+json",
            "application/xml",
            "image/svg+xml",
            "application/javascript",
        ] {
            assert!(is_text_content_type(t), "{t}");
        }
        for t in [
            "application/octet-stream",
            "image/png",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_text_content_type(t), "{t}");
        }
    }

    #[test]
    fn body_encoding() {
        assert_eq!(req(&[], b"").event_body(BodyEncoding::Auto), None);
        assert_eq!(
            req(&[("Content-Type", "application/json")], b"{\"a\":1}")
                .event_body(BodyEncoding::Auto),
            Some(("{\"a\":1}".into(), false))
        );
        // No content type: base64, as AWS does.
        assert_eq!(
            req(&[], b"hi").event_body(BodyEncoding::Auto),
            Some(("aGk=".into(), true))
        );
        // Declared text that is not UTF-8 is base64 all the same.
        assert_eq!(
            req(&[("content-type", "text/plain")], &[0xff, 0x00]).event_body(BodyEncoding::Auto),
            Some(("/wA=".into(), true))
        );
        assert_eq!(
            req(&[("content-type", "text/plain")], b"hi").event_body(BodyEncoding::Base64),
            Some(("aGk=".into(), true))
        );
        assert_eq!(
            req(&[], b"hi").event_body(BodyEncoding::Text),
            Some(("hi".into(), false))
        );
    }

    #[test]
    fn headers_and_cookies() {
        let r = req(
            &[
                ("Host", "x"),
                ("X-Multi", "a"),
                ("Cookie", "s=1; t=2"),
                ("x-multi", "b"),
                ("cookie", "u=3;"),
            ],
            b"",
        );
        assert_eq!(
            r.joined_headers(true),
            vec![
                ("host".into(), "x".into()),
                ("x-multi".into(), "a,b".into())
            ]
        );
        assert_eq!(r.cookies(), vec!["s=1", "t=2", "u=3"]);
        let multi = r.multi_headers();
        assert_eq!(multi[1], ("X-Multi".into(), vec!["a".into(), "b".into()]));
        assert_eq!(
            multi[2],
            ("Cookie".into(), vec!["s=1; t=2".into(), "u=3;".into()])
        );
    }

    #[test]
    fn query() {
        let r = HttpRequest {
            query: "a=1&a=2&b=x%20y+z&flag&&c=%E2%82%AC&p=%2B".into(),
            ..req(&[], b"")
        };
        assert_eq!(
            r.query_multi(),
            vec![
                ("a".into(), vec!["1".into(), "2".into()]),
                ("b".into(), vec!["x y z".into()]),
                ("flag".into(), vec![String::new()]),
                ("c".into(), vec!["€".into()]),
                ("p".into(), vec!["+".into()]),
            ]
        );
    }
}
