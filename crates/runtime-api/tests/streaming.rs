//! Streamed responses over real TCP: bytes reach the caller before the body ends, a slow caller
//! slows the runtime (back-pressure), trailers carry mid-stream errors, and the size and
//! bandwidth limits hold.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_runtime_api::{
    Invocation, Outcome, ResponseStream, RuntimeApiConfig, StreamEnd, StreamLimits,
};
use support::*;

fn invocation(id: &str) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        payload: Bytes::from_static(b"{}"),
        ..Invocation::default()
    }
}

fn stream_head(id: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n\
         Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
         Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n",
        response_path(id)
    )
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Starts an environment with `config`, delivers one invocation and returns the runtime's
/// connection (after its `/next`) and the invocation's pending outcome.
async fn delivered(
    config: RuntimeApiConfig,
    id: &'static str,
) -> (
    std::sync::Arc<kindling_runtime_api::RuntimeApi>,
    Conn,
    tokio::task::JoinHandle<Outcome>,
) {
    let api = start(config).await;
    let next = spawn_next(api.local_addr());
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation(id)).await }
    });
    let (conn, _) = soon(next).await.expect("next");
    (api, conn, invoke)
}

fn stream_of(outcome: Outcome) -> ResponseStream {
    match outcome {
        Outcome::Stream(s) => s,
        other => panic!("expected a stream, got {other:?}"),
    }
}

