//! Who may call what: requests from execution environments, functions' session credentials,
//! the opt-ins, and presigned code URLs.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use kindling_auth::{Credentials, Payload, SessionCredentials, SessionIssuer, SigningParams};
use kindling_edge::{BodyLimits, Origin, RequestContext};
use tower::ServiceExt;

use super::{SECRET, app_with};
use std::sync::Arc;

use crate::{ApiAuth, AuthPolicy, FunctionAccess, Router};

const ROLE: &str = "arn:aws:iam::000000000000:role/service/worker-role";
const OPERATOR: (&str, &str) = ("AKIDOPERATOR00000001", "operator-secret");

fn function_credentials(name: &str) -> SessionCredentials {
    SessionIssuer::new(SECRET)
        .mint(
            &format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
            ROLE,
            SystemTime::now(),
            Duration::from_secs(3600),
        )
        .unwrap()
}

enum Signer<'a> {
    Unsigned,
    Operator,
    Function(&'a SessionCredentials),
}

async fn send(
    app: &Router,
    origin: Origin,
    signer: Signer<'_>,
    method: &str,
    path: &str,
) -> (StatusCode, HeaderMap, serde_json::Value) {
    let now = SystemTime::now();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), "localhost:9001".into()),
        ("x-amz-date".into(), kindling_auth::amz_date(now)),
    ];
    let (key, secret, token) = match &signer {
        Signer::Unsigned => ("", "", None),
        Signer::Operator => (OPERATOR.0, OPERATOR.1, None),
        Signer::Function(c) => (
            c.access_key_id.as_str(),
            c.secret_access_key.as_str(),
            Some(c.session_token.clone()),
        ),
    };
    if let Some(t) = token {
        headers.push(("x-amz-security-token".into(), t));
    }
    if !matches!(signer, Signer::Unsigned) {
        let refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let auth = kindling_auth::authorization_header(
            &kindling_auth::Request {
                method,
                path,
                query: "",
                headers: &refs,
                payload: Payload::Bytes(b""),
            },
            &SigningParams {
                access_key_id: key,
                secret_access_key: secret,
                region: "us-east-1",
                service: "lambda",
                time: now,
            },
        );
        headers.push(("authorization".into(), auth));
    }
    let mut builder = Request::builder().method(method).uri(path);
    for (n, v) in &headers {
        builder = builder.header(n, v);
    }
    let mut req = builder.body(Body::empty()).unwrap();
    req.extensions_mut().insert(RequestContext {
        origin,
        peer: None,
        body_limits: BodyLimits::new(Duration::from_secs(10), 64 << 20),
    });
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

const ENV: Origin = Origin::Environment { uid: 100_001 };

fn assert_error(got: &(StatusCode, HeaderMap, serde_json::Value), status: u16, kind: &str) {
    assert_eq!(got.0.as_u16(), status, "{:?}", got.2);
    assert_eq!(got.1["x-amzn-ErrorType"], kind, "{:?}", got.2);
}

#[tokio::test]
async fn environments_must_sign_with_their_own_credentials() {
    let operators = Credentials::new().with_key(OPERATOR.0, OPERATOR.1);
    let (app, _d) = app_with(ApiAuth::new(operators, false, SECRET, "us-east-1"));
    let list = "/2015-03-31/functions";
    // Unsigned from an environment: refused (from elsewhere, in local mode: served).
    assert_error(
        &send(&app, ENV, Signer::Unsigned, "GET", list).await,
        403,
        "MissingAuthenticationTokenException",
    );
    assert_eq!(
        send(&app, Origin::Other, Signer::Unsigned, "GET", list)
            .await
            .0,
        200
    );
    // Signed with anything but the environment's credentials: refused.
    let got = send(&app, ENV, Signer::Operator, "GET", list).await;
    assert_error(&got, 403, "AccessDeniedException");
    assert!(
        got.2["Message"]
            .as_str()
            .unwrap()
            .contains("execution environment")
    );
    // An unknown path is refused as unsigned too, not answered.
    assert_error(
        &send(&app, ENV, Signer::Unsigned, "GET", "/nope").await,
        403,
        "MissingAuthenticationTokenException",
    );
}

