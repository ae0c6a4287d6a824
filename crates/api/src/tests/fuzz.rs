//! Random requests against the router for a bounded time: whatever the path, query, headers
//! and body, the answer is in Lambda's format (request id; errors with `x-amzn-ErrorType` and
//! a JSON body with `Type` and `message`/`Message`) and never an internal error.
//!
//! `KINDLING_API_FUZZ_SEED` replays a run; `KINDLING_API_FUZZ_MS` sets its length (default
//! 1500 ms).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, Uri};
use tower::ServiceExt;

use super::app;
use crate::normalize_path;

const TEMPLATES: &[(&str, &str)] = &[
    ("GET", "/2015-03-31/functions/{}"),
    ("DELETE", "/2015-03-31/functions/{}"),
    ("GET", "/2015-03-31/functions/{}/configuration"),
    ("PUT", "/2015-03-31/functions/{}/configuration"),
    ("PUT", "/2015-03-31/functions/{}/code"),
    ("POST", "/2015-03-31/functions/{}/invocations"),
    ("POST", "/2014-11-13/functions/{}/invoke-async"),
    ("GET", "/2015-03-31/functions/{}/aliases/{}"),
    ("POST", "/2015-03-31/functions/{}/versions"),
    ("GET", "/2018-10-31/layers/{}/versions/{}"),
    ("POST", "/2017-03-31/tags/{}"),
    ("DELETE", "/2015-03-31/functions/{}/policy/{}"),
    ("PUT", "/2017-10-31/functions/{}/concurrency"),
    ("GET", "/2019-09-25/functions/{}/event-invoke-config"),
    ("GET", "/_kindling/code/{}"),
    ("POST", "/2015-03-31/functions"),
    ("GET", "/2015-03-31/functions"),
    ("PATCH", "/{}"),
    ("GET", "/{}/{}/{}"),
];

/// A path segment: plain names, long names, percent-escapes of any byte (valid UTF-8 or not),
/// broken escapes, ARN-like text.
fn segment(rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    let len = match rng.u8(0..10) {
        0 => rng.usize(200..7000),
        1 => 0,
        _ => rng.usize(1..40),
    };
    for _ in 0..len {
        match rng.u8(0..10) {
            0..=4 => out.push(rng.alphanumeric()),
            5 => out.push_str(&format!("%{:02X}", rng.u8(..))),
            6 => {
                out.push_str(["%", "%z", "%4", ":", "-", "_", ".", "~", "$", "'"][rng.usize(0..10)])
            }
            7 => out.push_str("arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3A"),
            8 => out.push_str(["%E2%82%AC", "%F0%9F%94%A5", "%C3", "%ED%A0%80"][rng.usize(0..4)]),
            _ => out.push(
                ['a', 'Z', '9', '!', '*', '(', ')', '@', '&', '=', '+', ','][rng.usize(0..12)],
            ),
        }
    }
    out
}

fn query(rng: &mut fastrand::Rng) -> String {
    let keys = [
        "Qualifier",
        "MaxItems",
        "Marker",
        "FunctionVersion",
        "find",
        "Arn",
        "tagKeys",
        "X-Amz-Signature",
        "X-Amz-Credential",
    ];
    (0..rng.usize(0..4))
        .map(|_| format!("{}={}", keys[rng.usize(0..keys.len())], segment(rng)))
        .collect::<Vec<_>>()
        .join("&")
}

fn header_value(rng: &mut fastrand::Rng) -> String {
    let choices = [
        "Event",
        "RequestResponse",
        "DryRun",
        "Tail",
        "None",
        "",
        "e30=",
        "!!!",
        "application/json",
        "AWS4-HMAC-SHA256 Credential=x",
    ];
    let mut v = choices[rng.usize(0..choices.len())].to_string();
    if rng.bool() {
        v.push_str(&"x".repeat(rng.usize(0..5000)));
    }
    v
}

fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..6) {
        0 => Vec::new(),
        1 => b"{}".to_vec(),
        2 => b"{\"FunctionName\": 1, \"Code\": {\"ZipFile\": \"!!\"}}".to_vec(),
        3 => (0..rng.usize(0..300)).map(|_| rng.u8(..)).collect(),
        4 => format!(
            "{{\"Name\":\"{}\",\"FunctionVersion\":\"$LATEST\"}}",
            segment(rng)
        )
        .into_bytes(),
        _ => b"[1,2".to_vec(),
    }
}

#[tokio::test]
async fn random_requests_get_lambda_shaped_answers() {
    let seed = std::env::var("KINDLING_API_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let budget = std::env::var("KINDLING_API_FUZZ_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    eprintln!("fuzz seed {seed} (KINDLING_API_FUZZ_SEED to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (app, _dir) = app();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_millis(budget) {
        let (method, template) = TEMPLATES[rng.usize(0..TEMPLATES.len())];
        let mut path = template.to_string();
        while path.contains("{}") {
            path = path.replacen("{}", &segment(&mut rng), 1);
        }
        if rng.bool() {
            path.push('/');
        }
        let q = query(&mut rng);
        let uri = if q.is_empty() {
            path.clone()
        } else {
            format!("{path}?{q}")
        };
        // Targets the HTTP parser refuses never reach the router (the edge answers them).
        let Ok(uri) = uri.parse::<Uri>() else {
            continue;
        };
        let mut builder = Request::builder().method(method).uri(uri.clone());
        for name in [
            "x-amz-invocation-type",
            "x-amz-log-type",
            "x-amz-client-context",
            "content-type",
            "authorization",
            "x-amz-date",
        ] {
            if rng.u8(0..3) == 0 {
                builder = builder.header(name, header_value(&mut rng));
            }
        }
        let Ok(req) = builder.body(Body::from(body(&mut rng))) else {
            continue;
        };
        let res = app.clone().oneshot(normalize_path(req)).await.unwrap();
        sent += 1;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let context = format!(
            "seed {seed}: {method} {uri} -> {status} {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
        assert!(headers.contains_key("x-amzn-RequestId"), "{context}");
        // This router has no data plane: invocations that pass validation get 503.
        assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR
                && (!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE),
            "{context}"
        );
        if status.is_client_error() || status.is_server_error() {
            assert!(headers.contains_key("x-amzn-ErrorType"), "{context}");
            let doc: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(doc["Type"].is_string(), "{context}");
            assert!(
                doc["message"].is_string() || doc["Message"].is_string(),
                "{context}"
            );
        }
    }
    assert!(sent > 100, "only {sent} requests in the time budget");
    eprintln!("{sent} random requests");
}