#[tokio::test]
async fn bytes_arrive_before_the_body_ends_and_trailers_carry_the_error() {
    let (_api, mut conn, invoke) = delivered(config(), "st").await;
    conn.write_raw(stream_head("st").as_bytes()).await;
    conn.write_raw(&chunk(b"hello")).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    assert_eq!(stream.content_type.as_deref(), Some("text/plain"));
    assert_eq!(soon(stream.chunks.recv()).await.unwrap(), "hello");
    // The body has not ended: nothing more, and no end yet.
    assert!(stays_pending(&mut Box::pin(stream.chunks.recv())).await);
    conn.write_raw(&chunk(b" world")).await;
    assert_eq!(soon(stream.chunks.recv()).await.unwrap(), " world");
    conn.write_raw(
        b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
          Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJ4In0=\r\n\r\n",
    )
    .await;
    assert_eq!(soon(stream.chunks.recv()).await, None);
    assert_eq!(
        soon(stream.end).await.unwrap(),
        StreamEnd::Error {
            error_type: Some("Runtime.StreamError".into()),
            body: Bytes::from_static(br#"{"errorMessage":"x"}"#),
        }
    );
    assert_eq!(soon(conn.read_response()).await.unwrap().status, 202);
}

#[tokio::test]
async fn a_complete_stream_counts_its_bytes_and_the_answer_comes_last() {
    let (_api, mut conn, invoke) = delivered(config(), "ok").await;
    conn.write_raw(stream_head("ok").as_bytes()).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    conn.write_raw(&chunk(&[b'a'; 1000])).await;
    conn.write_raw(b"0\r\n\r\n").await;
    let mut got = 0;
    while let Some(c) = soon(stream.chunks.recv()).await {
        got += c.len();
    }
    assert_eq!(got, 1000);
    assert_eq!(
        soon(stream.end).await.unwrap(),
        StreamEnd::Complete { bytes: 1000 }
    );
    assert_eq!(soon(conn.read_response()).await.unwrap().status, 202);
}

/// A caller that does not read holds the runtime's writes back: far less than the body is
/// taken off the socket until the caller reads.
#[tokio::test]
async fn a_slow_caller_slows_the_runtime() {
    let mut config = config();
    config.stream_limits.bytes_per_second = None;
    let (_api, mut conn, invoke) = delivered(config, "bp").await;
    conn.write_raw(stream_head("bp").as_bytes()).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    const TOTAL: usize = 64 * 1024 * 1024;
    let piece = chunk(&vec![b'x'; 64 * 1024]);
    let writer = tokio::spawn(async move {
        for _ in 0..TOTAL / (64 * 1024) {
            conn.write_raw(&piece).await;
        }
        conn.write_raw(b"0\r\n\r\n").await;
        conn
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !writer.is_finished(),
        "64 MiB were accepted while nobody read"
    );
    let mut got = 0;
    while let Some(c) = soon(stream.chunks.recv()).await {
        got += c.len();
    }
    assert_eq!(got, TOTAL);
    let mut conn = soon(writer).await.unwrap();
    assert_eq!(soon(conn.read_response()).await.unwrap().status, 202);
}

/// A caller that went away does not stop the stream: the body is read to its end.
#[tokio::test]
async fn a_dropped_caller_lets_the_stream_finish() {
    let (_api, mut conn, invoke) = delivered(config(), "gone").await;
    conn.write_raw(stream_head("gone").as_bytes()).await;
    let stream = stream_of(soon(invoke).await.unwrap());
    drop(stream.chunks);
    for _ in 0..64 {
        conn.write_raw(&chunk(&[b'y'; 16 * 1024])).await;
    }
    conn.write_raw(b"0\r\n\r\n").await;
    assert_eq!(
        soon(stream.end).await.unwrap(),
        StreamEnd::Complete {
            bytes: 64 * 16 * 1024
        }
    );
    assert_eq!(soon(conn.read_response()).await.unwrap().status, 202);
}

#[tokio::test]
async fn past_the_size_limit_the_stream_ends_and_the_runtime_gets_413() {
    let mut config = config();
    config.stream_limits.max_bytes = 10_000;
    let (_api, mut conn, invoke) = delivered(config, "big").await;
    conn.write_raw(stream_head("big").as_bytes()).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    for _ in 0..4 {
        conn.write_raw(&chunk(&[b'z'; 4000])).await;
    }
    conn.write_raw(b"0\r\n\r\n").await;
    let mut got = 0;
    while let Some(c) = soon(stream.chunks.recv()).await {
        got += c.len();
    }
    assert!(got <= 10_000, "forwarded {got} bytes past the limit");
    assert_eq!(
        soon(stream.end).await.unwrap(),
        StreamEnd::TooLarge { max: 10_000 }
    );
    let res = soon(conn.read_response()).await.unwrap();
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["errorType"], "RequestEntityTooLarge");
}

#[tokio::test]
async fn past_the_burst_the_bandwidth_is_capped() {
    let mut config = config();
    config.stream_limits = StreamLimits {
        max_bytes: 10 * 1024 * 1024,
        burst_bytes: 256 * 1024,
        bytes_per_second: Some(1024 * 1024),
    };
    let (_api, mut conn, invoke) = delivered(config, "bw").await;
    conn.write_raw(stream_head("bw").as_bytes()).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        // 256 KiB burst + 768 KiB at 1 MiB/s: at least 0.75 s.
        for _ in 0..16 {
            conn.write_raw(&chunk(&[b'b'; 64 * 1024])).await;
        }
        conn.write_raw(b"0\r\n\r\n").await;
        conn
    });
    let mut got = 0;
    let mut first = None;
    while let Some(c) = soon(stream.chunks.recv()).await {
        first.get_or_insert_with(|| started.elapsed());
        got += c.len();
    }
    let elapsed = started.elapsed();
    assert_eq!(got, 1024 * 1024);
    assert!(
        first.unwrap() < Duration::from_millis(500),
        "the burst is not paced"
    );
    assert!(
        elapsed >= Duration::from_millis(700),
        "1 MiB past a 256 KiB burst at 1 MiB/s took only {elapsed:?}"
    );
    let mut conn = soon(writer).await.unwrap();
    assert_eq!(soon(conn.read_response()).await.unwrap().status, 202);
}

#[tokio::test]
async fn a_cut_stream_ends_truncated() {
    let (_api, mut conn, invoke) = delivered(config(), "cut").await;
    conn.write_raw(stream_head("cut").as_bytes()).await;
    conn.write_raw(&chunk(b"part")).await;
    let mut stream = stream_of(soon(invoke).await.unwrap());
    assert_eq!(soon(stream.chunks.recv()).await.unwrap(), "part");
    drop(conn);
    assert_eq!(soon(stream.chunks.recv()).await, None);
    assert_eq!(soon(stream.end).await.unwrap(), StreamEnd::Truncated);
}
