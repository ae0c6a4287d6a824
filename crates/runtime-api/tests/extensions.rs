//! The Extensions API over real TCP: registration, init gating, INVOKE and SHUTDOWN delivery,
//! error posts, and the stored Telemetry/Logs subscriptions.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_runtime_api::{InitResult, Invocation, Outcome, ShutdownReason, TelemetryApi};
use support::*;

fn invocation(id: &str) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:my-function".into(),
        trace_id: Some("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1".into()),
        payload: Bytes::from_static(b"{}"),
        ..Invocation::default()
    }
}

#[tokio::test]
async fn register_answers_with_identifier_and_function_info() {
    let api = start(config()).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    let res = conn
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "my-ext")],
            br#"{"events":["INVOKE","SHUTDOWN"]}"#,
        )
        .await;
    assert_eq!(res.status, 200);
    let id = res
        .headers
        .iter()
        .find(|(n, _)| n == "Lambda-Extension-Identifier");
    assert!(
        id.is_some_and(|(_, v)| uuid::Uuid::parse_str(v).is_ok()),
        "{:?}",
        res.headers
    );
    assert_eq!(
        res.json(),
        serde_json::json!({"functionName": "my-function", "functionVersion": "$LATEST", "handler": "index.handler"})
    );

    let res = conn
        .post(
            REGISTER,
            &[
                ("Lambda-Extension-Name", "with-account"),
                ("Lambda-Extension-Accept-Feature", "accountId"),
            ],
            br#"{"events":[]}"#,
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["accountId"], "123456789012");
    assert_eq!(
        api.registered_extensions(),
        vec!["my-ext".to_owned(), "with-account".to_owned()]
    );
}

#[tokio::test]
async fn register_refusals() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let mut conn = Conn::connect(addr).await;
    let error_type = |res: &HttpResponse| {
        (
            res.status,
            res.json()["errorType"].as_str().unwrap().to_owned(),
        )
    };

    let res = conn.post(REGISTER, &[], br#"{"events":["INVOKE"]}"#).await;
    assert_eq!(
        error_type(&res),
        (403, "Extension.InvalidExtensionName".into())
    );
    let res = conn
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "x")],
            br#"{"events":["BOGUS"]}"#,
        )
        .await;
    assert_eq!(error_type(&res), (403, "Extension.InvalidEventType".into()));
    let res = conn
        .post(REGISTER, &[("Lambda-Extension-Name", "x")], b"{not json")
        .await;
    assert_eq!(error_type(&res), (403, "InvalidRequestFormat".into()));
    let res = conn
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "x")],
            br#"{"events":[],"configurationKeys":["a"]}"#,
        )
        .await;
    assert_eq!(error_type(&res), (403, "InvalidRequestFormat".into()));

    for i in 0..10 {
        register(addr, &format!("ext-{i}"), &["INVOKE"]).await;
    }
    let res = conn
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "eleventh")],
            br#"{"events":[]}"#,
        )
        .await;
    assert_eq!(
        error_type(&res),
        (403, "Extension.TooManyExtensions".into())
    );
    let res = conn
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "ext-0")],
            br#"{"events":[]}"#,
        )
        .await;
    assert_eq!(res.status, 403);
}

#[tokio::test]
async fn init_waits_for_every_extension_then_registration_closes() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let a = register(addr, "a", &["INVOKE", "SHUTDOWN"]).await;
    let b = register(addr, "b", &["SHUTDOWN"]).await;
    let _runtime = spawn_next(addr);
    let mut init = Box::pin(api.wait_init());
    assert!(
        stays_pending(&mut init).await,
        "init done before the extensions called next"
    );
    let _a = spawn_ext_next(addr, &a);
    assert!(
        stays_pending(&mut init).await,
        "init done before extension b called next"
    );
    let _b = spawn_ext_next(addr, &b);
    assert_eq!(soon(init).await, InitResult::Ready);

    let res = Conn::connect(addr)
        .await
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", "late")],
            br#"{"events":["INVOKE"]}"#,
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["errorType"], "Extension.RegistrationClosed");
}

#[tokio::test]
async fn event_next_needs_a_known_identifier() {
    let api = start(config()).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    let res = conn.get(EXT_NEXT, &[]).await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.json()["errorType"],
        "Extension.MissingExtensionIdentifier"
    );
    let res = conn
        .get(
            EXT_NEXT,
            &[(
                "Lambda-Extension-Identifier",
                "00000000-0000-0000-0000-000000000000",
            )],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.json()["errorType"],
        "Extension.InvalidExtensionIdentifier"
    );
}

