//! Router tests without a socket: requests go through `oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kindling_control::{ControlConfig, ControlPlane};
use kindling_model::ArnContext;
use kindling_store::{BlobStore, SqliteStore};
use tower::ServiceExt;

use super::*;

fn app() -> (Router, tempfile::TempDir) {
    app_with(ApiAuth::local(SECRET, "us-east-1"))
}

pub(crate) const SECRET: &[u8] = &[7u8; 32];

fn app_with(auth: ApiAuth) -> (Router, tempfile::TempDir) {
    let (state, dir) = state_with(auth);
    (router(state), dir)
}

/// The API's state over an in-memory store, without a data plane.
pub(crate) fn state_with(auth: ApiAuth) -> (ApiState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let control = ControlPlane::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        BlobStore::open(dir.path()).unwrap(),
        ControlConfig {
            arn: ArnContext::new("us-east-1", "000000000000"),
            account_concurrency: 1000,
            min_unreserved_concurrency: 100,
        },
    );
    (
        ApiState {
            control: Arc::new(control),
            scheduler: None,
            events: None,
            esm: None,
            auth: Arc::new(auth),
            routing: None,
        },
        dir,
    )
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let req = normalize_path(
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body.to_string()))
            .unwrap(),
    );
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

#[tokio::test]
async fn errors_use_lambda_format() {
    let (app, _d) = app();
    let (status, headers, body) = call(&app, "GET", "/2015-03-31/functions/missing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-amzn-ErrorType"], "ResourceNotFoundException");
    assert!(headers.contains_key("x-amzn-RequestId"));
    assert_eq!(body["Type"], "User");
    assert_eq!(
        body["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing"
    );

    let (status, headers, body) = call(&app, "POST", "/2015-03-31/functions", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        headers["x-amzn-ErrorType"],
        "InvalidRequestContentException"
    );
    assert!(body["message"].as_str().unwrap().contains("json"));

    let (status, headers, _) = call(&app, "PATCH", "/2015-03-31/functions/x", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-amzn-ErrorType"], "UnknownOperationException");

    let (status, _, body) = call(&app, "GET", "/2015-03-31/functions/?MaxItems=abc", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("maxItems"));
}

#[tokio::test]
async fn lists_with_trailing_slash_and_account_settings() {
    let (app, _d) = app();
    let (status, _, body) = call(&app, "GET", "/2015-03-31/functions/", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Functions"], serde_json::json!([]));
    let (status, _, body) = call(&app, "GET", "/2016-08-19/account-settings/", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["AccountLimit"]["ConcurrentExecutions"], 1000);
    assert_eq!(body["AccountLimit"]["UnreservedConcurrentExecutions"], 1000);
}

mod access;
pub(crate) mod control;
mod fuzz;

#[test]
fn the_edge_refuses_a_connection_past_its_addresses_cap_as_a_retryable_service_error() {
    let res = edge_renderer()(kindling_edge::Rejection::TooManyConnections);
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // AWS's common 503 error (ServiceException is Lambda's 500).
    assert_eq!(
        res.headers()[error::ERROR_TYPE_HEADER],
        "ServiceUnavailable"
    );
    assert_eq!(res.headers()["x-amzn-requestid"].len(), 36, "a request id");
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["Type"], "Service");
    assert!(body["message"].as_str().unwrap().contains("retry later"));
}
