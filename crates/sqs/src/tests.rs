//! The router driven in-process (`oneshot`), both protocols, over an in-memory store.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use kindling_queues::QueuesConfig;
use kindling_store::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

fn app() -> axum::Router {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let queues = QueueService::new(
        QueuesConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            batch_max: 64,
            refresh: None,
        },
        store,
    )
    .unwrap();
    let policy = Arc::new(kindling_edge::gate::AuthPolicy::local(
        b"secret",
        "us-east-1",
    ));
    router(SqsState {
        queues,
        account_id: "000000000000".into(),
        gate: kindling_edge::gate::Gate::new(policy, "sqs"),
    })
}

async fn json_call(app: &axum::Router, op: &str, body: Value) -> (u16, Value, http::HeaderMap) {
    let req = Request::post("/")
        .header("host", "127.0.0.1:9001")
        .header("x-amz-target", format!("AmazonSQS.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v, headers)
}

async fn query_call(app: &axum::Router, path: &str, form: &str) -> (u16, String) {
    let req = Request::post(path)
        .header("host", "localhost:9001")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn json_and_query_share_queues() {
    let app = app();
    let (s, v, _) = json_call(&app, "CreateQueue", json!({"QueueName": "q1"})).await;
    assert_eq!(s, 200);
    assert_eq!(v["QueueUrl"], "http://127.0.0.1:9001/000000000000/q1");
    let (s, v, _) = json_call(
        &app,
        "SendMessage",
        json!({"QueueUrl": "http://other/000000000000/q1", "MessageBody": "hello"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["MD5OfMessageBody"], "5d41402abc4b2a76b9719d911017c592");
    let (s, body) = query_call(
        &app,
        "/000000000000/q1",
        "Action=ReceiveMessage&Version=2012-11-05&AttributeName.1=All",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("<ReceiveMessageResult><Message>"), "{body}");
    assert!(body.contains("<Body>hello</Body>"), "{body}");
    assert!(
        body.contains("<Name>ApproximateReceiveCount</Name><Value>1</Value>"),
        "{body}"
    );
}

#[tokio::test]
async fn errors_in_each_protocol() {
    let app = app();
    let (s, v, h) = json_call(&app, "GetQueueUrl", json!({"QueueName": "missing"})).await;
    assert_eq!(s, 400);
    assert_eq!(v["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
    assert_eq!(
        h["x-amzn-query-error"],
        "AWS.SimpleQueueService.NonExistentQueue;Sender"
    );
    let (s, body) = query_call(
        &app,
        "/",
        "Action=GetQueueUrl&Version=2012-11-05&QueueName=nope",
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        body.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"),
        "{body}"
    );
    let (s, body) = query_call(&app, "/", "Action=Bogus&Version=2012-11-05").await;
    assert_eq!(s, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
}
