//! The `kindling` command line as a newcomer meets it: the default (relative) data dir, `logs`
//! for unknown functions and into closed pipes, plain output when not at a terminal.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Server, eventually};

fn kindling() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kindling"))
}

#[test]
fn relative_data_dir_runs_functions() {
    // `kindling serve` with the default `--data-dir .kindling`, started from a fresh directory.
    let cwd = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with_cwd(cwd.path(), &["--data-dir", ".kindling"]);
    support::create_python(
        &server,
        "rel",
        "def handler(event, context):\n    return {'ok': True}\n",
        serde_json::json!({}),
    );
    let res = reqwest::blocking::Client::new()
        .post(server.url("/2015-03-31/functions/rel/invocations"))
        .body("{}")
        .send()
        .expect("invoke");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("x-amz-function-error").is_none(),
        "function error: {}",
        res.text().unwrap_or_default()
    );
    assert!(cwd.path().join(".kindling/state.db").is_file());
}

#[test]
fn logs_of_an_unknown_function_fail() {
    let server = Server::start();
    let out = kindling()
        .args(["logs", "no-such-function", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .expect("run kindling logs");
    assert!(!out.status.success(), "exit status {}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("function not found: no-such-function"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in non-terminal output: {err:?}"
    );
}

#[test]
fn logs_into_a_closed_pipe_end_quietly() {
    let server = Server::start();
    support::create_python(
        &server,
        "chatty",
        "def handler(event, context):\n    for i in range(2000):\n        print('line', i)\n    return 1\n",
        serde_json::json!({}),
    );
    let http = reqwest::blocking::Client::new();
    for _ in 0..3 {
        let res = http
            .post(server.url("/2015-03-31/functions/chatty/invocations"))
            .body("{}")
            .send()
            .expect("invoke");
        assert_eq!(res.status(), 200);
    }
    eventually(Duration::from_secs(5), "log lines on disk", || {
        (server.cli(&["logs", "chatty"]).len() > 64 * 1024).then_some(())
    });
    // `kindling logs chatty | head -1`: the reader goes away after one line.
    let mut child = kindling()
        .args(["logs", "chatty", "--data-dir"])
        .arg(server.data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kindling logs");
    let mut first = [0u8; 16];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    // Dropping the read end closes the pipe.
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {err}", out.status);
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn queue_header_columns_are_separate() {
    let server = Server::start();
    let out = server.cli(&["queue"]);
    let header = out.lines().next().expect("a header line");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["FUNCTION", "DEPTH", "IN_FLIGHT", "OLDEST_AGE_S"]
    );
}

/// Shared mode: the cluster's membership (`/_kindling/nodes`) is for signed callers only, and
/// `kindling nodes` signs with the environment's key.
#[test]
fn nodes_needs_a_signature_in_shared_mode() {
    let keys = tempfile::tempdir().expect("dir");
    let creds = keys.path().join("credentials");
    std::fs::write(&creds, "AKIDNODESTEST0000001 nodes-test-secret\n").expect("credentials");
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            "--isolation",
            "process",
            "--shared",
            "--credentials",
            creds.to_str().expect("utf-8"),
        ],
    );
    let res = reqwest::blocking::get(server.url("/_kindling/nodes")).expect("GET");
    assert_eq!(res.status(), 403);
    let body = res.text().unwrap_or_default();
    assert!(body.contains("MissingAuthenticationToken"), "{body}");
    // Health checks stay open for load balancers.
    let res = reqwest::blocking::get(server.url("/_kindling/health/live")).expect("GET");
    assert_eq!(res.status(), 200);

    let nodes = |key: &str, secret: &str| {
        kindling()
            .args(["nodes", "--endpoint", &server.base])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .expect("run kindling nodes")
    };
    let out = nodes("AKIDNODESTEST0000001", "nodes-test-secret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("cluster: "), "{table}");
    let out = nodes("AKIDNODESTEST0000001", "wrong");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403"), "{err}");
}
