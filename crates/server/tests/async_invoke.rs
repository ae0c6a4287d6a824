//! End-to-end: asynchronous invocation through the real binary — retries with backoff, DLQ and
//! destination records, event age, and no event lost when the server is killed.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, create_python, create_queue, dead_letters, eventually, invoke_event};

const FAILING: &str = "def handler(event, context):\n    print('attempt', event['n'])\n    raise ValueError('boom ' + str(event['n']))\n";

fn put_config(server: &Server, name: &str, body: Value) {
    let res = reqwest::blocking::Client::new()
        .put(server.url(&format!("/2019-09-25/functions/{name}/event-invoke-config")))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().unwrap_or_default());
}

/// Start times of each attempt of a request id, from the function's log.
fn attempt_times(server: &Server, function: &str, request_id: &str) -> Vec<f64> {
    server
        .cli(&["logs", function])
        .lines()
        .filter(|l| l.contains(&format!("START RequestId: {request_id}")))
        .filter_map(|l| l.split('\t').next())
        .map(|ts| {
            // 2026-11-29T17:22:00.118Z -> seconds of the day (enough for gaps)
            let t = &ts[11..23];
            let h: f64 = t[0..2].parse().unwrap();
            let m: f64 = t[3..5].parse().unwrap();
            let s: f64 = t[6..].parse().unwrap();
            h * 3600.0 + m * 60.0 + s
        })
        .collect()
}

#[test]
fn retries_with_backoff_then_dead_letters_and_on_failure_record() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--async-retry-delays", "0.5,1.0"],
    );
    create_queue(&server, "dlq");
    create_queue(&server, "failures");
    create_python(
        &server,
        "fails",
        FAILING,
        json!({ "DeadLetterConfig": { "TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq" } }),
    );
    put_config(
        &server,
        "fails",
        json!({ "DestinationConfig": { "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:000000000000:failures" } } }),
    );
    let http = reqwest::blocking::Client::new();
    let id = invoke_event(&http, &server, "fails", &json!({ "n": 7 }));

    let records = eventually(Duration::from_secs(20), "the OnFailure record", || {
        let r = dead_letters(server.data_dir.path(), "failures");
        (!r.is_empty()).then_some(r)
    });
    let record = &records[0]["body"];
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:fails:$LATEST"
    );
    assert_eq!(record["requestPayload"], json!({ "n": 7 }));
    assert_eq!(record["responseContext"]["statusCode"], 200);
    assert_eq!(record["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorType"], "ValueError");
    assert_eq!(record["responsePayload"]["errorMessage"], "boom 7");

    let dlq = dead_letters(server.data_dir.path(), "dlq");
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0]["body"],
        json!({ "n": 7 }),
        "a DLQ message is the original event"
    );
    assert_eq!(dlq[0]["attributes"]["RequestID"], id.as_str());
    assert_eq!(dlq[0]["attributes"]["ErrorCode"], "200");
    assert!(
        dlq[0]["attributes"]["ErrorMessage"]
            .as_str()
            .unwrap()
            .contains("boom 7")
    );

    // Three attempts with the same request id, spaced by the configured delays.
    // (The last attempt's lines reach the file within a few milliseconds of its end.)
    let times = eventually(Duration::from_secs(5), "three attempts in the log", || {
        let times = attempt_times(&server, "fails", &id);
        (times.len() >= 3).then_some(times)
    });
    assert_eq!(times.len(), 3, "attempts: {times:?}");
    assert!(
        times[1] - times[0] >= 0.45,
        "first retry waited {:.3}s",
        times[1] - times[0]
    );
    assert!(
        times[2] - times[1] >= 0.95,
        "second retry waited {:.3}s",
        times[2] - times[1]
    );
    server.stop();
}

