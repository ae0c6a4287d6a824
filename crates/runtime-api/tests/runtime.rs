//! The Runtime API over real TCP: what `lambda_runtime`, awslambdaric and Kindling's bootstraps
//! exercise.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use kindling_runtime_api::{InitResult, Invocation, Outcome, RuntimeApi};
use support::*;

fn invocation(id: &str) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:my-function".into(),
        payload: Bytes::from_static(br#"{"hello":"world"}"#),
        ..Invocation::default()
    }
}

/// Binds, starts the runtime's first `/next` and waits for init.
async fn ready_env() -> (std::sync::Arc<RuntimeApi>, SocketAddr) {
    let api = start(config()).await;
    let addr = api.local_addr();
    (api, addr)
}

#[tokio::test]
async fn full_cycle_with_every_header() {
    let (api, addr) = ready_env().await;
    let mut next = spawn_next(addr);
    assert_eq!(soon(api.wait_init()).await, InitResult::Ready);

    let inv = Invocation {
        trace_id: Some(
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        ),
        client_context: Some(r#"{"custom":{"k":"v"}}"#.into()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#.into(),
        ),
        tenant_id: Some("tenant-1".into()),
        content_type: Some("application/octet-stream".into()),
        ..invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd")
    };
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(inv).await }
    });

    let (mut conn, res) = soon(&mut next).await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.body, br#"{"hello":"world"}"#);
    let expect = [
        (
            "Lambda-Runtime-Aws-Request-Id",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        ),
        ("Lambda-Runtime-Deadline-Ms", "1900000000000"),
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:my-function",
        ),
        (
            "Lambda-Runtime-Trace-Id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        ),
        ("Lambda-Runtime-Client-Context", r#"{"custom":{"k":"v"}}"#),
        (
            "Lambda-Runtime-Cognito-Identity",
            r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#,
        ),
        ("Lambda-Runtime-Aws-Tenant-Id", "tenant-1"),
        ("Content-Type", "application/octet-stream"),
    ];
    for (name, value) in expect {
        // Exact (case-sensitive) names: Lambda's capitalisation.
        let got = res
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(got, Some(value), "header {name}");
    }

    let res = conn
        .post(
            &response_path("8476a536-e9f4-11e8-9739-2dfe598c3fcd"),
            &[("Content-Type", "text/plain")],
            b"done",
        )
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(res.json(), serde_json::json!({"status": "OK"}));
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Response {
            body: Bytes::from_static(b"done"),
            content_type: Some("text/plain".into())
        }
    );

    // Not reusable until the runtime polls again.
    let mut complete = Box::pin(api.wait_invocation_complete());
    assert!(stays_pending(&mut complete).await);
    conn.send("GET", NEXT, &[], b"").await;
    soon(complete).await;
}

#[tokio::test]
async fn optional_headers_are_absent_and_content_type_defaults_to_json() {
    let (api, addr) = ready_env().await;
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("r1")).await }
    });
    let (mut conn, res) = soon(next).await.unwrap();
    assert_eq!(res.header("content-type"), Some("application/json"));
    for absent in [
        "lambda-runtime-trace-id",
        "lambda-runtime-client-context",
        "lambda-runtime-cognito-identity",
        "lambda-runtime-aws-tenant-id",
    ] {
        assert_eq!(res.header(absent), None, "{absent}");
    }
    // A response without a content type.
    assert_eq!(
        conn.post(&response_path("r1"), &[], b"{}").await.status,
        202
    );
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Response {
            body: Bytes::from_static(b"{}"),
            content_type: None
        }
    );
}

#[tokio::test]
async fn next_is_a_true_long_poll() {
    let (api, addr) = ready_env().await;
    let mut next = spawn_next(addr);
    soon(api.wait_init()).await;
    // Nothing to deliver: the request stays open (no 204, no timeout).
    assert!(stays_pending(&mut next).await);
    assert!(!next.is_finished());

    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("late")).await }
    });
    let (mut conn, res) = soon(next).await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("late"));
    assert_eq!(
        conn.post(&response_path("late"), &[], b"ok").await.status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn invoke_before_runtime_polls_is_queued() {
    let (api, addr) = ready_env().await;
    // Init first (the runtime's first /next), then an invoke while it is busy elsewhere.
    let first = spawn_next(addr);
    soon(api.wait_init()).await;
    let a = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("a")).await }
    });
    let b = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("b")).await }
    });
    let (mut conn, res) = soon(first).await.unwrap();
    let first_id = res
        .header("lambda-runtime-aws-request-id")
        .unwrap()
        .to_owned();
    assert_eq!(
        conn.post(&response_path(&first_id), &[], b"1").await.status,
        202
    );
    let res = conn.get(NEXT, &[]).await;
    let second_id = res
        .header("lambda-runtime-aws-request-id")
        .unwrap()
        .to_owned();
    assert_ne!(first_id, second_id);
    assert_eq!(
        conn.post(&response_path(&second_id), &[], b"2")
            .await
            .status,
        202
    );
    assert!(matches!(soon(a).await.unwrap(), Outcome::Response { .. }));
    assert!(matches!(soon(b).await.unwrap(), Outcome::Response { .. }));
}

