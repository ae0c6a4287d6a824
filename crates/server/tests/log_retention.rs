//! End-to-end: log retention through the real binary — expired and over-budget streams are
//! deleted, a running environment's stream is not, and `kindling logs` keeps working.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{Server, create_python, eventually};

const DAY: Duration = Duration::from_secs(86_400);

/// Writes a closed log stream of `function` whose last line is `age` old.
fn seed_stream(data_dir: &Path, function: &str, id: &str, text: &str, age: Duration) -> PathBuf {
    let path = data_dir
        .join("logs")
        .join(function)
        .join(format!("2020/01/01/[$LATEST]{id}.log"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
    path
}

#[test]
fn streams_past_the_age_limit_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let old = seed_stream(
        dir.path(),
        "gone",
        "a",
        "2020-01-01T00:00:00.000Z\told line\n",
        10 * DAY,
    );
    let kept = seed_stream(
        dir.path(),
        "kept",
        "b",
        "2020-01-01T00:00:00.000Z\tkept line\n",
        6 * DAY,
    );
    // Default retention: 7 days.
    let server = Server::start_in(dir);
    eventually(
        Duration::from_secs(20),
        "the expired stream deleted",
        || (!old.exists()).then_some(()),
    );
    assert!(kept.exists());
    assert!(
        !server.data_dir.path().join("logs/gone").exists(),
        "emptied directories are removed"
    );
    // No stream left and no such function: `kindling logs` says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(["logs", "gone", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(server.cli(&["logs", "kept"]).contains("\tkept line"));
}

#[test]
fn the_size_limit_spares_a_running_environments_stream() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--log-max-size", "1", "--log-sweep-interval", "0.2"],
    );
    create_python(
        &server,
        "chatty",
        "def handler(event, context):\n    print('hello', event['n'])\n    return event['n']\n",
        json!({}),
    );
    let http = reqwest::blocking::Client::new();
    let invoke = |n: u32| {
        let res = http
            .post(server.url("/2015-03-31/functions/chatty/invocations"))
            .body(json!({ "n": n }).to_string())
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
    };
    invoke(1);
    // The environment stays warm (idle timeout 300 s): its stream is open for writing.
    let older = seed_stream(
        server.data_dir.path(),
        "chatty",
        "finished",
        "2020-01-01T00:00:00.000Z\tan older environment\n",
        Duration::from_secs(60),
    );
    eventually(Duration::from_secs(20), "the closed stream deleted", || {
        (!older.exists()).then_some(())
    });
    // Over the 1-byte budget, yet the running environment's stream stays and keeps growing.
    invoke(2);
    let logs = eventually(Duration::from_secs(10), "both invocations logged", || {
        let logs = server.cli(&["logs", "chatty"]);
        (logs.contains("hello 1") && logs.contains("hello 2")).then_some(logs)
    });
    assert_eq!(logs.matches("START RequestId:").count(), 2, "{logs}");
    assert!(!logs.contains("an older environment"));
}