#[tokio::test]
async fn function_credentials_reach_the_data_plane_and_their_own_configuration_only() {
    let (app, _d) = app_with(ApiAuth::local(SECRET, "us-east-1"));
    let me = function_credentials("worker");
    let signed = |method, path| send(&app, ENV, Signer::Function(&me), method, path);

    // Its own configuration (any form of its name): past authorization (the function does not
    // exist in this store: 404).
    for own in [
        "/2015-03-31/functions/worker/configuration",
        "/2015-03-31/functions/worker",
        "/2015-03-31/functions/worker%3A1/configuration",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aworker",
    ] {
        assert_error(&signed("GET", own).await, 404, "ResourceNotFoundException");
    }
    // The data plane (no scheduler here: 503 past authorization).
    let got = signed("POST", "/2015-03-31/functions/other/invocations").await;
    assert_ne!(got.0, StatusCode::FORBIDDEN, "{:?}", got.2);

    // Another function's configuration, the control plane's reads and every write: denied.
    let denied = signed("DELETE", "/2015-03-31/functions/victim").await;
    assert_error(&denied, 403, "AccessDeniedException");
    assert_eq!(
        denied.2["Message"],
        "User: arn:aws:sts::000000000000:assumed-role/worker-role/worker is not authorized to \
         perform: lambda:DeleteFunction on resource: \
         arn:aws:lambda:us-east-1:000000000000:function:victim because no identity-based policy \
         allows the lambda:DeleteFunction action"
    );
    for (method, path) in [
        ("GET", "/2015-03-31/functions"),
        ("GET", "/2015-03-31/functions/victim"),
        ("GET", "/2015-03-31/functions/victim/configuration"),
        ("POST", "/2015-03-31/functions"),
        ("PUT", "/2015-03-31/functions/worker/configuration"),
        ("GET", "/2016-08-19/account-settings"),
        ("GET", "/2018-10-31/layers"),
    ] {
        assert_error(&signed(method, path).await, 403, "AccessDeniedException");
    }
    // Someone else's (or an expired) token never gets that far.
    let foreign = SessionIssuer::new(&[9u8; 32])
        .mint(
            "arn:aws:lambda:us-east-1:000000000000:function:worker",
            ROLE,
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_error(
        &send(
            &app,
            ENV,
            Signer::Function(&foreign),
            "GET",
            "/2015-03-31/functions/worker",
        )
        .await,
        403,
        "UnrecognizedClientException",
    );
}

#[tokio::test]
async fn operators_opt_functions_in() {
    let mut read = AuthPolicy::local(SECRET, "us-east-1");
    read.function_access = FunctionAccess::Read;
    let (app, _d) = app_with(ApiAuth::with_policy(Arc::new(read)));
    let me = function_credentials("worker");
    assert_eq!(
        send(
            &app,
            ENV,
            Signer::Function(&me),
            "GET",
            "/2015-03-31/functions"
        )
        .await
        .0,
        200
    );
    assert_error(
        &send(
            &app,
            ENV,
            Signer::Function(&me),
            "DELETE",
            "/2015-03-31/functions/victim",
        )
        .await,
        403,
        "AccessDeniedException",
    );

    let mut full = AuthPolicy::local(SECRET, "us-east-1");
    full.function_access = FunctionAccess::Full;
    let (app, _d) = app_with(ApiAuth::with_policy(Arc::new(full)));
    assert_error(
        &send(
            &app,
            ENV,
            Signer::Function(&me),
            "DELETE",
            "/2015-03-31/functions/victim",
        )
        .await,
        404,
        "ResourceNotFoundException",
    );

    let mut admin = AuthPolicy::local(SECRET, "us-east-1");
    admin.admin_roles = vec![ROLE.to_string()];
    let (app, _d) = app_with(ApiAuth::with_policy(Arc::new(admin)));
    assert_error(
        &send(
            &app,
            ENV,
            Signer::Function(&me),
            "DELETE",
            "/2015-03-31/functions/victim",
        )
        .await,
        404,
        "ResourceNotFoundException",
    );
    let other_role = SessionIssuer::new(SECRET)
        .mint(
            "arn:aws:lambda:us-east-1:000000000000:function:x",
            "arn:aws:iam::000000000000:role/plain",
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_error(
        &send(
            &app,
            ENV,
            Signer::Function(&other_role),
            "DELETE",
            "/2015-03-31/functions/victim",
        )
        .await,
        403,
        "AccessDeniedException",
    );
}

#[tokio::test]
async fn code_urls_expire_after_ten_minutes() {
    let auth = ApiAuth::local(SECRET, "us-east-1");
    let mut headers = HeaderMap::new();
    headers.insert("host", "localhost:9001".parse().unwrap());
    let blob = "ab".repeat(32);
    let fresh = auth.code_urls.location(&headers, &blob, SystemTime::now());
    let stale = auth.code_urls.location(
        &headers,
        &blob,
        SystemTime::now() - Duration::from_secs(601),
    );
    let (app, _d) = app_with(auth);
    let get = |url: String| {
        let app = app.clone();
        async move {
            let uri = url.trim_start_matches("http://localhost:9001").to_string();
            let req = Request::builder()
                .uri(uri)
                .header("host", "localhost:9001")
                .body(Body::empty())
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let kind = res.headers().get("x-amzn-ErrorType").cloned();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, kind, String::from_utf8_lossy(&body).into_owned())
        }
    };
    // Valid and fresh: past the signature (no such package here: 404).
    assert_eq!(get(fresh).await.0, StatusCode::NOT_FOUND);
    let (status, kind, body) = get(stale).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(kind.unwrap(), "AccessDeniedException");
    assert!(body.contains("Signature expired"), "{body}");
}