#[tokio::test]
async fn wrong_id_and_double_answers_get_400() {
    let (api, addr) = ready_env().await;
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("right")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();

    let invalid =
        serde_json::json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"});
    let res = conn.post(&response_path("wrong"), &[], b"x").await;
    assert_eq!((res.status, res.json()), (400, invalid.clone()));
    let res = conn.post(&error_path("wrong"), &[], b"x").await;
    assert_eq!((res.status, res.json()), (400, invalid.clone()));

    assert_eq!(
        conn.post(&response_path("right"), &[], b"first")
            .await
            .status,
        202
    );
    let res = conn.post(&response_path("right"), &[], b"second").await;
    assert_eq!((res.status, res.json()), (400, invalid.clone()));
    let res = conn.post(&error_path("right"), &[], b"third").await;
    assert_eq!((res.status, res.json()), (400, invalid));
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Response {
            body: Bytes::from_static(b"first"),
            content_type: None
        }
    );
}

#[tokio::test]
async fn error_relays_type_and_body_verbatim() {
    let (api, addr) = ready_env().await;
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("e1")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    let body = br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":["  File x"]}"#;
    let res = conn
        .post(
            &error_path("e1"),
            &[("Lambda-Runtime-Function-Error-Type", "Runtime.Unhandled")],
            body,
        )
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(res.json(), serde_json::json!({"status": "OK"}));
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Error {
            error_type: Some("Runtime.Unhandled".into()),
            body: Bytes::from_static(body)
        }
    );
}

#[tokio::test]
async fn oversize_response_gets_413_and_response_too_large() {
    let mut cfg = config();
    cfg.max_response_bytes = 1024;
    let api = start(cfg).await;
    let addr = api.local_addr();
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("big")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    let res = conn
        .post(&response_path("big"), &[], &vec![b'x'; 1025])
        .await;
    assert_eq!(res.status, 413);
    assert_eq!(
        res.json(),
        serde_json::json!({
            "errorMessage": "Exceeded maximum allowed payload size (1024 bytes).",
            "errorType": "RequestEntityTooLarge"
        })
    );
    assert_eq!(soon(invoke).await.unwrap(), Outcome::ResponseTooLarge);
    // The invocation is over: any further answer is refused, and the same keep-alive
    // connection can go on polling.
    assert_eq!(conn.post(&error_path("big"), &[], b"{}").await.status, 400);
    conn.send("GET", NEXT, &[], b"").await;
    soon(api.wait_invocation_complete()).await;
}

#[tokio::test]
async fn oversize_chunked_response_at_the_default_limit() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("chunky")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    // No Content-Length: the cap must be enforced while reading. 7 chunks of 1 MiB.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        response_path("chunky")
    );
    conn.write_raw(head.as_bytes()).await;
    let chunk = vec![b'y'; 1024 * 1024];
    for _ in 0..7 {
        conn.write_raw(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        conn.write_raw(&chunk).await;
        conn.write_raw(b"\r\n").await;
    }
    conn.write_raw(b"0\r\n\r\n").await;
    let res = soon(conn.read_response()).await.unwrap();
    assert_eq!(res.status, 413);
    assert_eq!(
        res.json()["errorMessage"],
        "Exceeded maximum allowed payload size (6291556 bytes)."
    );
    assert_eq!(soon(invoke).await.unwrap(), Outcome::ResponseTooLarge);
}