#[test]
fn maximum_retry_attempts_zero_and_on_success_and_redrive() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--async-retry-delays", "0.1"],
    );
    create_queue(&server, "q0");
    create_queue(&server, "done");
    create_python(&server, "once", FAILING, json!({}));
    put_config(
        &server,
        "once",
        json!({ "MaximumRetryAttempts": 0,
                "DestinationConfig": { "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:000000000000:q0" } } }),
    );
    let http = reqwest::blocking::Client::new();
    let id = invoke_event(&http, &server, "once", &json!({ "n": 1 }));
    let records = eventually(Duration::from_secs(10), "failure record", || {
        let r = dead_letters(server.data_dir.path(), "q0");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(
        records[0]["body"]["requestContext"]["approximateInvokeCount"],
        1
    );
    let times = eventually(Duration::from_secs(5), "the attempt in the log", || {
        let times = attempt_times(&server, "once", &id);
        (!times.is_empty()).then_some(times)
    });
    assert_eq!(times.len(), 1, "attempts: {times:?}");

    // Fix the function, redrive the stored message: it runs again and succeeds.
    create_python(
        &server,
        "ok",
        "def handler(event, context):\n    return {'double': event['n'] * 2}\n",
        json!({}),
    );
    put_config(
        &server,
        "ok",
        json!({ "DestinationConfig": { "OnSuccess": { "Destination": "arn:aws:sqs:us-east-1:000000000000:done" } } }),
    );
    invoke_event(&http, &server, "ok", &json!({ "n": 21 }));
    let done = eventually(Duration::from_secs(10), "success record", || {
        let r = dead_letters(server.data_dir.path(), "done");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(done[0]["body"]["requestContext"]["condition"], "Success");
    assert_eq!(done[0]["body"]["responsePayload"], json!({ "double": 42 }));
    assert!(
        done[0]["body"]["responseContext"]
            .get("functionError")
            .is_none()
    );

    let out = server.cli(&["dlq", "redrive", "--queue", "q0"]);
    assert!(out.contains("redrove 1"), "{out}");
    eventually(
        Duration::from_secs(10),
        "the redriven event to run and fail again",
        || {
            let r = dead_letters(server.data_dir.path(), "q0");
            (r.len() == 1).then_some(())
        },
    );
    server.stop();
}

#[test]
fn expired_events_go_to_failure_handling_with_event_age_exceeded() {
    let server = Server::start();
    create_queue(&server, "old");
    create_python(
        &server,
        "aged",
        "def handler(e, c):\n    return 1\n",
        json!({}),
    );
    put_config(
        &server,
        "aged",
        json!({ "MaximumEventAgeInSeconds": 60,
                "DestinationConfig": { "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:000000000000:old" } } }),
    );
    // An event accepted two minutes ago (as if it had waited out throttles) is past its age.
    let store =
        kindling_store::SqliteStore::open(&server.data_dir.path().join("state.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    kindling_store::Store::enqueue_events(
        &store,
        &[kindling_model::events::AsyncEvent {
            id: "old-event".into(),
            function_name: "aged".into(),
            qualifier: None,
            payload: b"{\"n\":1}".to_vec(),
            enqueued_ms: now - 120_000,
            attempts: 0,
            not_before_ms: now,
            last_result: None,
            trace_header: None,
        }],
    )
    .unwrap();
    let records = eventually(Duration::from_secs(10), "age record", || {
        let r = dead_letters(server.data_dir.path(), "old");
        (!r.is_empty()).then_some(r)
    });
    let ctx = &records[0]["body"]["requestContext"];
    assert_eq!(ctx["condition"], "EventAgeExceeded");
    assert_eq!(ctx["requestId"], "old-event");
    assert_eq!(ctx["approximateInvokeCount"], 0);
    assert!(records[0]["body"].get("responsePayload").is_none());
    assert!(
        !server.cli(&["logs", "aged"]).contains("START"),
        "an expired event never runs"
    );
    server.stop();
}

#[test]
fn no_event_is_lost_when_the_server_is_killed() {
    let server = Server::start();
    create_queue(&server, "ran");
    create_python(
        &server,
        "slow",
        "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n",
        json!({}),
    );
    put_config(
        &server,
        "slow",
        json!({ "DestinationConfig": { "OnSuccess": { "Destination": "arn:aws:sqs:us-east-1:000000000000:ran" } } }),
    );
    let total = 120;
    let accepted: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let server = &server;
                s.spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    (0..total / 4)
                        .map(|i| {
                            let n = (t * (total / 4) + i) as u64;
                            invoke_event(&http, server, "slow", &json!({ "n": n }));
                            n
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(accepted.len(), total);
    // Kill while events are still queued or running.
    let depth: u64 = server
        .cli(&["queue"])
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert!(
        depth > 0,
        "the queue drained before the crash; make the function slower"
    );
    let data_dir = server.crash();

    let started = Instant::now();
    let server = Server::start_in(data_dir);
    let ran: BTreeSet<u64> = eventually(
        Duration::from_secs(60),
        "every accepted event to run",
        || {
            let seen: BTreeSet<u64> = dead_letters(server.data_dir.path(), "ran")
                .iter()
                .filter_map(|r| r["body"]["requestPayload"]["n"].as_u64())
                .collect();
            (seen.len() == total).then_some(seen)
        },
    );
    let expected: BTreeSet<u64> = accepted.into_iter().collect();
    assert_eq!(ran, expected);
    eprintln!(
        "queue drained {:.1}s after restart",
        started.elapsed().as_secs_f64()
    );
    server.stop();
}
