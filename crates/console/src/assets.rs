//! The console's files, compiled into the binary. Each answer carries a strong `ETag` (the
//! binary's version and the file's hash) so a reload costs a 304.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// `(name, content type, bytes)` of every file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "aws.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/aws.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/charts.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

pub async fn redirect() -> Redirect {
    Redirect::permanent("/_kindling/console/")
}

pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

/// A file by name, or 404.
pub fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, body)| (*t, *body))
}

fn etag(body: &str) -> String {
    // FNV-1a over the bytes, with the crate version: changes whenever the file does.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{}-{h:016x}\"", env!("CARGO_PKG_VERSION"))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some((content_type, body)) = lookup(name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("The console has no file named {name}.\n"),
        )
            .into_response();
    };
    let tag = etag(body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let tag = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    let common = [
        (header::ETAG, tag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            ),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_found_and_tags_differ() {
        for (name, _, body) in FILES {
            assert!(lookup(name).is_some());
            assert!(!body.is_empty(), "{name} is empty");
        }
        assert!(lookup("../Cargo.toml").is_none());
        assert_ne!(etag("a"), etag("b"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for (name, _, body) in FILES {
            // The SVG namespace is a name, not a location.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!body.contains("http://"), "{name} names an http:// URL");
            assert!(!body.contains("https://"), "{name} names an https:// URL");
        }
    }

    #[test]
    fn conditional_requests_get_304() {
        let (_, body) = lookup("app.js").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&etag(body)).unwrap(),
        );
        assert_eq!(serve("app.js", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("app.js", &HeaderMap::new()).status(), StatusCode::OK);
        assert_eq!(
            serve("nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
