//! The trace header: every invocation's own `Lambda-Runtime-Trace-Id` on `/next` and in the
//! INVOKE event of extensions, verbatim (fields of other services such as `Lineage` kept).

mod support;

use bytes::Bytes;
use kindling_runtime_api::{InitResult, Invocation, Outcome};
use support::*;

const TRACES: [&str; 2] = [
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0",
    "Root=1-67891233-abcdef012345678912345678;Parent=1111111111111111;Sampled=0",
];

fn invocation(id: &str, trace: &str) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        trace_id: Some(trace.into()),
        payload: Bytes::from_static(b"{}"),
        ..Invocation::default()
    }
}

#[tokio::test]
async fn each_invocation_carries_its_own_trace_header() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let ext = register(addr, "tracer", &["INVOKE"]).await;
    let mut ext_next = spawn_ext_next(addr, &ext);
    let runtime_next = spawn_next(addr);
    assert_eq!(soon(api.wait_init()).await, InitResult::Ready);
    let mut rt: Option<Conn> = None;
    let mut runtime_next = Some(runtime_next);

    for (i, trace) in TRACES.iter().enumerate() {
        let id = format!("req-{i}");
        let invoke = tokio::spawn({
            let api = api.clone();
            let inv = invocation(&id, trace);
            async move { api.invoke(inv).await }
        });
        // The runtime's /next: the header, byte for byte, under Lambda's name.
        let (mut conn, next) = match runtime_next.take() {
            Some(first) => soon(first).await.unwrap(),
            None => {
                let mut conn = rt.take().expect("the runtime's connection");
                conn.send("GET", NEXT, &[], b"").await;
                let next = soon(conn.read_response()).await.unwrap();
                (conn, next)
            }
        };
        assert_eq!(
            next.header("lambda-runtime-aws-request-id"),
            Some(id.as_str())
        );
        let sent: Vec<&str> = next
            .headers
            .iter()
            .filter(|(n, _)| n == "Lambda-Runtime-Trace-Id")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            sent,
            [*trace],
            "exactly one trace header, this invocation's"
        );

        // The extension's INVOKE event: the same value.
        let (mut ext_conn, event) = soon(&mut ext_next).await.unwrap();
        assert_eq!(
            event.json()["tracing"],
            serde_json::json!({"type": "X-Amzn-Trace-Id", "value": trace})
        );
        ext_conn
            .send(
                "GET",
                EXT_NEXT,
                &[("Lambda-Extension-Identifier", &ext)],
                b"",
            )
            .await;
        ext_next = tokio::spawn(async move {
            let res = ext_conn.read_response().await.expect("response");
            (ext_conn, res)
        });

        assert_eq!(conn.post(&response_path(&id), &[], b"ok").await.status, 202);
        assert!(matches!(
            soon(invoke).await.unwrap(),
            Outcome::Response { .. }
        ));
        rt = Some(conn);
    }
}