#[tokio::test]
async fn response_of_exactly_the_limit_is_accepted() {
    let mut cfg = config();
    cfg.max_response_bytes = 1000;
    let api = start(cfg).await;
    let next = spawn_next(api.local_addr());
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("edge")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    assert_eq!(
        conn.post(&response_path("edge"), &[], &[b'z'; 1000])
            .await
            .status,
        202
    );
    match soon(invoke).await.unwrap() {
        Outcome::Response { body, .. } => assert_eq!(body.len(), 1000),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn init_error_fails_init_and_pending_invokes() {
    let api = start(config()).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    let body = br#"{"errorMessage":"Unable to import module 'x'","errorType":"Runtime.ImportModuleError"}"#;
    let res = conn
        .post(
            "/2018-06-01/runtime/init/error",
            &[(
                "Lambda-Runtime-Function-Error-Type",
                "Runtime.ImportModuleError",
            )],
            body,
        )
        .await;
    assert_eq!(res.status, 202);
    let expected = InitResult::InitError {
        error_type: Some("Runtime.ImportModuleError".into()),
        body: Bytes::from_static(body),
    };
    assert_eq!(soon(api.wait_init()).await, expected);
    assert_eq!(api.init_result(), Some(expected));
    // The runtime must exit now; further polls are refused.
    let res = conn.get(NEXT, &[]).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["errorType"], "InvalidStateTransition");
    // An invocation for this environment fails with the init error.
    assert_eq!(
        soon(api.invoke(invocation("x"))).await,
        Outcome::Error {
            error_type: Some("Runtime.ImportModuleError".into()),
            body: Bytes::from_static(body)
        }
    );
    soon(api.wait_invocation_complete()).await;
}

#[tokio::test]
async fn init_error_after_first_next_is_refused() {
    let api = start(config()).await;
    let _next = spawn_next(api.local_addr());
    soon(api.wait_init()).await;
    let res = Conn::connect(api.local_addr())
        .await
        .post("/2018-06-01/runtime/init/error", &[], b"{}")
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["errorType"], "InvalidStateTransition");
    assert_eq!(api.init_result(), Some(InitResult::Ready));
}

#[tokio::test]
async fn invoke_waits_for_init() {
    let api = start(config()).await;
    let mut invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("cold")).await }
    });
    assert!(stays_pending(&mut invoke).await);
    let mut conn = Conn::connect(api.local_addr()).await;
    let res = conn.get(NEXT, &[]).await;
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("cold"));
    assert_eq!(
        conn.post(&response_path("cold"), &[], b"warm now")
            .await
            .status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn dropped_invoke_after_delivery_refuses_late_answer() {
    let (api, addr) = ready_env().await;
    let mut conn = Conn::connect(addr).await;
    conn.send("GET", NEXT, &[], b"").await;
    soon(api.wait_init()).await;
    {
        let invoke = api.invoke(invocation("slow"));
        tokio::pin!(invoke);
        // Drive the invoke until the runtime has the event, then drop it (a timeout).
        let res = tokio::select! {
            outcome = &mut invoke => panic!("invoke finished early: {outcome:?}"),
            res = conn.read_response() => res.unwrap(),
        };
        assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("slow"));
    }
    let res = conn.post(&response_path("slow"), &[], b"too late").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["errorType"], "InvalidRequestID");

    // The runtime polls again and the next invocation works.
    conn.send("GET", NEXT, &[], b"").await;
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("fresh")).await }
    });
    let res = soon(conn.read_response()).await.unwrap();
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("fresh"));
    assert_eq!(
        conn.post(&response_path("fresh"), &[], b"ok").await.status,
        202
    );
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Response {
            body: Bytes::from_static(b"ok"),
            content_type: None
        }
    );
}

