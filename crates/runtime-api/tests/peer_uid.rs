//! `RuntimeApiConfig::allowed_peer_uid`: only sockets of the environment's user are served.
//!
//! The cross-user test (root only) runs this test binary again as a client under other uids:
//! `peer_helper` below does nothing unless `HELPER_ADDR` is set in its environment.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use bytes::Bytes;
use kindling_runtime_api::{Invocation, Outcome};
use kindling_test_support::cannot_run;
use support::*;

const HELPER_ADDR: &str = "KINDLING_RUNTIME_API_PEER_HELPER_ADDR";
const RESULT: &str = "PEER-RESULT";

/// Real, effective, saved and file-system uid of this process (`Uid:` of /proc/self/status).
fn own_uids() -> Vec<u32> {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid line")
        .split_whitespace()
        .map(|id| id.parse().expect("uid"))
        .collect()
}

/// The owner a socket created now gets: the file-system uid.
fn own_fsuid() -> u32 {
    own_uids()[3]
}

/// A connection the server closes unanswered: reading a response fails.
async fn is_refused(addr: SocketAddr) -> bool {
    let mut conn = Conn::connect(addr).await;
    if !conn
        .try_write_raw(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
    {
        return true;
    }
    soon(conn.read_response()).await.is_err()
}

#[tokio::test]
async fn sockets_of_the_allowed_uid_are_served_and_others_closed() {
    let me = own_fsuid();
    let mut served = config();
    served.allowed_peer_uid = Some(me);
    let api = start(served).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    let res = conn.get("/ping", &[]).await;
    assert_eq!((res.status, res.body.as_slice()), (200, &b"pong"[..]));
    // Keep-alive: the same connection goes on being served.
    assert_eq!(conn.get("/ping", &[]).await.status, 200);

    let mut refused = config();
    refused.allowed_peer_uid = Some(me.wrapping_add(1));
    let api = start(refused).await;
    assert!(is_refused(api.local_addr()).await);
    // A refused runtime's /next is never parked.
    let mut conn = Conn::connect(api.local_addr()).await;
    conn.send("GET", NEXT, &[], b"").await;
    assert!(soon(conn.read_response()).await.is_err());
    assert!(!api.runtime_polling());
    assert_eq!(api.init_result(), None);
}

#[tokio::test]
async fn without_a_check_anyone_is_served() {
    let api = start(config()).await;
    assert_eq!(config().allowed_peer_uid, None);
    let res = Conn::connect(api.local_addr())
        .await
        .get("/ping", &[])
        .await;
    assert_eq!(res.status, 200);
}

/// Runs `peer_helper` in a copy of this test binary as `uid`/`gid`; the test cannot run (and
/// fails, saying so) when that user cannot execute the binary (a test directory private to
/// root).
fn spawn_helper(addr: SocketAddr, uid: u32) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    let mut command = std::process::Command::new(exe);
    command
        .args(["--exact", "peer_helper", "--nocapture", "--test-threads=1"])
        .env(HELPER_ADDR, addr.to_string())
        .uid(uid)
        .gid(uid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    match tokio::process::Command::from(command).spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            cannot_run(&format!("uid {uid} cannot execute the test binary: {e}"))
        }
        Err(e) => panic!("spawning the helper: {e}"),
    }
}

/// What the helper reported (its `PEER-RESULT` lines).
async fn results(child: tokio::process::Child) -> Vec<String> {
    let out = soon(child.wait_with_output()).await.expect("helper output");
    assert!(out.status.success(), "helper failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // The harness may have printed "test peer_helper ... " on the same line.
        .filter_map(|l| l.split_once(RESULT).map(|(_, r)| r.trim().to_string()))
        .collect()
}

#[tokio::test]
async fn only_the_environments_user_gets_its_events() {
    if own_uids()[1] != 0 {
        cannot_run("running clients as other users needs root");
    }
    let (allowed, other) = (100_321, 100_322);
    let mut config = config();
    config.allowed_peer_uid = Some(allowed);
    let api = start(config).await;
    let addr = api.local_addr();

    // Another user's runtime: closed before it can park a /next.
    let intruder = spawn_helper(addr, other);
    assert_eq!(results(intruder).await, ["closed"]);
    assert!(!api.runtime_polling());
    // Kindling's own user (root) is no exception.
    assert!(is_refused(addr).await);

    // The environment's user: served end to end.
    let runtime = spawn_helper(addr, allowed);
    eventually(|| api.runtime_polling(), "the allowed runtime's /next").await;
    let outcome = soon(api.invoke(Invocation {
        request_id: "req-1".into(),
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        payload: Bytes::from_static(br#"{"secret":"for 100321 only"}"#),
        ..Invocation::default()
    }))
    .await;
    match outcome {
        Outcome::Response { body, .. } => assert_eq!(body, "answered by 100321"),
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(
        results(runtime).await,
        [r#"next 200 {"secret":"for 100321 only"}"#, "response 202"]
    );
}

/// Status, headers (names in lower case) and body of a response.
type Reply = (u16, Vec<(String, String)>, String);

/// The client side of `only_the_environments_user_gets_its_events`, run as another user in a
/// child process: `GET /next`, then answer the event. Prints `PEER-RESULT` lines. A no-op in a
/// normal test run.
#[test]
fn peer_helper() {
    let Ok(addr) = std::env::var(HELPER_ADDR) else {
        return;
    };
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut exchange = |request: String| -> Option<Reply> {
        stream.write_all(request.as_bytes()).ok()?;
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some((status, headers, String::from_utf8_lossy(&body).into_owned()))
    };
    let Some((status, headers, body)) = exchange(format!("GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n"))
    else {
        println!("{RESULT} closed");
        return;
    };
    println!("{RESULT} next {status} {body}");
    let id = headers
        .iter()
        .find(|(n, _)| n == "lambda-runtime-aws-request-id")
        .map(|(_, v)| v.clone())
        .expect("request id");
    let me = own_uids()[0];
    let answer = format!("answered by {me}");
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{answer}",
        response_path(&id),
        answer.len()
    );
    match exchange(request) {
        Some((status, _, _)) => println!("{RESULT} response {status}"),
        None => println!("{RESULT} closed"),
    }
}
