//! End-to-end: external extensions from a layer, through the real binary — registration before
//! the runtime starts, INVOKE and SHUTDOWN events, invocations completing only when extensions
//! are done, and extension init errors.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod support;

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::{Server, b64, create_python, eventually, zip_of};

/// An extension in Python (run by the host's /usr/bin/python3): registers after `DELAY_MS`,
/// logs each event, and takes `WORK_MS` after each INVOKE before asking for the next one.
fn extension(delay_ms: u64, work_ms: u64, init_error: bool) -> String {
    format!(
        r#"#!/usr/bin/python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
time.sleep({delay} / 1000)
req = urllib.request.Request(api + "/register", method="POST",
    data=json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}).encode(),
    headers={{"Lambda-Extension-Name": "probe"}})
resp = urllib.request.urlopen(req)
ext_id = resp.headers["Lambda-Extension-Identifier"]
print("[probe] registered for", json.load(resp)["functionName"], flush=True)
if {init_error}:
    urllib.request.urlopen(urllib.request.Request(api + "/init/error", method="POST",
        data=b'{{"errorMessage":"bad config","errorType":"Extension.ConfigInvalid"}}',
        headers={{"Lambda-Extension-Identifier": ext_id,
                 "Lambda-Extension-Function-Error-Type": "Extension.ConfigInvalid"}}))
    sys.exit(1)
while True:
    ev = json.load(urllib.request.urlopen(urllib.request.Request(api + "/event/next",
        headers={{"Lambda-Extension-Identifier": ext_id}})))
    print("[probe] event", ev["eventType"], ev.get("requestId", ev.get("shutdownReason")), flush=True)
    if ev["eventType"] == "SHUTDOWN":
        sys.exit(0)
    time.sleep({work} / 1000)
"#,
        delay = delay_ms,
        work = work_ms,
        init_error = if init_error { "True" } else { "False" },
    )
}

fn publish_layer(server: &Server, name: &str, script: &str) -> String {
    let zip = zip_of(&[("extensions/probe", script.as_bytes())]);
    let res: Value = Client::new()
        .post(server.url(&format!("/2018-10-31/layers/{name}/versions")))
        .json(&json!({ "Content": { "ZipFile": b64(&zip) } }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    res["LayerVersionArn"].as_str().unwrap().to_string()
}

fn invoke(server: &Server, name: &str) -> (u16, Value, String, Duration) {
    let started = Instant::now();
    let res = Client::new()
        .post(server.url(&format!("/2015-03-31/functions/{name}/invocations")))
        .header("X-Amz-Log-Type", "Tail")
        .body("{}")
        .send()
        .unwrap();
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    let id = res.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_string();
    let error = res.headers().get("x-amz-function-error").is_some();
    let body: Value = res.json().unwrap();
    assert!(!error || body.get("errorType").is_some());
    (status, body, id, elapsed)
}

const HANDLER: &str = "def handler(event, context):\n    return {'ok': True}\n";

#[test]
fn extensions_register_first_get_invoke_and_shutdown_events() {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--idle-timeout", "1"]);
    let layer = publish_layer(&server, "probe", &extension(300, 400, false));
    create_python(&server, "withext", HANDLER, json!({ "Layers": [layer] }));

    let (status, body, first, _) = invoke(&server, "withext");
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "ok": true }));
    // Log lines reach the file within a few milliseconds of the answer (a stream's lines wait
    // in its buffer, FLUSH_DELAY): `kindling logs` reads the file from another process.
    let logs = eventually(
        Duration::from_secs(5),
        "the first REPORT in the log",
        || {
            let logs = server.cli(&["logs", "withext"]);
            logs.contains("Init Duration: ").then_some(logs)
        },
    );
    assert!(logs.contains("[probe] registered for withext"), "{logs}");
    // The runtime started only once the extension registered (it waited 300 ms to do so).
    let init_ms: f64 = logs
        .split("Init Duration: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        init_ms >= 280.0,
        "Init Duration {init_ms} ms should include the extension's start"
    );

    // The extension works 400 ms after each INVOKE: the next invocation waits for it.
    let (_, _, second, waited) = invoke(&server, "withext");
    assert!(
        waited >= Duration::from_millis(250),
        "second invoke took {waited:?}"
    );
    let logs = eventually(Duration::from_secs(5), "INVOKE events in the log", || {
        let logs = server.cli(&["logs", "withext"]);
        (logs.contains(&format!("[probe] event INVOKE {first}"))
            && logs.contains(&format!("[probe] event INVOKE {second}")))
        .then_some(logs)
    });
    assert!(!logs.contains("SHUTDOWN"));
    // Idle shutdown sends SHUTDOWN (reason spindown) and waits for the extension to finish.
    eventually(
        Duration::from_secs(10),
        "SHUTDOWN after the idle timeout",
        || {
            server
                .cli(&["logs", "withext"])
                .contains("[probe] event SHUTDOWN spindown")
                .then_some(())
        },
    );
    server.stop();
}

#[test]
fn an_extension_init_error_fails_the_invocation() {
    let server = Server::start();
    let layer = publish_layer(&server, "bad-probe", &extension(0, 0, true));
    create_python(&server, "badext", HANDLER, json!({ "Layers": [layer] }));
    let (status, body, _, _) = invoke(&server, "badext");
    assert_eq!(status, 200);
    assert_eq!(body["errorType"], "Extension.ConfigInvalid", "{body}");
    server.stop();
}
