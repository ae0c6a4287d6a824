//! The hot route recognizes plain Invokes only, and answers every one of them exactly as the
//! router does (status, headers in order, body), signed or not.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use kindling_auth::{Payload, SessionIssuer, SigningParams};
use kindling_edge::{BodyLimits, HotRoute, Origin, RequestContext};
use tower::ServiceExt;

use super::*;
use crate::extract::QueryParams;
use crate::tests::control::create_body;
use crate::tests::{SECRET, state_with};
use crate::{ApiAuth, normalize_path, router};

fn spots(method: &str, uri: &str) -> Option<(String, Option<String>)> {
    let uri: Uri = uri.parse().unwrap();
    let s = invoke_spots(&method.parse::<Method>().unwrap(), &uri)?;
    let q = s.qualifier.map(|r| uri.query().unwrap()[r].to_string());
    Some((uri.path()[s.name].to_string(), q))
}

#[test]
fn only_plain_invokes_are_recognized() {
    let f = "/2015-03-31/functions/f/invocations";
    assert_eq!(spots("POST", f), Some(("f".into(), None)));
    assert_eq!(
        spots(
            "POST",
            "/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:f:live/invocations"
        ),
        Some((
            "arn:aws:lambda:us-east-1:000000000000:function:f:live".into(),
            None
        ))
    );
    assert_eq!(
        spots("POST", &format!("{f}?Qualifier=live")),
        Some(("f".into(), Some("live".into())))
    );
    assert_eq!(
        spots("POST", &format!("http://localhost:9001{f}?x=1&Qualifier=2")),
        Some(("f".into(), Some("2".into())))
    );
    for (method, uri) in [
        ("GET", f),
        ("PUT", f),
        ("POST", "/2015-03-31/functions/f/invocations/"),
        ("POST", "/2015-03-31/functions//invocations"),
        ("POST", "/2015-03-31/functions/a/b/invocations"),
        ("POST", "/2015-03-31/functions/my%2Dfn/invocations"),
        (
            "POST",
            "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST",
        ),
        ("POST", "/2015-03-31/functions/f/invocations?Qualifier=a+b"),
        ("POST", "/2015-03-31/functions/f/invocation"),
        (
            "POST",
            "/2015-03-31/functions/f/response-streaming-invocations",
        ),
        ("POST", "/2014-11-13/functions/f/invoke-async"),
        ("POST", "/2015-03-31/functions"),
    ] {
        assert_eq!(spots(method, uri), None, "{method} {uri}");
    }
}

#[test]
fn the_qualifier_is_the_one_query_params_finds() {
    for q in [
        "Qualifier=1",
        "Qualifier=&Qualifier=2",
        "a=b&Qualifier=live&Qualifier=x",
        "Qualifier",
        "&&Qualifier=7&",
        "qualifier=1",
        "XQualifier=1&Qualifier=3",
        "Qualifier=a=b",
        "",
    ] {
        let want = QueryParams::parse(q).get("Qualifier").map(str::to_string);
        let got = qualifier_spot(q).map(|r| q[r].to_string());
        assert_eq!(got, want, "{q}");
    }
}

/// A request as a client sends it: headers, body, and how the edge saw the connection.
struct Case {
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    origin: Origin,
}

impl Case {
    fn new(uri: &str, body: &[u8]) -> Self {
        Self {
            uri: uri.into(),
            headers: vec![("host", "localhost:9001".into())],
            body: body.to_vec(),
            origin: Origin::Other,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Signed with a function's session credentials, as from inside its environment; the
    /// signature covers `signed_body` (a tampered request sends another).
    fn signed_by_function(mut self, function: &str, signed_body: &[u8]) -> Self {
        let now = SystemTime::now();
        let creds = SessionIssuer::new(SECRET)
            .mint(
                &format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
                "arn:aws:iam::000000000000:role/r",
                now,
                Duration::from_secs(3600),
            )
            .unwrap();
        self.headers
            .push(("x-amz-date", kindling_auth::amz_date(now)));
        self.headers
            .push(("x-amz-security-token", creds.session_token.clone()));
        let uri: Uri = self.uri.parse().unwrap();
        let refs: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_bytes()))
            .collect();
        let auth = kindling_auth::authorization_header(
            &kindling_auth::Request {
                method: "POST",
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &refs,
                payload: Payload::Bytes(signed_body),
            },
            &SigningParams {
                access_key_id: &creds.access_key_id,
                secret_access_key: &creds.secret_access_key,
                region: "us-east-1",
                service: "lambda",
                time: now,
            },
        );
        self.headers.push(("authorization", auth));
        self.origin = Origin::Environment { uid: 100_001 };
        self
    }

