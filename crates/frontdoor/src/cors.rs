//! A URL's `Cors` configuration applied as Lambda applies it: preflights (`OPTIONS` with
//! `Origin` and `Access-Control-Request-Method`) are answered without invoking, and responses
//! to allowed origins carry the `Access-Control-*` headers (replacing any the function set).

use http::{HeaderMap, Method};
use kindling_model::url::Cors;

/// Headers Lambda owns when CORS is configured.
const CORS_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

fn wildcard(v: &Option<Vec<String>>) -> bool {
    list(v).iter().any(|x| x == "*")
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::OPTIONS
        && headers.contains_key("origin")
        && headers.contains_key("access-control-request-method")
}

/// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
fn allow_origin(cors: &Cors, origin: &str) -> Option<String> {
    let origins = list(&cors.allow_origins);
    if origins.iter().any(|o| o == "*") {
        // A credentialed response cannot use `*`: name the origin.
        return Some(if cors.allow_credentials == Some(true) {
            origin.to_owned()
        } else {
            "*".to_owned()
        });
    }
    origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        .then(|| origin.to_owned())
}

/// The answer to a preflight: the headers to send with a 200 and no body (none when the
/// origin, method or headers are not allowed — the browser then refuses).
pub fn preflight(cors: &Cors, headers: &HeaderMap) -> Vec<(&'static str, String)> {
    let (Some(origin), Some(method)) = (
        header(headers, "origin"),
        header(headers, "access-control-request-method"),
    ) else {
        return Vec::new();
    };
    let Some(allow) = allow_origin(cors, origin) else {
        return Vec::new();
    };
    let method_ok = wildcard(&cors.allow_methods)
        || list(&cors.allow_methods)
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.trim()));
    if !method_ok {
        return Vec::new();
    }
    let requested: Vec<&str> = header(headers, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let headers_ok = wildcard(&cors.allow_headers)
        || requested.iter().all(|r| {
            list(&cors.allow_headers)
                .iter()
                .any(|h| h.eq_ignore_ascii_case(r))
        });
    if !headers_ok {
        return Vec::new();
    }
    let mut out = vec![("access-control-allow-origin", allow)];
    out.push((
        "access-control-allow-methods",
        if wildcard(&cors.allow_methods) {
            method.trim().to_owned()
        } else {
            list(&cors.allow_methods).join(",")
        },
    ));
    let allow_headers = if wildcard(&cors.allow_headers) {
        requested.join(",")
    } else {
        list(&cors.allow_headers).join(",")
    };
    if !allow_headers.is_empty() {
        out.push(("access-control-allow-headers", allow_headers));
    }
    if cors.allow_credentials == Some(true) {
        out.push(("access-control-allow-credentials", "true".to_owned()));
    }
    if let Some(age) = cors.max_age {
        out.push(("access-control-max-age", age.to_string()));
    }
    out.push(("vary", "Origin".to_owned()));
    out
}

/// Applies the configuration to a response's headers for a request from `origin`: Lambda's
/// CORS headers replace the function's; a disallowed (or absent) origin gets none.
pub fn apply(cors: &Cors, origin: Option<&str>, response: &mut Vec<(String, String)>) {
    response.retain(|(n, _)| !CORS_HEADERS.iter().any(|c| n.eq_ignore_ascii_case(c)));
    let Some(allow) = origin.and_then(|o| allow_origin(cors, o)) else {
        return;
    };
    response.push(("access-control-allow-origin".to_owned(), allow));
    if cors.allow_credentials == Some(true) {
        response.push((
            "access-control-allow-credentials".to_owned(),
            "true".to_owned(),
        ));
    }
    let expose = list(&cors.expose_headers);
    if !expose.is_empty() {
        response.push(("access-control-expose-headers".to_owned(), expose.join(",")));
    }
    response.push(("vary".to_owned(), "Origin".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cors() -> Cors {
        Cors {
            allow_credentials: None,
            allow_headers: Some(vec!["content-type".into(), "x-custom".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_origins: Some(vec!["https://app.example".into()]),
            expose_headers: Some(vec!["x-trace".into()]),
            max_age: Some(300),
        }
    }

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn preflights() {
        let req = h(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "Content-Type, X-Custom"),
        ]);
        assert!(is_preflight(&Method::OPTIONS, &req));
        assert!(!is_preflight(&Method::GET, &req));
        let out = preflight(&cors(), &req);
        assert_eq!(
            out,
            vec![
                (
                    "access-control-allow-origin",
                    "https://app.example".to_owned()
                ),
                ("access-control-allow-methods", "GET,POST".to_owned()),
                (
                    "access-control-allow-headers",
                    "content-type,x-custom".to_owned()
                ),
                ("access-control-max-age", "300".to_owned()),
                ("vary", "Origin".to_owned()),
            ]
        );
        let other = h(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(preflight(&cors(), &other).is_empty());
        let bad_method = h(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
        ]);
        assert!(preflight(&cors(), &bad_method).is_empty());
        let bad_header = h(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-other"),
        ]);
        assert!(preflight(&cors(), &bad_header).is_empty());
    }

    #[test]
    fn wildcards_and_credentials() {
        let c = Cors {
            allow_origins: Some(vec!["*".into()]),
            allow_methods: Some(vec!["*".into()]),
            allow_headers: Some(vec!["*".into()]),
            ..Cors::default()
        };
        let req = h(&[
            ("origin", "http://x.test"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "x-a"),
        ]);
        let out = preflight(&c, &req);
        assert_eq!(out[0], ("access-control-allow-origin", "*".to_owned()));
        assert_eq!(out[1], ("access-control-allow-methods", "PATCH".to_owned()));
        assert_eq!(out[2], ("access-control-allow-headers", "x-a".to_owned()));
        let creds = Cors {
            allow_credentials: Some(true),
            ..c
        };
        assert_eq!(
            preflight(&creds, &req)[0],
            ("access-control-allow-origin", "http://x.test".to_owned())
        );
    }

    #[test]
    fn responses() {
        let mut headers = vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("Access-Control-Allow-Origin".to_owned(), "*".to_owned()),
        ];
        apply(&cors(), Some("https://app.example"), &mut headers);
        assert_eq!(
            headers,
            vec![
                ("content-type".to_owned(), "text/plain".to_owned()),
                (
                    "access-control-allow-origin".to_owned(),
                    "https://app.example".to_owned()
                ),
                (
                    "access-control-expose-headers".to_owned(),
                    "x-trace".to_owned()
                ),
                ("vary".to_owned(), "Origin".to_owned()),
            ]
        );
        let mut headers = vec![("access-control-allow-origin".to_owned(), "*".to_owned())];
        apply(&cors(), Some("https://evil.example"), &mut headers);
        assert!(headers.is_empty());
    }
}
