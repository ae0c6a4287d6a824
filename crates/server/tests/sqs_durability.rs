//! End-to-end: SQS sends are acknowledged only once on disk, and deletes stay deleted. 10,000
//! messages are sent concurrently while another client receives and deletes; the server is
//! SIGKILLed mid-way and restarted: every acknowledged message is there exactly once (unless
//! a deletion of it was sent: one the crash cut off may have been committed unanswered), and
//! no acknowledged deletion comes back.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;

fn call(
    http: &reqwest::blocking::Client,
    server: &Server,
    op: &str,
    body: &Value,
) -> Option<Value> {
    let res = http
        .post(server.url("/"))
        .header("x-amz-target", format!("AmazonSQS.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().ok()
}

const TOTAL: usize = 10_000;
const SENDERS: usize = 32;

#[test]
fn acknowledged_sends_survive_sigkill_exactly_once_and_deletes_stay_deleted() {
    let server = Server::start();
    let http = reqwest::blocking::Client::new();
    let url = call(
        &http,
        &server,
        "CreateQueue",
        &json!({"QueueName": "durable"}),
    )
    .unwrap()["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();

    let acked = Mutex::new(BTreeSet::new());
    let deleted = Mutex::new(BTreeSet::new());
    // Deletes sent: one cut off by the crash may have been committed without an answer.
    let delete_sent = Mutex::new(BTreeSet::new());
    let acked_count = AtomicUsize::new(0);
    let dead = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    std::thread::scope(|s| {
        for _ in 0..SENDERS {
            s.spawn(|| {
                let http = reqwest::blocking::Client::new();
                while !dead.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= TOTAL {
                        break;
                    }
                    let body = json!({"QueueUrl": url, "MessageBody": n.to_string()});
                    if call(&http, &server, "SendMessage", &body).is_some() {
                        acked.lock().unwrap().insert(n);
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // One consumer deletes what it receives, while sends go on.
        s.spawn(|| {
            let http = reqwest::blocking::Client::new();
            while !dead.load(Ordering::Relaxed) {
                let got = call(
                    &http,
                    &server,
                    "ReceiveMessage",
                    &json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 1}),
                );
                let Some(messages) = got.and_then(|v| v["Messages"].as_array().cloned()) else {
                    continue;
                };
                let entries: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
                    .collect();
                for m in &messages {
                    let n: usize = m["Body"].as_str().unwrap().parse().unwrap();
                    delete_sent.lock().unwrap().insert(n);
                }
                if let Some(r) = call(
                    &http,
                    &server,
                    "DeleteMessageBatch",
                    &json!({"QueueUrl": url, "Entries": entries}),
                ) {
                    for ok in r["Successful"].as_array().unwrap() {
                        let i: usize = ok["Id"].as_str().unwrap().parse().unwrap();
                        let n: usize = messages[i]["Body"].as_str().unwrap().parse().unwrap();
                        deleted.lock().unwrap().insert(n);
                    }
                }
            }
        });
        // Kill the server (SIGKILL) half-way through.
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked_count.load(Ordering::Relaxed) < TOTAL / 2 {
            assert!(Instant::now() < deadline, "sends too slow");
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        dead.store(true, Ordering::Relaxed);
    });
    let crashed_dir = server.crash();
    let acked = acked.into_inner().unwrap();
    let deleted = deleted.into_inner().unwrap();
    let delete_sent = delete_sent.into_inner().unwrap();
    assert!(
        acked.len() >= TOTAL / 2 && acked.len() < TOTAL,
        "{} acked",
        acked.len()
    );
    assert!(
        !deleted.is_empty(),
        "the consumer deleted nothing before the crash"
    );

    let server = Server::start_in(crashed_dir);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while quiet_since.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < deadline, "draining took too long");
        let got = call(
            &http,
            &server,
            "ReceiveMessage",
            &json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 300,
                    "WaitTimeSeconds": 1}),
        )
        .unwrap();
        let messages = got["Messages"].as_array().cloned().unwrap_or_default();
        if !messages.is_empty() {
            quiet_since = Instant::now();
        }
        for m in &messages {
            let n: usize = m["Body"].as_str().unwrap().parse().unwrap();
            *seen.entry(n).or_default() += 1;
            call(
                &http,
                &server,
                "DeleteMessage",
                &json!({"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]}),
            )
            .unwrap();
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    let back: Vec<_> = seen.keys().filter(|n| deleted.contains(n)).collect();
    assert!(back.is_empty(), "deleted messages came back: {back:?}");
    let lost: Vec<_> = acked
        .iter()
        .filter(|n| !delete_sent.contains(n) && !seen.contains_key(n))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged messages lost: {} of them",
        lost.len()
    );
    eprintln!(
        "acknowledged {}, deleted before the crash {}, recovered {}",
        acked.len(),
        deleted.len(),
        seen.len()
    );
    server.stop();
}