#[tokio::test]
async fn dropped_invoke_before_delivery_is_never_delivered() {
    let (api, addr) = ready_env().await;
    let mut conn = Conn::connect(addr).await;
    conn.send("GET", NEXT, &[], b"").await;
    soon(api.wait_init()).await;
    let res = {
        let invoke = tokio::spawn({
            let api = api.clone();
            async move { api.invoke(invocation("first")).await }
        });
        let res = soon(conn.read_response()).await.unwrap();
        assert_eq!(
            conn.post(&response_path("first"), &[], b"1").await.status,
            202
        );
        soon(invoke).await.unwrap();
        res
    };
    assert_eq!(res.status, 200);
    // The runtime is busy (has not polled again): this invoke is queued, then abandoned.
    {
        // Poll the invoke once (it queues the event), then drop it.
        let abandoned = api.invoke(invocation("abandoned"));
        tokio::pin!(abandoned);
        tokio::select! {
            biased;
            outcome = &mut abandoned => panic!("finished: {outcome:?}"),
            () = std::future::ready(()) => {}
        }
    }
    conn.send("GET", NEXT, &[], b"").await;
    let mut pending = Box::pin(conn.read_response());
    assert!(
        stays_pending(&mut pending).await,
        "an abandoned invocation was delivered"
    );
    drop(pending);
    // Only the next real invocation arrives.
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("real")).await }
    });
    let res = soon(conn.read_response()).await.unwrap();
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("real"));
    assert_eq!(
        conn.post(&response_path("real"), &[], b"r").await.status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn next_while_an_invocation_is_outstanding_is_refused() {
    let (api, addr) = ready_env().await;
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("busy")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    let res = Conn::connect(addr).await.get(NEXT, &[]).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["errorType"], "InvalidStateTransition");
    // The outstanding invocation can still be answered.
    assert_eq!(
        conn.post(&response_path("busy"), &[], b"fine").await.status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn runtime_reconnecting_gets_the_event() {
    let (api, addr) = ready_env().await;
    {
        let mut first = Conn::connect(addr).await;
        first.send("GET", NEXT, &[], b"").await;
        soon(api.wait_init()).await;
        eventually(|| api.runtime_polling(), "the first /next to be parked").await;
    } // the first /next's connection closes while parked
    eventually(|| !api.runtime_polling(), "the server to notice the close").await;
    let next = spawn_next(addr);
    eventually(|| api.runtime_polling(), "the second /next to be parked").await;
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("again")).await }
    });
    let (mut conn, res) = soon(next).await.unwrap();
    assert_eq!(res.header("lambda-runtime-aws-request-id"), Some("again"));
    assert_eq!(
        conn.post(&response_path("again"), &[], b"ok").await.status,
        202
    );
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn second_parked_next_supersedes_the_first() {
    let (api, addr) = ready_env().await;
    let first = spawn_next(addr);
    soon(api.wait_init()).await;
    let second = spawn_next(addr);
    let (_, res) = soon(first).await.unwrap();
    assert_eq!(res.status, 403);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("s")).await }
    });
    let (mut conn, res) = soon(second).await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(conn.post(&response_path("s"), &[], b"ok").await.status, 202);
    assert!(matches!(
        soon(invoke).await.unwrap(),
        Outcome::Response { .. }
    ));
}

#[tokio::test]
async fn truncated_answer_leaves_the_invocation_open() {
    let (api, addr) = ready_env().await;
    let next = spawn_next(addr);
    let invoke = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(invocation("cut")).await }
    });
    let (mut conn, _) = soon(next).await.unwrap();
    {
        let mut broken = Conn::connect(addr).await;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
            response_path("cut")
        );
        broken.write_raw(head.as_bytes()).await;
        // hyper sends 100 Continue once the handler reads the body, i.e. after the claim.
        assert_eq!(soon(broken.read_response()).await.unwrap().status, 100);
        let mut check = Conn::connect(addr).await;
        assert_eq!(
            check.post(&response_path("cut"), &[], b"x").await.status,
            400,
            "the first answer holds the id while its body is read"
        );
        broken.write_raw(b"part").await;
    } // the connection closes mid-body
    // The cut-off answer releases the id (once the server sees the EOF); a retry succeeds.
    let deadline = tokio::time::Instant::now() + SOON;
    let mut status = conn.post(&response_path("cut"), &[], b"whole").await.status;
    while status == 400 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        status = conn.post(&response_path("cut"), &[], b"whole").await.status;
    }
    assert_eq!(status, 202);
    assert_eq!(
        soon(invoke).await.unwrap(),
        Outcome::Response {
            body: Bytes::from_static(b"whole"),
            content_type: None
        }
    );
}

#[tokio::test]
async fn unknown_response_mode_is_refused() {
    let (api, addr) = ready_env().await;
    let _next = spawn_next(addr);
    soon(api.wait_init()).await;
    let mut conn = Conn::connect(addr).await;
    let res = conn
        .post(
            &response_path("zzz"),
            &[("Lambda-Runtime-Function-Response-Mode", "weird")],
            b"",
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["errorType"], "InvalidFunctionResponseMode");
}

#[tokio::test]
async fn ping_unknown_paths_and_methods() {
    let api = start(config()).await;
    let mut conn = Conn::connect(api.local_addr()).await;
    let res = conn.get("/ping", &[]).await;
    assert_eq!((res.status, res.body.as_slice()), (200, b"pong".as_slice()));
    let res = conn.get("/2018-06-01/runtime/nothing", &[]).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["errorType"], "NotFound");
    let res = conn.post(NEXT, &[], b"").await;
    assert_eq!(res.status, 405);
    assert_eq!(res.json()["errorType"], "MethodNotAllowed");
}

#[tokio::test]
async fn dropping_the_handle_closes_connections() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let mut conn = Conn::connect(addr).await;
    conn.send("GET", NEXT, &[], b"").await;
    soon(api.wait_init()).await;
    drop(api);
    assert!(
        soon(conn.read_response()).await.is_err(),
        "the parked /next must be closed"
    );
}
