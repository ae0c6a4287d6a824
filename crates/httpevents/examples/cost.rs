//! What the event mapping costs per request: building a function URL's payload 2.0 event for a
//! typical browser-sized GET and mapping a structured result back, in CPU µs.
//!
//! `cargo run --release -p kindling-httpevents --example cost [ITERATIONS]`

use std::time::Instant;

/// This thread's CPU time in ns (`/proc/thread-self/schedstat`, first field): the machine is
/// shared, so wall time alone says little.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

use bytes::Bytes;
use kindling_httpevents::{HttpRequest, RequestContext, v2};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let request = HttpRequest {
        method: "GET".into(),
        path: "/items/42".into(),
        query: "page=2&sort=name&tag=a&tag=b".into(),
        protocol: "HTTP/1.1".into(),
        headers: [
            ("host", "127.0.0.1:9001"),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
            ),
            (
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("accept-language", "en-US,en;q=0.5"),
            ("accept-encoding", "gzip, deflate, br"),
            ("cookie", "session=abc123; theme=dark"),
            ("connection", "keep-alive"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect(),
        body: Bytes::new(),
        source_ip: "127.0.0.1".into(),
    };
    let context = RequestContext {
        account_id: "000000000000".into(),
        api_id: "a".repeat(32),
        domain_name: format!("{}.lambda-url.us-east-1.on.aws", "a".repeat(32)),
        domain_prefix: "a".repeat(32),
        request_id: "8f0e3c4e-4c1b-4c4f-9a38-3f1d2e5b6a7c".into(),
        stage: "$default".into(),
        time_epoch_ms: 1_796_515_200_000,
    };
    let options = v2::Options::function_url();
    let result = br#"{"statusCode":200,"headers":{"content-type":"application/json","cache-control":"no-store"},"cookies":["seen=1; Path=/"],"body":"{\"id\":42,\"name\":\"widget\"}","isBase64Encoded":false}"#;

    let mut bytes = 0usize;
    let (t, c) = (Instant::now(), thread_cpu_ns());
    for _ in 0..n {
        bytes += v2::event(&request, &context, &options).len();
    }
    let event_wall = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let event_cpu = (thread_cpu_ns() - c) as f64 / 1e3 / n as f64;
    let (t, c) = (Instant::now(), thread_cpu_ns());
    for _ in 0..n {
        bytes += v2::response(result).map(|r| r.body.len()).unwrap_or(0);
    }
    let response_wall = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let response_cpu = (thread_cpu_ns() - c) as f64 / 1e3 / n as f64;
    println!(
        "payload 2.0 event ({} bytes): {event_cpu:.2} µs CPU ({event_wall:.2} wall); structured response: {response_cpu:.2} µs CPU ({response_wall:.2} wall); total {:.2} µs CPU per request ({bytes} bytes processed)",
        v2::event(&request, &context, &options).len(),
        event_cpu + response_cpu
    );
}