    fn request(&self) -> Request<Body> {
        let mut b = Request::builder().method("POST").uri(&self.uri);
        for (n, v) in &self.headers {
            b = b.header(*n, v);
        }
        b = b.header("content-length", self.body.len());
        let mut req = b.body(Body::from(self.body.clone())).unwrap();
        req.extensions_mut().insert(RequestContext {
            origin: self.origin,
            peer: None,
            body_limits: BodyLimits::new(Duration::from_secs(10), 64 << 20),
        });
        req
    }
}

/// Status, every header (name and value, in order) but the request id's value, and body, as
/// hyper puts them on the wire.
type Answer = (StatusCode, Vec<(String, String)>, Vec<u8>);

async fn answer_of(res: axum::response::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut lines = lines(&headers);
    // axum's router appends `Content-Length` (the body's length) last; hyper writes the very
    // same line after the other headers when a response has none, and leaves a `0` out where
    // a status has no body: on the wire the two are one.
    if lines.last().is_some_and(|(n, _)| n == "content-length") {
        let (_, value) = lines.pop().unwrap();
        assert_eq!(value, body.len().to_string());
    }
    assert!(lines.iter().all(|(n, _)| n != "content-length"));
    (status, lines, body.to_vec())
}

fn lines(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let value = if n == "x-amzn-requestid" {
                assert_eq!(v.len(), 36, "a request id");
                "<id>".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (n.as_str().to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn answers_exactly_as_the_router() {
    let (state, _dir) = state_with(ApiAuth::local(SECRET, "us-east-1"));
    let app = router(state.clone());
    let hot = HotInvoke::new(state);
    let created = app
        .clone()
        .oneshot(
            Request::post("/2015-03-31/functions")
                .body(Body::from(create_body("f")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let f = "/2015-03-31/functions/f/invocations";
    let too_large = vec![b' '; kindling_model::limits::SYNC_PAYLOAD + 1];
    let cases = [
        // Resolved, then refused: this state has no data plane.
        Case::new(f, b"{\"k\": 1}"),
        Case::new(f, b""),
        Case::new(&format!("{f}?Qualifier=$LATEST"), b"{}"),
        Case::new(f, b"{}").header("x-amz-invocation-type", "Event"),
        Case::new(f, b"{}").header("x-amz-invocation-type", "DryRun"),
        Case::new(f, b"{}").header("x-amz-log-type", "Tail"),
        // Refusals, in the order the handler checks.
        Case::new("/2015-03-31/functions/missing/invocations", b"{}"),
        Case::new(&format!("{f}?Qualifier=nope"), b"{}"),
        Case::new(f, b"{}").header("x-amz-invocation-type", "Sometimes"),
        Case::new(f, b"{}").header("x-amz-log-type", "Everything"),
        Case::new(f, b"{}").header("x-amz-client-context", "not base64!"),
        Case::new(f, b"{not json"),
        Case::new(f, &too_large),
        Case::new(f, &too_large).header("x-amz-invocation-type", "Sometimes"),
        Case::new("/2015-03-31/functions/bad*name!/invocations", b"{}"),
        // From inside an environment: signed with its own credentials, unsigned, tampered.
        Case::new(f, b"{}").signed_by_function("f", b"{}"),
        Case::new(f, b"{}").signed_by_function("other", b"{}"),
        Case::new(f, b"{\"x\":2}").signed_by_function("f", b"{}"),
        Case {
            origin: Origin::Environment { uid: 100_001 },
            ..Case::new(f, b"{}")
        },
    ];
    for case in &cases {
        let Ok(claimed) = hot.claim(case.request()) else {
            panic!("not claimed: {}", case.uri);
        };
        let hot_answer = answer_of(claimed.await).await;
        let routed = app.clone().oneshot(normalize_path(case.request())).await;
        let routed_answer = answer_of(routed.unwrap()).await;
        assert_eq!(
            hot_answer,
            routed_answer,
            "{} {:?}: {}",
            case.uri,
            case.headers.iter().map(|h| h.0).collect::<Vec<_>>(),
            String::from_utf8_lossy(&routed_answer.2)
        );
        assert!(
            hot_answer.0.is_client_error() || hot_answer.0.is_server_error(),
            "no data plane here: every case is refused somewhere ({})",
            hot_answer.0
        );
    }
}
