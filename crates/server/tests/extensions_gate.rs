//! End-to-end: the runtime of a function with external extensions starts only once they have
//! registered (the wrapper waits on a pipe Kindling holds), and neither the extensions nor the
//! runtime keep that pipe (or any other descriptor of Kindling's).

#![allow(clippy::unwrap_used)] // test helpers may panic

mod support;

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::{Server, b64, create_python, eventually, zip_of};

/// Python: the descriptors above 2 that are pipes (fd 1 and 2 are the output pipes).
const PIPES_ABOVE_2: &str = r#"
def pipes_above_2():
    import os
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if int(fd) > 2 and target.startswith("pipe:"):
            out.append(fd + " -> " + target)
    return out
"#;

/// Registers 600 ms after it starts, then reports its pipes and when it registered.
fn extension() -> String {
    format!(
        r#"#!/usr/bin/python3
import json, os, sys, time, urllib.request
{PIPES_ABOVE_2}
pipes = pipes_above_2()
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
time.sleep(0.6)
req = urllib.request.Request(api + "/register", method="POST",
    data=json.dumps({{"events": ["SHUTDOWN"]}}).encode(),
    headers={{"Lambda-Extension-Name": "gated"}})
resp = urllib.request.urlopen(req)
ext_id = resp.headers["Lambda-Extension-Identifier"]
print("[gated] registered-at %.3f pipes %s" % (time.time(), json.dumps(pipes)), flush=True)
while True:
    ev = json.load(urllib.request.urlopen(urllib.request.Request(api + "/event/next",
        headers={{"Lambda-Extension-Identifier": ext_id}})))
    if ev["eventType"] == "SHUTDOWN":
        sys.exit(0)
"#
    )
}

fn handler() -> String {
    format!(
        "import time\nSTARTED = time.time()\n{PIPES_ABOVE_2}\ndef handler(event, context):\n    return {{'started': STARTED, 'pipes': pipes_above_2()}}\n"
    )
}

#[test]
fn the_runtime_waits_for_extensions_on_a_pipe_it_does_not_keep() {
    let server = Server::start();
    let zip = zip_of(&[("extensions/gated", extension().as_bytes())]);
    let layer: Value = Client::new()
        .post(server.url("/2018-10-31/layers/gate/versions"))
        .json(&json!({ "Content": { "ZipFile": b64(&zip) } }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let arn = layer["LayerVersionArn"].as_str().unwrap();
    create_python(&server, "gated", &handler(), json!({ "Layers": [arn] }));

    let res = Client::new()
        .post(server.url("/2015-03-31/functions/gated/invocations"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-amz-function-error").is_none());
    let body: Value = res.json().unwrap();
    assert_eq!(body["pipes"], json!([]), "the runtime kept a pipe: {body}");

    // Log lines reach the file within a few milliseconds of the answer (a stream's lines wait
    // in its buffer, FLUSH_DELAY): `kindling logs` reads the file from another process.
    let logs = eventually(
        Duration::from_secs(5),
        "the extension's line in the log",
        || {
            let logs = server.cli(&["logs", "gated"]);
            logs.contains("[gated] registered-at ").then_some(logs)
        },
    );
    let line = logs
        .lines()
        .find_map(|l| l.split_once("[gated] registered-at ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the extension did not register:\n{logs}"));
    let (at, pipes) = line.split_once(" pipes ").unwrap();
    let registered: f64 = at.parse().unwrap();
    assert_eq!(pipes, "[]", "the extension kept a pipe");
    let started = body["started"].as_f64().unwrap();
    assert!(
        started >= registered - 0.01,
        "the runtime started {:.3} s before the extension registered",
        registered - started
    );
}
