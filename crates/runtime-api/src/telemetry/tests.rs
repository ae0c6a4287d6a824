//! The hub and its delivery against a real HTTP receiver.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::deliver::parse_uri;
use super::*;
use crate::types::TelemetryApi;

fn sub(uri: String, types: &[&str]) -> TelemetrySubscription {
    TelemetrySubscription {
        extension: "ext".into(),
        api: TelemetryApi::Telemetry,
        protocol: "HTTP".into(),
        uri,
        types: types.iter().map(|t| t.to_string()).collect(),
        raw: bytes::Bytes::new(),
    }
}

/// A subscriber that answers 200 and hands every body over.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Vec<Value>>) {
    let (port, mut bodies) = kindling_test_support::body_sink().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(body) = bodies.recv().await {
            tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
        }
    });
    (format!("http://sandbox.localdomain:{port}/telemetry"), rx)
}

/// A hub past Init with one subscriber (reached on the host's loopback), buffering as given.
fn subscribed(
    subscription: &TelemetrySubscription,
    max_items: usize,
    max_bytes: usize,
    timeout: Duration,
) -> Telemetry {
    let hub = Telemetry::default();
    let buffering = Buffering {
        max_items,
        max_bytes,
        timeout,
    };
    hub.subscribe(subscription, buffering, TelemetryNetwork::Host);
    hub.end_init();
    hub
}

/// The next batch the receiver got, within 10 s (`what` says what was expected).
async fn next_batch(rx: &mut mpsc::UnboundedReceiver<Vec<Value>>, what: &str) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect(what)
        .expect("the receiver is alive")
}

