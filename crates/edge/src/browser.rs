//! Requests a web browser makes on behalf of another site. In local mode requests are not
//! checked for signatures, and a browser on the operator's machine is a client of the loopback
//! too: any page it shows could `fetch('http://127.0.0.1:9001/2015-03-31/functions', {method:
//! 'POST', mode: 'no-cors', body})` (a "simple" request, sent without a CORS preflight) and
//! create and invoke a function, or load `<img src=".../?Action=DeleteQueue...">`. Two checks:
//!
//! * **Host**, on every request: the name it is addressed to must be `localhost`,
//!   `*.localhost`, an IP address or a name the operator allows (`--allowed-host`). DNS
//!   rebinding makes a page's own name resolve to 127.0.0.1: its requests are then
//!   same-origin, carry no `Origin` on a GET and no `Sec-Fetch-*` at all (browsers send those
//!   only to secure origins), may set any header (an `Authorization` proves nothing where
//!   signatures are not checked), but name the page's host, which a page cannot change. A
//!   request without any `Host` is no browser's and passes.
//! * **Site**, on requests without an `Authorization` header: `Sec-Fetch-Site` (anything but
//!   `same-origin` or `none`) or `Origin` (another origin than the `Host`, or `null`) mark a
//!   request sent for another site. A page cannot send `Authorization` to another origin
//!   without a CORS preflight, and the preflight (`OPTIONS`, from the other site) is refused
//!   here. A signature in the query (`X-Amz-Signature`, presigned URLs) is no such proof: a
//!   page can write any URL, and locally no signature is checked.
//!
//! Function URLs and API Gateway's invocations are public and governed by CORS: never refused
//! here, except a function URL with `AuthType: AWS_IAM` where its signature is not checked
//! (local mode without keys): the front door refuses it when [`sent_for_another_site`] says
//! so, even with an `Authorization` header. SDKs, the CLI and curl send no browser headers and
//! address 127.0.0.1 or localhost.

use http::request::Parts;
use http::{HeaderMap, Method};

use crate::dispatch::ServiceId;

/// Why a request is refused as a browser's for another site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forgery {
    /// It names a host that is not the loopback's, an IP address or an allowed name.
    Host,
    /// `Origin` or `Sec-Fetch-Site` say another site's page sent it.
    CrossSite,
}

/// Whether `parts` (from a caller whose signature is not checked) was sent by a browser for
/// another site (see the module); `allowed` are the operator's extra host names (`name` or
/// `*.name`). Other sites' pages may read S3 objects and open Kindling's own pages (the
/// console), when they address the loopback.
pub(crate) fn forged(
    parts: &Parts,
    service: Option<ServiceId>,
    allowed: &[String],
) -> Option<Forgery> {
    if matches!(
        service,
        Some(ServiceId::FunctionUrl | ServiceId::ExecuteApi)
    ) {
        return None;
    }
    if !hosts_allowed(parts, allowed) {
        return Some(Forgery::Host);
    }
    let headers = &parts.headers;
    if headers.contains_key(http::header::AUTHORIZATION) {
        return None;
    }
    let site = header(headers, "sec-fetch-site");
    let origin = header(headers, "origin");
    // Reads without effects: S3's objects (a local web app's `<img src>`) and Kindling's own
    // pages (a link to the console). An SQS query GET has effects; no Lambda GET is needed.
    let read = matches!(parts.method, Method::GET | Method::HEAD)
        && matches!(service, Some(ServiceId::S3 | ServiceId::Kindling));
    if read {
        return None;
    }
    cross_site(headers, site, origin, allowed).then_some(Forgery::CrossSite)
}

