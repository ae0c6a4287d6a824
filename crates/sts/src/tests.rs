//! The router driven in-process.

use std::time::SystemTime;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use kindling_auth::{Credentials, SigningParams, authorization_header};
use kindling_edge::gate::AuthPolicy;
use tower::ServiceExt;

use super::*;

const ACCOUNT: &str = "123456789012";

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn state(shared: bool) -> StsState {
    let policy = if shared {
        AuthPolicy::new(
            Credentials::new().with_key("AKIDKINDLING", "s3cret"),
            true,
            SECRET,
            "us-east-1",
        )
    } else {
        AuthPolicy::local(SECRET, "us-east-1")
    };
    StsState {
        account_id: ACCOUNT.into(),
        gate: Gate::new(std::sync::Arc::new(policy), "sts"),
    }
}

async fn call(state: StsState, req: Request<Body>) -> (u16, String) {
    let res = router(state).oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn form(body: &'static str) -> Request<Body> {
    Request::post("/")
        .header("host", "localhost:9001")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn local_mode_answers_the_root_of_the_account() {
    let (status, body) = call(
        state(false),
        form("Action=GetCallerIdentity&Version=2011-06-15"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"), "{body}");
    assert!(
        body.contains(&format!("<Arn>arn:aws:iam::{ACCOUNT}:root</Arn>")),
        "{body}"
    );
    assert!(
        body.contains(&format!("<Account>{ACCOUNT}</Account>")),
        "{body}"
    );
    // GET with the query string works as well.
    let get = Request::get("/?Action=GetCallerIdentity&Version=2011-06-15")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(state(false), get).await.0, 200);
    let (status, body) = call(
        state(false),
        form("Action=AssumeRoleWithSAML&Version=2011-06-15"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    let (status, body) = call(state(false), form("Version=2011-06-15")).await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>MissingAction</Code>"), "{body}");
}

fn signed(key: &str, secret: &str, body: &'static str) -> Request<Body> {
    let now = SystemTime::now();
    let params = SigningParams {
        access_key_id: key,
        secret_access_key: secret,
        region: "us-east-1",
        service: "sts",
        time: now,
    };
    let date = kindling_auth::amz_date(now);
    let headers = [
        ("host", "localhost:9001".as_bytes()),
        (
            "content-type",
            b"application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("x-amz-date", date.as_bytes()),
    ];
    let request = kindling_auth::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        payload: kindling_auth::Payload::Bytes(body.as_bytes()),
    };
    let auth = authorization_header(&request, &params);
    Request::post("/")
        .header("host", "localhost:9001")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("x-amz-date", date)
        .header("authorization", auth)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn verified_keys_are_users_and_bad_ones_are_refused() {
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let (status, text) = call(state(true), signed("AKIDKINDLING", "s3cret", body)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&format!(
            "<Arn>arn:aws:iam::{ACCOUNT}:user/AKIDKINDLING</Arn>"
        )),
        "{text}"
    );
    let (status, text) = call(state(true), signed("AKIDKINDLING", "wrong", body)).await;
    assert_eq!(status, 403);
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );
    let (status, text) = call(state(true), signed("AKIDUNKNOWN", "x", body)).await;
    assert_eq!(status, 403);
    assert!(text.contains("<Code>InvalidClientTokenId</Code>"), "{text}");
    let (status, _) = call(state(true), form(body)).await;
    assert_eq!(status, 403);
}