#[tokio::test]
async fn invoke_and_shutdown_reach_extensions_in_order() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "watcher", &["INVOKE", "SHUTDOWN"]).await;
    let only_shutdown = register(addr, "closer", &["SHUTDOWN"]).await;
    let ext_next = spawn_ext_next(addr, &ext);
    let mut closer_next = spawn_ext_next(addr, &only_shutdown);
    let runtime_next = spawn_next(addr);
    assert_eq!(soon(api.wait_init()).await, InitResult::Ready);

    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("req-1")).await }
    });
    // The extension gets INVOKE with the invocation's details.
    let (mut ext_conn, event) = soon(ext_next).await.unwrap();
    assert_eq!(event.status, 200);
    assert!(
        event
            .headers
            .iter()
            .any(|(n, _)| n == "Lambda-Extension-Event-Identifier")
    );
    assert_eq!(event.header("content-type"), Some("application/json"));
    assert_eq!(
        event.json(),
        serde_json::json!({
            "eventType": "INVOKE",
            "deadlineMs": 1_900_000_000_000_u64,
            "requestId": "req-1",
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-function",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"}
        })
    );
    // ... and an extension registered only for SHUTDOWN gets nothing.
    assert!(stays_pending(&mut closer_next).await);

    // The caller gets the response without waiting for the extension.
    let (mut rt_conn, _) = soon(runtime_next).await.unwrap();
    assert_eq!(
        rt_conn
            .post(&response_path("req-1"), &[], b"ok")
            .await
            .status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));

    // Reuse waits for the runtime and the INVOKE extension to be back in next.
    let mut complete = Box::pin(api.wait_invocation_complete());
    rt_conn.send("GET", NEXT, &[], b"").await;
    assert!(
        stays_pending(&mut complete).await,
        "complete before the extension called next"
    );

    // A second invocation while the extension is still busy is queued for it, in order.
    let second = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("req-2")).await }
    });
    let res = soon(rt_conn.read_response()).await.unwrap();
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("req-2"));
    assert_eq!(
        rt_conn
            .post(&response_path("req-2"), &[], b"ok")
            .await
            .status,
        202
    );
    soon(second).await.unwrap();
    rt_conn.send("GET", NEXT, &[], b"").await;

    let ext_events = ext_conn
        .get(EXT_NEXT, &[("Lambda-Extension-Identifier", &ext)])
        .await;
    assert_eq!(ext_events.json()["requestId"], "req-2");
    assert!(
        stays_pending(&mut complete).await,
        "complete before the extension took req-2 and called next"
    );

    // Shutdown: SHUTDOWN is delivered; shutdown() returns once both extensions call next again.
    ext_conn
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &ext)],
            b"",
        )
        .await;
    soon(complete).await;
    let shutdown = tokio::spawn({
        let api = api.clone();
        async move {
            api.shutdown(ShutdownReason::Spindown, Duration::from_secs(30))
                .await
        }
    });
    let event = soon(ext_conn.read_response()).await.unwrap();
    let json = event.json();
    assert_eq!(json["eventType"], "SHUTDOWN");
    assert_eq!(json["shutdownReason"], "spindown");
    assert!(json["deadlineMs"].as_u64().unwrap() > 1_700_000_000_000);
    let (mut closer_conn, closer_event) = soon(closer_next).await.unwrap();
    assert_eq!(closer_event.json()["eventType"], "SHUTDOWN");

    let mut shutdown = shutdown;
    ext_conn
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &ext)],
            b"",
        )
        .await;
    assert!(
        stays_pending(&mut shutdown).await,
        "shutdown done before `closer` called next"
    );
    closer_conn
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &only_shutdown)],
            b"",
        )
        .await;
    soon(shutdown).await.unwrap();
}

#[tokio::test]
async fn queued_invoke_and_shutdown_are_delivered_in_order() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "slow", &["INVOKE", "SHUTDOWN"]).await;
    let mut ext_conn = Conn::connect(addr).await;
    ext_conn
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &ext)],
            b"",
        )
        .await;
    let runtime_next = spawn_next(addr);
    soon(api.wait_init()).await;
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("one")).await }
    });
    let (mut rt, _) = soon(runtime_next).await.unwrap();
    rt.post(&response_path("one"), &[], b"x").await;
    soon(invoke).await.unwrap();
    // The extension is busy with INVOKE "one" when SHUTDOWN is sent: it is queued behind it.
    let first = soon(ext_conn.read_response()).await.unwrap();
    assert_eq!(first.json()["eventType"], "INVOKE");
    let shutdown = tokio::spawn({
        let api = api.clone();
        async move {
            api.shutdown(ShutdownReason::Timeout, Duration::from_secs(30))
                .await
        }
    });
    let second = ext_conn
        .get(EXT_NEXT, &[("Lambda-Extension-Identifier", &ext)])
        .await;
    assert_eq!(second.json()["eventType"], "SHUTDOWN");
    assert_eq!(second.json()["shutdownReason"], "timeout");
    ext_conn
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &ext)],
            b"",
        )
        .await;
    soon(shutdown).await.unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_at_the_deadline() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "stubborn", &["SHUTDOWN"]).await;
    let ext_next = spawn_ext_next(addr, &ext);
    let _rt = spawn_next(addr);
    soon(api.wait_init()).await;
    let started = Instant::now();
    let deadline = Duration::from_millis(200);
    soon(api.shutdown(ShutdownReason::Failure, deadline)).await;
    assert!(started.elapsed() >= deadline);
    let (_, event) = soon(ext_next).await.unwrap();
    assert_eq!(event.json()["shutdownReason"], "failure");
}