/// Whether a web page of another site sent `parts`, whatever else it carries: it names a host
/// that is not this machine's (DNS rebinding), or its `Origin` or `Sec-Fetch-Site` say so. For
/// requests that ask for a signature nobody checks (an `AuthType: AWS_IAM` function URL in
/// local mode): unlike the rest of the API, a function URL answers CORS preflights as its
/// configuration says, so a page may send an `Authorization` header to it, and any GET or
/// POST invokes the function.
pub fn sent_for_another_site(parts: &Parts, allowed: &[String]) -> bool {
    if !hosts_allowed(parts, allowed) {
        return true;
    }
    let headers = &parts.headers;
    cross_site(
        headers,
        header(headers, "sec-fetch-site"),
        header(headers, "origin"),
        allowed,
    )
}

/// Whether `Sec-Fetch-Site` or `Origin` name another site than the request's `Host`.
fn cross_site(
    headers: &HeaderMap,
    site: Option<&str>,
    origin: Option<&str>,
    allowed: &[String],
) -> bool {
    let origin_authority = origin.map(|origin| {
        origin
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .trim_end_matches('/')
    });
    // A page this machine serves (a local web app on `http://localhost:3000` uploading to a
    // presigned URL) is no other site: a remote or rebound page cannot have such an origin.
    if origin_authority.is_some_and(|a| local_origin(a, allowed)) {
        return false;
    }
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return true;
    }
    if let Some(authority) = origin_authority {
        let host = header(headers, "host").unwrap_or_default();
        if !authority.eq_ignore_ascii_case(host) {
            return true;
        }
    }
    false
}

/// Whether an `Origin`'s authority is this machine's: a loopback address, `localhost`,
/// `*.localhost` or a name the operator allows. Unlike a `Host`, any other IP address is not:
/// a remote page may be served from one.
fn local_origin(authority: &str, allowed: &[String]) -> bool {
    if !host_allowed(authority, allowed) {
        return false;
    }
    let name = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(ip, _)| ip),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(name, _)| name),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => true,
    }
}

/// Whether every name the request is addressed to (its `Host` headers, the authority of an
/// absolute-form target) is allowed; a request with none passes (every browser sends one).
fn hosts_allowed(parts: &Parts, allowed: &[String]) -> bool {
    let from_uri = parts.uri.authority().map(http::uri::Authority::as_str);
    parts
        .headers
        .get_all(http::header::HOST)
        .iter()
        .map(|v| v.to_str().ok())
        .chain(from_uri.map(Some))
        .all(|host| host.is_some_and(|h| host_allowed(h.trim(), allowed)))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `localhost`, `*.localhost`, an IP address (names no page can make resolve to the loopback
/// behind the browser's back) or one of `allowed`, with or without a port, in any case, with
/// or without a trailing dot.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:9001`
        return rest.split_once(']').is_some_and(|(ip, port)| {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
        });
    }
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.contains(':') {
        return false;
    }
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || subdomain_of(name, "localhost")
        || allowed.iter().any(|a| {
            let a = a.strip_suffix('.').unwrap_or(a);
            match a.strip_prefix("*.") {
                Some(parent) => subdomain_of(name, parent),
                None => name.eq_ignore_ascii_case(a),
            }
        })
}