#[tokio::test]
async fn delivers_backlog_and_later_items_in_batches_by_type() {
    let hub = Telemetry::default();
    hub.platform(
        now_ms(),
        Platform::InitStart {
            initialization_type: "on-demand",
            runtime_version: "provided".into(),
            function_name: "f".into(),
            function_version: "$LATEST".into(),
        },
    );
    let (uri, mut rx) = receiver().await;
    let buffering = Buffering {
        max_items: 1000,
        max_bytes: 262_144,
        timeout: Duration::from_millis(50),
    };
    hub.subscribe(&sub(uri, &["platform"]), buffering, TelemetryNetwork::Host);
    hub.end_init();
    assert!(!hub.wants(Kind::Function));
    hub.function_line(now_ms(), "not subscribed".into());
    hub.platform(
        now_ms(),
        Platform::Start {
            request_id: "r1".into(),
            version: "$LATEST".into(),
        },
    );
    let mut types = Vec::new();
    while types.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        types.extend(
            batch
                .iter()
                .map(|i| i["type"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(
        types,
        [
            "platform.initStart",
            "platform.telemetrySubscription",
            "platform.start"
        ]
    );
}

#[tokio::test]
async fn a_batch_goes_once_max_items_are_queued_before_its_timeout() {
    let (uri, mut rx) = receiver().await;
    let hub = subscribed(
        &sub(uri, &["function"]),
        1000,
        1_048_576,
        Duration::from_secs(30),
    );
    // 2 000 fit the queue (2 x maxItems): none is dropped.
    for i in 0..2000 {
        hub.function_line(now_ms(), format!("line \"{i}\""));
    }
    let mut records = Vec::new();
    while records.len() < 2000 {
        let batch = next_batch(&mut rx, "a batch due by maxItems").await;
        assert!(batch.len() <= 1000);
        for item in &batch {
            assert_eq!(item["type"], "function");
            assert!(item["time"].as_str().unwrap().ends_with('Z'));
        }
        records.extend(
            batch
                .iter()
                .map(|i| i["record"].as_str().unwrap().to_string()),
        );
    }
    let expected: Vec<String> = (0..2000).map(|i| format!("line \"{i}\"")).collect();
    assert_eq!(records, expected);
}

#[tokio::test]
async fn a_dead_subscriber_never_blocks_and_drops_are_counted() {
    let hub = Telemetry::default();
    // Nothing listens there: deliveries fail, emitting never waits.
    hub.subscribe(
        &sub("http://127.0.0.1:9/x".into(), &["platform", "function"]),
        Buffering::default(),
        TelemetryNetwork::Host,
    );
    hub.end_init();
    let started = std::time::Instant::now();
    for i in 0..50_000 {
        hub.function_line(now_ms(), format!("line {i}"));
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let inner = hub.lock();
    assert!(
        inner.subscribers[0]
            .queue
            .dropped
            .records
            .load(Ordering::Relaxed)
            > 0
    );
}

#[test]
fn buffering_bounds() {
    assert_eq!(Buffering::of_body(b"{}").unwrap(), Buffering::default());
    let b =
        Buffering::of_body(br#"{"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25}}"#)
            .unwrap();
    assert_eq!(b.timeout, Duration::from_millis(25));
    assert!(Buffering::of_body(br#"{"buffering":{"timeoutMs":5}}"#).is_err());
    assert!(now_iso().ends_with('Z'));
    assert_eq!(
        parse_uri("http://sandbox.localdomain:8080/x"),
        Some(("127.0.0.1".into(), 8080, "/x".into()))
    );
    assert_eq!(
        parse_uri("localhost:4243"),
        Some(("127.0.0.1".into(), 4243, "/".into()))
    );
    // Host names are case-insensitive (the scheme too).
    for upper in [
        "http://SANDBOX.LOCALDOMAIN:8080/x",
        "http://Localhost:8080/x",
        "HTTP://Sandbox:8080/x",
    ] {
        assert_eq!(
            parse_uri(upper),
            Some(("127.0.0.1".into(), 8080, "/x".into())),
            "{upper}"
        );
    }
    // Only the environment's loopback: Kindling would connect anywhere else for the function.
    for foreign in [
        "http://127.0.0.2:8080/x",
        "http://0x7f000001:8080/",
        "http://10.0.0.1:80/",
        "http://169.254.169.254:80/latest",
        "http://example.com:80/",
        // Every delivery dials 127.0.0.1 (inside the environment's namespace, or on the
        // host's loopback as its user): a subscriber on [::1] would never be reached.
        "http://[::1]:8080/",
        "http://[0:0:0:0:0:0:0:1]:8080/",
        "http://SANDBOX.LOCALDOMAIN.evil:8080/",
        "http://sandbox.localdomain.evil:8080/",
    ] {
        assert_eq!(parse_uri(foreign), None, "{foreign}");
    }
}

#[tokio::test]
async fn an_environment_of_its_own_network_is_reached_only_through_its_dial() {
    let hub = Telemetry::default();
    let (uri, mut rx) = receiver().await;
    let real_port: u16 = uri
        .trim_start_matches("http://sandbox.localdomain:")
        .trim_end_matches("/telemetry")
        .parse()
        .unwrap();
    // The subscription names a port of the environment's loopback where nothing of the host's
    // listens; the dial (standing in for a connection made inside the environment's network
    // namespace) is what reaches the subscriber.
    let dialed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&dialed);
    let dial: kindling_otel::post::Dial = Arc::new(move |host: &str, port: u16| {
        seen.lock().unwrap().push((host.to_string(), port));
        Box::pin(tokio::net::TcpStream::connect(("127.0.0.1", real_port)))
    });
    let buffering = Buffering {
        max_items: 1000,
        max_bytes: 262_144,
        timeout: Duration::from_millis(25),
    };
    hub.subscribe(
        &sub("http://sandbox.localdomain:9/t".into(), &["function"]),
        buffering,
        TelemetryNetwork::Dialed(dial),
    );
    hub.end_init();
    hub.function_line(now_ms(), "through the namespace".into());
    let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery within 10 s")
        .unwrap();
    let records: Vec<_> = batch
        .iter()
        .filter(|i| i["type"] == "function")
        .map(|i| i["record"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(records, ["through the namespace"]);
    assert_eq!(*dialed.lock().unwrap(), [("127.0.0.1".to_string(), 9)]);
}

/// Emits `n` function lines of `len` bytes each (`"<i>:xxx…"`) without yielding: on the test's
/// single-threaded runtime, the delivery task sees them only once the test awaits.
fn lines(hub: &Telemetry, n: usize, len: usize) {
    for i in 0..n {
        let mut line = format!("{i}:");
        line.extend(std::iter::repeat_n('x', len.saturating_sub(line.len())));
        hub.function_line(now_ms(), line);
    }
}

#[tokio::test]
async fn a_batch_goes_once_max_bytes_are_reached_and_stays_within_them() {
    let (uri, mut rx) = receiver().await;
    let hub = subscribed(
        &sub(uri, &["function"]),
        10_000,
        262_144,
        Duration::from_secs(30),
    );
    // ~1.1 kB per item: two batches are due by their bytes long before the timeout.
    lines(&hub, 600, 1000);
    let mut records = Vec::new();
    for _ in 0..2 {
        let batch = next_batch(&mut rx, "a batch due by maxBytes goes before the timeout").await;
        let size = serde_json::to_vec(&batch).unwrap().len();
        assert!(size <= 262_144 + 1200, "{size} bytes");
        assert!(size >= 262_144 - 1200, "{size} bytes");
        records.extend(
            batch
                .iter()
                .map(|i| i["record"].as_str().unwrap().to_string()),
        );
    }
    for (i, r) in records.iter().enumerate() {
        assert!(r.starts_with(&format!("{i}:")), "{i}: {}", &r[..10]);
    }
}

#[tokio::test]
async fn items_over_the_queues_bound_are_reported_as_dropped() {
    let (uri, mut rx) = receiver().await;
    let hub = subscribed(
        &sub(uri, &["function"]),
        1000,
        1_048_576,
        Duration::from_millis(25),
    );
    // The queue holds 2 x maxItems: 500 of these are dropped before delivery starts.
    lines(&hub, 2500, 20);
    let (mut function, mut dropped) = (Vec::new(), Vec::new());
    while function.len() < 2000 || dropped.is_empty() {
        let batch = next_batch(&mut rx, "every queued item and the drop notice arrive").await;
        assert!(batch.len() <= 1001);
        for item in batch {
            match item["type"].as_str().unwrap() {
                "function" => function.push(item["record"].as_str().unwrap().to_string()),
                "platform.logsDropped" => dropped.push(item["record"].clone()),
                other => panic!("{other}"),
            }
        }
    }
    assert!(
        function
            .iter()
            .enumerate()
            .all(|(i, r)| r.starts_with(&format!("{i}:")))
    );
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["droppedRecords"], 500);
    assert!(dropped[0]["droppedBytes"].as_u64().unwrap() >= 500 * 20);
}

#[tokio::test]
async fn tcp_subscribers_get_json_lines_on_one_connection() {
    use tokio::io::AsyncBufReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut subscription = sub(
        format!("sandbox.localdomain:{port}"),
        &["platform", "function"],
    );
    subscription.protocol = "TCP".into();
    let hub = subscribed(&subscription, 1000, 262_144, Duration::from_millis(25));
    hub.function_line(now_ms(), "one \"quoted\"\tline".into());
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut reader = tokio::io::BufReader::new(stream).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), reader.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next().await["type"], "platform.telemetrySubscription");
    assert_eq!(next().await["record"], "one \"quoted\"\tline");
    // A later batch comes on the same connection.
    hub.function_line(now_ms(), "two".into());
    assert_eq!(next().await["record"], "two");
}