#[tokio::test]
async fn shutdown_without_extensions_returns_at_once() {
    let api = start(config()).await;
    let _rt = spawn_next(api.local_addr());
    soon(api.wait_init()).await;
    tokio::time::timeout(
        Duration::from_secs(5),
        api.shutdown(ShutdownReason::Spindown, Duration::from_secs(3600)),
    )
    .await
    .expect("nothing to wait for");
}

#[tokio::test]
async fn extension_init_error_fails_init() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "broken", &["INVOKE"]).await;
    let _rt = spawn_next(addr);
    let mut conn = Conn::connect(addr).await;
    let res = conn
        .post(
            "/2020-01-01/extension/init/error",
            &[
                ("Lambda-Extension-Identifier", &ext),
                (
                    "Lambda-Extension-Function-Error-Type",
                    "Extension.ConfigInvalid",
                ),
            ],
            br#"{"errorMessage":"bad config","errorType":"Extension.ConfigInvalid"}"#,
        )
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(
        soon(api.wait_init()).await,
        InitResult::InitError {
            error_type: Some("Extension.ConfigInvalid".into()),
            body: Bytes::from_static(
                br#"{"errorMessage":"bad config","errorType":"Extension.ConfigInvalid"}"#
            ),
        }
    );
    // After reporting, the extension's calls are refused.
    let res = conn
        .get(EXT_NEXT, &[("Lambda-Extension-Identifier", &ext)])
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["errorType"], "Extension.InvalidExtensionState");
}

#[tokio::test]
async fn extension_exit_error_after_init_releases_waits() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "quitter", &["INVOKE"]).await;
    let ext_next = spawn_ext_next(addr, &ext);
    let rt_next = spawn_next(addr);
    soon(api.wait_init()).await;
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("q")).await }
    });
    let (mut rt, _) = soon(rt_next).await.unwrap();
    rt.post(&response_path("q"), &[], b"x").await;
    soon(invoke).await.unwrap();
    rt.send("GET", NEXT, &[], b"").await;
    let (mut ext_conn, _) = soon(ext_next).await.unwrap();
    let mut complete = Box::pin(api.wait_invocation_complete());
    assert!(stays_pending(&mut complete).await);
    let res = ext_conn
        .post(
            "/2020-01-01/extension/exit/error",
            &[
                ("Lambda-Extension-Identifier", &ext),
                ("Lambda-Extension-Function-Error-Type", "Extension.Crash"),
            ],
            b"",
        )
        .await;
    assert_eq!(res.status, 202);
    soon(complete).await;
    // Init already succeeded; an init error now is refused.
    let res = ext_conn
        .post(
            "/2020-01-01/extension/init/error",
            &[("Lambda-Extension-Identifier", &ext)],
            b"",
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(api.init_result(), Some(InitResult::Ready));
}

#[tokio::test]
async fn extensions_disabled_answers_404() {
    let mut cfg = config();
    cfg.extensions_enabled = false;
    let api = start(cfg).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    for (method, path) in [
        ("POST", REGISTER),
        ("GET", EXT_NEXT),
        ("POST", "/2020-01-01/extension/init/error"),
        ("POST", "/2020-01-01/extension/exit/error"),
        ("PUT", "/2022-07-01/telemetry"),
        ("PUT", "/2020-08-15/logs"),
    ] {
        let res = conn
            .request(method, path, &[("Lambda-Extension-Name", "x")], b"{}")
            .await;
        assert_eq!(res.status, 404, "{method} {path}");
        assert_eq!(res.json()["errorType"], "NotFound");
    }
}