/// Whether `name` is `<label(s)>.parent` (ASCII case-insensitive).
fn subdomain_of(name: &str, parent: &str) -> bool {
    name.len() > parent.len() + 1
        && name
            .get(name.len() - parent.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(parent))
        && name.as_bytes().get(name.len() - parent.len() - 1) == Some(&b'.')
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
            assert!(forged(&p, LAMBDA, &[]).is_some(), "{headers:?}");
        }
    }

    #[test]
    fn a_page_this_machine_serves_is_no_other_site() {
        let host = ("host", "127.0.0.1:9001");
        // A local web app PUTs to a presigned URL (its preflight is an OPTIONS like it).
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
            "http://app.localhost:3000",
            "http://kindling:3000",
        ] {
            let headers = [host, ("origin", origin), ("sec-fetch-site", "cross-site")];
            for method in [Method::PUT, Method::OPTIONS] {
                let p = parts(method, "/bucket/key?X-Amz-Signature=0", &headers);
                assert_eq!(
                    forged(&p, Some(ServiceId::S3), &["kindling".to_string()]),
                    None,
                    "{origin}"
                );
            }
        }
        // Any other address is another site's, even a bare IP (a remote page may be served
        // from one), and so are look-alikes.
        for origin in [
            "http://203.0.113.5",
            "http://10.0.0.2:3000",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
        ] {
            let headers = [host, ("origin", origin), ("sec-fetch-site", "cross-site")];
            let p = parts(Method::PUT, "/bucket/key?X-Amz-Signature=0", &headers);
            assert_eq!(
                forged(&p, Some(ServiceId::S3), &[]),
                Some(Forgery::CrossSite),
                "{origin}"
            );
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
            assert_eq!(forged(&p, service, &[]), None, "{uri} {headers:?}");
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
        assert!(forged(&p, Some(ServiceId::Sqs), &[]).is_some());
        let img = [("host", "127.0.0.1:9001"), ("sec-fetch-site", "same-site")];
        let p = parts(Method::GET, "/bucket/pic.png", &img);
        assert_eq!(forged(&p, Some(ServiceId::S3), &[]), None);
        let p = parts(Method::PUT, "/bucket/pic.png", &img);
        assert!(forged(&p, Some(ServiceId::S3), &[]).is_some());
        let rebound = [
            ("host", "rebind.evil.example:9001"),
            ("sec-fetch-site", "same-origin"),
        ];
        let p = parts(Method::GET, "/bucket/pic.png", &rebound);
        assert!(forged(&p, Some(ServiceId::S3), &[]).is_some());
    }

    #[test]
    fn a_signature_in_the_query_is_no_signature() {
        // fetch('http://127.0.0.1:9001/2015-03-31/functions?X-Amz-Signature=1', {method:
        // 'POST', mode: 'no-cors'}) and <img src="/?Action=DeleteQueue&...&Signature=x">.
        let cross = [
            ("host", "127.0.0.1:9001"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        for query in [
            "X-Amz-Signature=1",
            "X-Amz-Credential=a%2Fb&X-Amz-Signature=1",
            "AWSAccessKeyId=a&Signature=x",
        ] {
            let p = parts(
                Method::POST,
                &format!("/2015-03-31/functions?{query}"),
                &cross,
            );
            assert_eq!(forged(&p, LAMBDA, &[]), Some(Forgery::CrossSite), "{query}");
            let p = parts(
                Method::GET,
                &format!("/?Action=DeleteQueue&QueueUrl=q&{query}"),
                &[("host", "127.0.0.1:9001"), ("sec-fetch-site", "cross-site")],
            );
            assert!(forged(&p, Some(ServiceId::Sqs), &[]).is_some(), "{query}");
        }
        // A presigned S3 download still opens from another site's page, and from curl.
        let p = parts(
            Method::GET,
            "/bucket/key?X-Amz-Signature=1",
            &[("host", "127.0.0.1:9001"), ("sec-fetch-site", "cross-site")],
        );
        assert_eq!(forged(&p, Some(ServiceId::S3), &[]), None);
        let p = parts(
            Method::PUT,
            "/bucket/key?X-Amz-Signature=1&X-Amz-Credential=a",
            &[("host", "127.0.0.1:9001")],
        );
        assert_eq!(forged(&p, Some(ServiceId::S3), &[]), None);
        // A CORS preflight from another site (for a request with Authorization) is refused.
        let p = parts(
            Method::OPTIONS,
            "/2015-03-31/functions",
            &[
                ("host", "127.0.0.1:9001"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
        );
        assert_eq!(forged(&p, LAMBDA, &[]), Some(Forgery::CrossSite));
    }

    #[test]
    fn every_request_names_an_allowed_host() {
        // A rebound page's requests: no browser header at all (Sec-Fetch-* only go to secure
        // origins, Origin not on same-origin GETs), any header it likes, its own Host.
        for (method, service, headers) in [
            (
                Method::GET,
                LAMBDA,
                vec![("host", "rebind.evil.example:9001")],
            ),
            (
                Method::GET,
                Some(ServiceId::S3),
                vec![("host", "rebind.evil.example")],
            ),
            (
                Method::GET,
                Some(ServiceId::Kindling),
                vec![("host", "REBIND.evil.example.:9001")],
            ),
            (
                Method::POST,
                LAMBDA,
                vec![
                    ("host", "rebind.evil.example:9001"),
                    ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
                ],
            ),
            // Look-alikes of allowed names.
            (
                Method::GET,
                LAMBDA,
                vec![("host", "localhost.evil.example")],
            ),
            (Method::GET, LAMBDA, vec![("host", "evillocalhost")]),
            (
                Method::GET,
                LAMBDA,
                vec![("host", "127.0.0.1.evil.example")],
            ),
            (Method::GET, LAMBDA, vec![("host", "[::1].evil.example")]),
            (Method::GET, LAMBDA, vec![("host", "[::1]x")]),
            (Method::GET, LAMBDA, vec![("host", "")]),
            (Method::GET, LAMBDA, vec![("host", ":9001")]),
            (Method::GET, LAMBDA, vec![("host", "kindling.evil.example")]),
            (
                Method::GET,
                LAMBDA,
                vec![("host", "x.kindling.evil.example")],
            ),
            // One good Host does not excuse another.
            (
                Method::GET,
                LAMBDA,
                vec![("host", "127.0.0.1"), ("host", "rebind.evil.example")],
            ),
        ] {
            let p = parts(method, "/2015-03-31/functions", &headers);
            let allowed = ["kindling".to_string(), "*.kindling.test".to_string()];
            assert_eq!(
                forged(&p, service, &allowed),
                Some(Forgery::Host),
                "{headers:?}"
            );
        }
        // An absolute-form target names its host too.
        let p = parts(
            Method::GET,
            "http://rebind.evil.example/2015-03-31/functions",
            &[],
        );
        assert_eq!(forged(&p, LAMBDA, &[]), Some(Forgery::Host));
        let p = parts(
            Method::GET,
            "http://127.0.0.1:9001/2015-03-31/functions",
            &[],
        );
        assert_eq!(forged(&p, LAMBDA, &[]), None);

        let allowed = [
            "kindling".to_string(),
            "host.docker.internal.".to_string(),
            "*.kindling.test".to_string(),
        ];
        for host in [
            "127.0.0.1:9001",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:9001",
            "[::1]",
            "[fe80::1]:9001",
            "localhost",
            "LocalHost:9001",
            "localhost.:9001",
            "bucket.localhost:9001",
            "abc.lambda-url.us-east-1.localhost",
            "kindling:9001",
            "KINDLING",
            "kindling.",
            "host.docker.internal:9001",
            "bucket.kindling.test:9001",
        ] {
            let p = parts(Method::POST, "/2015-03-31/functions", &[("host", host)]);
            assert_eq!(forged(&p, LAMBDA, &allowed), None, "{host}");
        }
        // `*.name` is the subdomains only; no Host at all (HTTP/1.0) is no browser's.
        let p = parts(Method::GET, "/", &[("host", "kindling.test")]);
        assert_eq!(forged(&p, LAMBDA, &allowed), Some(Forgery::Host));
        let p = parts(Method::GET, "/2015-03-31/functions", &[]);
        assert_eq!(forged(&p, LAMBDA, &[]), None);
        // Public routes answer any host (they are named by it).
        let p = parts(
            Method::POST,
            "/",
            &[("host", "abc.lambda-url.us-east-1.on.aws")],
        );
        assert_eq!(forged(&p, Some(ServiceId::FunctionUrl), &[]), None);
        let p = parts(
            Method::GET,
            "/prod/x",
            &[("host", "a1.execute-api.evil.example")],
        );
        assert_eq!(forged(&p, Some(ServiceId::ExecuteApi), &[]), None);
    }
}
