//! Requests a web browser makes on behalf of another site. In local mode unsigned requests
//! are the operator's, and a browser on the operator's machine is a client of the loopback
//! too: any page it shows could `fetch('http://127.0.0.1:9001/2015-03-31/functions', {method:
//! 'POST', mode: 'no-cors', body})` (a "simple" request, sent without a CORS preflight) and
//! create and invoke a function, or load `<img src=".../?Action=DeleteQueue...">`. Such requests
//! are told apart by what browsers add and pages cannot remove: `Sec-Fetch-Site` (anything
//! but `same-origin` or `none`) and `Origin` (another origin than the `Host` asked for, or
//! `null`); a browser's request for a `Host` that is not a loopback name or an IP address is
//! refused as well (DNS rebinding makes a page's own name point at 127.0.0.1, and its requests
//! same-origin). SDKs, the CLI and curl send neither header.

use http::request::Parts;
use http::{HeaderMap, Method};

use crate::dispatch::ServiceId;

/// Whether `parts`, unsigned, was sent by a browser for another site (see the module).
/// Function URLs and API Gateway's invocations are public and governed by CORS; other sites'
/// pages may read S3 objects and open Kindling's own pages (the console), from the loopback.
pub(crate) fn forged(parts: &Parts, service: Option<ServiceId>) -> bool {
    if matches!(
        service,
        Some(ServiceId::FunctionUrl | ServiceId::ExecuteApi)
    ) || signed(parts)
    {
        return false;
    }
    let headers = &parts.headers;
    let site = header(headers, "sec-fetch-site");
    let origin = header(headers, "origin");
    if site.is_none() && origin.is_none() {
        return false;
    }
    // Reads without effects: S3's objects (a local web app's `<img src>`) and Kindling's own
    // pages (a link to the console). An SQS query GET has effects; no Lambda GET is needed.
    let read = matches!(parts.method, Method::GET | Method::HEAD)
        && matches!(service, Some(ServiceId::S3 | ServiceId::Kindling));
    if let Some(site) = site
        && !matches!(site, "same-origin" | "none")
        && !read
    {
        return true;
    }
    let host = header(headers, "host").unwrap_or_default();
    if let Some(origin) = origin {
        let authority = origin
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .trim_end_matches('/');
        if !authority.eq_ignore_ascii_case(host) && !read {
            return true;
        }
    }
    !local_host(host)
}

/// Whether the request carries a signature (a browser page holds no keys; a signed request is
/// the gate's to judge).
fn signed(parts: &Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.uri.query().is_some_and(|q| {
            q.split('&').any(|p| {
                let name = p.split('=').next().unwrap_or_default();
                matches!(
                    name,
                    "X-Amz-Credential" | "X-Amz-Signature" | "AWSAccessKeyId" | "Signature"
                )
            })
        })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `localhost`, `*.localhost` or an IP address, with or without a port: names no page can
/// make resolve to the loopback behind the browser's back.
fn local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:9001`
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    const LAMBDA: Option<ServiceId> = Some(ServiceId::Lambda);

    #[test]
    fn cross_site_browser_requests_are_forged() {
        let host = ("host", "127.0.0.1:9001");
        for headers in [
            // fetch(..., {mode: 'no-cors'}) from https://evil.example.
            vec![
                host,
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            // An older browser: Origin only.
            vec![host, ("origin", "https://evil.example")],
            vec![host, ("origin", "null")],
            // <img src>: no Origin on a GET.
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            // DNS rebinding: same-origin for the browser, a name that is not the loopback's.
            vec![
                ("host", "rebind.evil.example:9001"),
                ("origin", "http://rebind.evil.example:9001"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            let p = parts(Method::POST, "/2015-03-31/functions", &headers);
            assert!(forged(&p, LAMBDA), "{headers:?}");
        }
    }

    #[test]
    fn clients_the_console_and_public_routes_pass() {
        let host = ("host", "127.0.0.1:9001");
        for (method, uri, service, headers) in [
            // SDKs, the CLI, curl.
            (Method::POST, "/2015-03-31/functions", LAMBDA, vec![host]),
            // The console, from its own origin.
            (
                Method::POST,
                "/_kindling/api/x",
                Some(ServiceId::Kindling),
                vec![
                    host,
                    ("origin", "http://127.0.0.1:9001"),
                    ("sec-fetch-site", "same-origin"),
                ],
            ),
            (
                Method::GET,
                "/_kindling/console/",
                Some(ServiceId::Kindling),
                vec![("host", "localhost:9001"), ("sec-fetch-site", "none")],
            ),
            (
                Method::POST,
                "/x",
                LAMBDA,
                vec![("host", "[::1]:9001"), ("origin", "http://[::1]:9001")],
            ),
            // A link to the console from another site.
            (
                Method::GET,
                "/_kindling/console/",
                Some(ServiceId::Kindling),
                vec![
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("sec-fetch-mode", "navigate"),
                ],
            ),
            // Public routes, under CORS.
            (
                Method::POST,
                "/lambda-url/abc/",
                Some(ServiceId::FunctionUrl),
                vec![
                    host,
                    ("origin", "https://app.example"),
                    ("sec-fetch-site", "cross-site"),
                ],
            ),
            // Signed: the gate judges.
            (
                Method::POST,
                "/2015-03-31/functions",
                LAMBDA,
                vec![
                    host,
                    ("origin", "https://evil.example"),
                    ("authorization", "AWS4-HMAC-SHA256 Credential=..."),
                ],
            ),
        ] {
            let p = parts(method, uri, &headers);
            assert!(!forged(&p, service), "{uri} {headers:?}");
        }
        // A cross-site GET is still refused outside S3 and Kindling's own pages (an SQS query
        // GET has effects), and a rebound name even there.
        let p = parts(
            Method::GET,
            "/?Action=DeleteQueue",
            &[
                host,
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
            ],
        );
        assert!(forged(&p, Some(ServiceId::Sqs)));
        let img = [("host", "127.0.0.1:9001"), ("sec-fetch-site", "same-site")];
        let p = parts(Method::GET, "/bucket/pic.png", &img);
        assert!(!forged(&p, Some(ServiceId::S3)));
        let p = parts(Method::PUT, "/bucket/pic.png", &img);
        assert!(forged(&p, Some(ServiceId::S3)));
        let rebound = [
            ("host", "rebind.evil.example:9001"),
            ("sec-fetch-site", "same-origin"),
        ];
        let p = parts(Method::GET, "/bucket/pic.png", &rebound);
        assert!(forged(&p, Some(ServiceId::S3)));
    }
}