#[tokio::test]
async fn telemetry_and_logs_subscriptions_are_stored() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let tel = register(addr, "tel", &[]).await;
    let logs = register(addr, "logs", &[]).await;
    let mut conn = Conn::connect(addr).await;
    let body = br#"{"schemaVersion":"2022-07-01","types":["platform","function"],
        "buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":100},
        "destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}"#;
    let res = conn
        .request(
            "PUT",
            "/2022-07-01/telemetry",
            &[("Lambda-Extension-Identifier", &tel)],
            body,
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), serde_json::json!("OK"));
    let res = conn
        .request(
            "PUT",
            "/2020-08-15/logs",
            &[("Lambda-Extension-Identifier", &logs)],
            br#"{"schemaVersion":"2021-03-18","types":["platform"],"destination":{"protocol":"TCP","URI":"sandbox.localdomain:4243"}}"#,
        )
        .await;
    assert_eq!(res.status, 200);

    let subs = api.telemetry_subscriptions();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].extension, "tel");
    assert_eq!(subs[0].api, TelemetryApi::Telemetry);
    assert_eq!(subs[0].protocol, "HTTP");
    assert_eq!(subs[0].uri, "http://sandbox.localdomain:8080");
    assert_eq!(
        subs[0].types,
        vec!["platform".to_owned(), "function".to_owned()]
    );
    assert_eq!(subs[0].raw, Bytes::from_static(body));
    assert_eq!(subs[1].api, TelemetryApi::Logs);

    // One extension cannot use both APIs; bodies without a destination are refused.
    let res = conn
        .request(
            "PUT",
            "/2020-08-15/logs",
            &[("Lambda-Extension-Identifier", &tel)],
            body,
        )
        .await;
    assert_eq!(res.status, 400);
    let res = conn
        .request(
            "PUT",
            "/2022-07-01/telemetry",
            &[("Lambda-Extension-Identifier", &logs)],
            br#"{"types":[]}"#,
        )
        .await;
    assert_eq!(res.status, 400);
    let res = conn
        .request("PUT", "/2022-07-01/telemetry", &[], body)
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.json()["errorType"],
        "Extension.MissingExtensionIdentifier"
    );
}

/// Destination hosts are case-insensitive; `[::1]` is refused with a message naming the hosts
/// accepted (every delivery dials IPv4's loopback).
#[tokio::test]
async fn destination_hosts_in_any_case_are_taken_and_ipv6_is_refused_clearly() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "tel", &[]).await;
    let mut conn = Conn::connect(addr).await;
    let subscribe = |uri: &str| {
        format!(
            r#"{{"schemaVersion":"2022-07-01","types":["platform"],"destination":{{"protocol":"HTTP","URI":"{uri}"}}}}"#
        )
    };
    for uri in [
        "http://SANDBOX.LOCALDOMAIN:8080",
        "http://Localhost:8080/t",
        "http://Sandbox:8080",
    ] {
        let res = conn
            .request(
                "PUT",
                "/2022-07-01/telemetry",
                &[("Lambda-Extension-Identifier", &ext)],
                subscribe(uri).as_bytes(),
            )
            .await;
        assert_eq!(res.status, 200, "{uri}");
    }
    let res = conn
        .request(
            "PUT",
            "/2022-07-01/telemetry",
            &[("Lambda-Extension-Identifier", &ext)],
            subscribe("http://[::1]:8080").as_bytes(),
        )
        .await;
    assert_eq!(res.status, 400);
    let body = res.json();
    assert_eq!(body["errorType"], "ValidationError");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("sandbox.localdomain, sandbox, localhost or 127.0.0.1")
            && message.contains("IPv6"),
        "{message}"
    );
}

/// The shape of a shell-script extension: `curl` with a fresh connection per call.
#[tokio::test]
async fn one_connection_per_request_clients_work() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let mut conn = Conn::connect(addr).await;
    let res = conn
        .post(
            REGISTER,
            &[
                ("Lambda-Extension-Name", "bash-ext"),
                ("Connection", "close"),
            ],
            br#"{"events":["INVOKE","SHUTDOWN"]}"#,
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(
        conn.read_response().await.is_err(),
        "server closes after Connection: close"
    );
    let id = res
        .header("lambda-extension-identifier")
        .unwrap()
        .to_owned();
    let ext_next = spawn_get(
        addr,
        EXT_NEXT,
        vec![
            ("Lambda-Extension-Identifier".into(), id.clone()),
            ("Connection".into(), "close".into()),
        ],
    );
    let _rt = spawn_next(addr);
    soon(api.wait_init()).await;
    let shutdown = tokio::spawn({
        let api = api.clone();
        async move {
            api.shutdown(ShutdownReason::Spindown, Duration::from_secs(30))
                .await
        }
    });
    let (_, event) = soon(ext_next).await.unwrap();
    assert_eq!(event.json()["eventType"], "SHUTDOWN");
    let mut again = Conn::connect(addr).await;
    again
        .send(
            "GET",
            EXT_NEXT,
            &[("Lambda-Extension-Identifier", &id)],
            b"",
        )
        .await;
    soon(shutdown).await.unwrap();
}
