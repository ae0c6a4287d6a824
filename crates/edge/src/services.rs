//! The services behind the one endpoint, and the dispatcher that hands each request to the one
//! it is for ([`crate::dispatch`] decides).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use kindling_protocol::json::JsonVersion;
use kindling_protocol::{WireError, json, query, rest};
use tower::ServiceExt;

use crate::body::read_body;
use crate::dispatch::{Decision, RequestHead, ServiceId, classify, classify_form};
use crate::gate::{AuthPolicy, context};
use crate::hot::{HotRoute, new_request_id};

/// `x-amzn-RequestId`, as a constant: a `&str` name is parsed on every answer.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// Largest form body read to find out which query-protocol service it is for.
const MAX_FORM_BODY: usize = 4 * 1024 * 1024;

/// Every service this server mounts, by id. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    routers: BTreeMap<ServiceId, Router>,
    /// Lean routes tried before a service's router (see [`crate::hot`]).
    hot: BTreeMap<ServiceId, Arc<dyn HotRoute>>,
    /// Serves requests that name no service (their answer says so in its own format).
    default: ServiceId,
    /// Who must sign: a form whose service only its body can tell is not read for a caller
    /// who must sign and did not (see [`Services::signatures`]).
    policy: Option<Arc<AuthPolicy>>,
}

impl Services {
    /// `default` answers requests that name no service at all (Lambda: its
    /// `UnknownOperationException`); it must be mounted.
    pub fn new(default: ServiceId, router: Router) -> Self {
        let mut routers = BTreeMap::new();
        routers.insert(default, router);
        Self {
            inner: Arc::new(Inner {
                routers,
                hot: BTreeMap::new(),
                default,
                policy: None,
            }),
        }
    }

    /// Adds a service (replacing one of the same id).
    pub fn mount(self, id: ServiceId, router: Router) -> Self {
        self.edit(|inner| {
            inner.routers.insert(id, router);
        })
    }

    /// Adds a hot route for a mounted service: requests dispatched to `id` are offered to
    /// `route` first, and reach the service's router only when it gives them back.
    pub fn hot(self, id: ServiceId, route: Arc<dyn HotRoute>) -> Self {
        self.edit(|inner| {
            inner.hot.insert(id, route);
        })
    }

    fn edit(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            change(inner);
        } else {
            let mut inner = Inner {
                routers: self.inner.routers.clone(),
                hot: self.inner.hot.clone(),
                default: self.inner.default,
                policy: self.inner.policy.clone(),
            };
            change(&mut inner);
            self.inner = Arc::new(inner);
        }
        self
    }

    /// The server's signature rules. A signed request names its service in its credential
    /// scope, so a query-protocol form that names it only in its body (`Version`) is unsigned:
    /// from a caller who must sign (shared mode, execution environments) it is refused from
    /// its head, never read (up to 4 MiB of the memory budget per connection otherwise, for
    /// anyone who can connect).
    pub fn signatures(self, policy: Arc<AuthPolicy>) -> Self {
        self.edit(|inner| inner.policy = Some(policy))
    }

    pub fn serves(&self, id: ServiceId) -> bool {
        self.inner.routers.contains_key(&id)
    }

    /// The names of the services mounted, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.inner
            .routers
            .keys()
            .filter(|id| **id != ServiceId::Kindling)
            .map(|id| id.display_name())
            .collect()
    }

    /// Answers one request: dispatched to its service, or refused naming the service it asks
    /// for. Every response carries `x-amzn-RequestId` (the edge tells the service's answers from
    /// hyper's own by it).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let served = |id: ServiceId| self.serves(id);
        let (parts, body) = req.into_parts();
        let decision = classify(
            &RequestHead {
                method: &parts.method,
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
            },
            &served,
        );
        let target = match &decision {
            Decision::Service(id) => Some(*id),
            Decision::Unknown => Some(self.inner.default),
            Decision::NeedsForm | Decision::Unserved(_) => None,
        };
        if !matches!(decision, Decision::Unserved(_))
            && let Some(policy) = self.unchecked(&parts)
            && let Some(forgery) = crate::browser::forged(&parts, target, &policy.allowed_hosts)
        {
            return self
                .refuse(&parts, &Refusal::Browser(forgery))
                .map(Body::from);
        }
        let mut res = match decision {
            Decision::Service(id) => {
                self.route(id, Request::from_parts(parts, Body::new(body)))
                    .await
            }
            Decision::Unknown => {
                self.route(
                    self.inner.default,
                    Request::from_parts(parts, Body::new(body)),
                )
                .await
            }
            Decision::Unserved(name) => self.unserved(&parts, &name),
            Decision::NeedsForm => {
                let (origin, limits) = context(&parts);
                if self
                    .inner
                    .policy
                    .as_ref()
                    .is_some_and(|p| p.must_sign(origin))
                {
                    let refusal = Refusal::Unsigned {
                        has_authorization: parts.headers.contains_key(http::header::AUTHORIZATION),
                    };
                    return query::error_response(&refusal, "", &new_request_id()).map(Body::from);
                }
                let declared = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                match read_body(body, declared, MAX_FORM_BODY, &limits).await {
                    Ok(form) => match classify_form(&form.bytes, &served) {
                        // The service reads the form again and reserves budget for it
                        // then: this reservation goes first, so a request never waits for
                        // budget while holding some (with others queued, the two could wait
                        // on each other until the body timeout).
                        Decision::Service(id) => {
                            let bytes = form.into_bytes();
                            self.route(id, Request::from_parts(parts, Body::from(bytes)))
                                .await
                        }
                        Decision::Unserved(name) => self.unserved(&parts, &name),
                        _ => {
                            let bytes = form.into_bytes();
                            self.route(
                                self.inner.default,
                                Request::from_parts(parts, Body::from(bytes)),
                            )
                            .await
                        }
                    },
                    Err(e) => query::error_response(
                        &Refusal::BadForm(e.to_string()),
                        "",
                        &new_request_id(),
                    )
                    .map(Body::from),
                }
            }
        };
        if !res.headers().contains_key(REQUEST_ID)
            && let Ok(v) = HeaderValue::from_str(&new_request_id())
        {
            res.headers_mut().insert(REQUEST_ID, v);
        }
        res
    }

    async fn route(&self, id: ServiceId, req: Request<Body>) -> Response<Body> {
        let req = match self.inner.hot.get(&id) {
            Some(hot) => match hot.claim(req) {
                Ok(answer) => return answer.await,
                Err(req) => *req,
            },
            None => req,
        };
        match self.inner.routers.get(&id) {
            Some(router) => match router.clone().oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            },
            None => self.unserved(&req.into_parts().0, id.display_name()),
        }
    }

    /// A service Kindling does not serve, in the protocol the request speaks.
    fn unserved(&self, parts: &http::request::Parts, name: &str) -> Response<Body> {
        let refusal = Refusal::Unserved {
            name: name.to_string(),
            served: self.names().join(", "),
        };
        self.refuse(parts, &refusal).map(Body::from)
    }

    /// The dispatcher's own refusal, in the protocol the request speaks.
    fn refuse(
        &self,
        parts: &http::request::Parts,
        refusal: &Refusal,
    ) -> kindling_protocol::Response {
        let id = new_request_id();
        if parts.headers.contains_key("x-amz-target") {
            json::error_response(refusal, JsonVersion::V1_1, &id, "", None)
        } else if is_query(parts) {
            query::error_response(refusal, "", &id)
        } else {
            rest::json_error_response(refusal, &id)
        }
    }

    /// The policy, when this request's signature is not checked (local mode, not from an
    /// execution environment): an `Authorization` header it carries proves nothing.
    fn unchecked(&self, parts: &http::request::Parts) -> Option<&AuthPolicy> {
        self.inner
            .policy
            .as_deref()
            .filter(|p| !p.must_sign(context(parts).0))
    }
}

fn is_query(parts: &http::request::Parts) -> bool {
    parts.uri.query().is_some_and(|q| q.contains("Action="))
        || parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// The dispatcher's own answers.
enum Refusal {
    Unserved {
        name: String,
        served: String,
    },
    BadForm(String),
    /// A form from a caller who must sign, without a signature that names a service.
    Unsigned {
        has_authorization: bool,
    },
    /// A request a browser sent for another site, where signatures are not checked (see
    /// [`crate::browser`]).
    Browser(crate::browser::Forgery),
}

impl WireError for Refusal {
    fn status(&self) -> u16 {
        match self {
            Self::Unserved { .. } => StatusCode::NOT_IMPLEMENTED.as_u16(),
            Self::BadForm(_) => 400,
            Self::Browser(_) => 403,
            Self::Unsigned { has_authorization } => {
                if *has_authorization {
                    400
                } else {
                    403
                }
            }
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Unserved { .. } => "NotImplemented",
            Self::BadForm(_) => "MalformedQueryString",
            Self::Browser(_) => "AccessDeniedException",
            Self::Unsigned {
                has_authorization: true,
            } => "IncompleteSignature",
            Self::Unsigned {
                has_authorization: false,
            } => "MissingAuthenticationToken",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unserved { name, served } => {
                format!("Kindling does not serve {name} on this endpoint. It serves: {served}.")
            }
            Self::BadForm(reason) => format!("The request's form could not be read: {reason}"),
            Self::Browser(crate::browser::Forgery::CrossSite) => {
                "A web browser sent this unsigned request for another site (its Origin or \
                 Sec-Fetch-Site header says so). Open the console from http://127.0.0.1 or \
                 http://localhost."
                    .to_string()
            }
            Self::Browser(crate::browser::Forgery::Host) => {
                "This request is addressed to a host name that is not localhost, *.localhost or \
                 an IP address (a web page whose name resolves to this machine could send it: \
                 DNS rebinding). Address Kindling as 127.0.0.1 or localhost, or start it with \
                 --allowed-host NAME."
                    .to_string()
            }
            Self::Unsigned {
                has_authorization: true,
            } => "Authorization header requires a 'Credential' parameter of the form \
                  keyid/date/region/service/aws4_request."
                .to_string(),
            Self::Unsigned {
                has_authorization: false,
            } => "Request is missing Authentication Token".to_string(),
        }
    }
}

impl tower::Service<Request<hyper::body::Incoming>> for Services {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::any;
    use http_body_util::BodyExt;

    use std::time::Duration;

    use super::*;

    fn named(name: &'static str) -> Router {
        Router::new().fallback(any(move || async move { name }))
    }

    async fn send(services: &Services, req: Request<Body>) -> (StatusCode, String, bool) {
        let res = services.handle(req).await;
        let status = res.status();
        let has_id = res.headers().contains_key("x-amzn-requestid");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), has_id)
    }

    /// A policy that checks every signature (shared mode), with no keys.
    fn shared_mode() -> Arc<AuthPolicy> {
        Arc::new(AuthPolicy::new(
            kindling_auth::Credentials::new(),
            true,
            b"0123456789abcdef0123456789abcdef",
            "us-east-1",
        ))
    }

    fn services() -> Services {
        Services::new(ServiceId::Lambda, named("lambda"))
            .mount(ServiceId::Sqs, named("sqs"))
            .mount(ServiceId::Sns, named("sns"))
    }

    #[tokio::test]
    async fn routes_by_the_table_and_marks_every_response() {
        let s = services();
        let req = Request::get("/2015-03-31/functions")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&s, req).await, (StatusCode::OK, "lambda".into(), true));
        let req = Request::post("/")
            .header("x-amz-target", "AmazonSQS.ListQueues")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&s, req).await.1, "sqs");
        // An unsigned query-protocol request: the form's Version decides.
        let req = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("Action=ListTopics&Version=2010-03-31"))
            .unwrap();
        assert_eq!(send(&s, req).await.1, "sns");
        // Nothing names a service: the default answers.
        let req = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(send(&s, req).await.1, "lambda");
    }

    /// A body that never sends a byte (a client trickling, or stalled).
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn forms_that_must_be_signed_are_refused_from_their_head() {
        let shared = shared_mode();
        let s = services().signatures(shared);
        let form = |authorization: Option<&str>| {
            let mut req = Request::post("/")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("transfer-encoding", "chunked");
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            req.body(Body::new(Stalled)).unwrap()
        };
        // Before, the dispatcher waited for the form (holding up to 4 MiB of the budget).
        let answer = tokio::time::timeout(Duration::from_secs(2), send(&s, form(None)))
            .await
            .expect("answered without reading the body");
        assert_eq!(answer.0, StatusCode::FORBIDDEN);
        assert!(
            answer.1.contains("<Code>MissingAuthenticationToken</Code>"),
            "{}",
            answer.1
        );
        assert!(answer.2);
        let answer = tokio::time::timeout(Duration::from_secs(2), send(&s, form(Some("junk"))))
            .await
            .expect("answered without reading the body");
        assert_eq!(answer.0, StatusCode::BAD_REQUEST);
        assert!(
            answer.1.contains("<Code>IncompleteSignature</Code>"),
            "{}",
            answer.1
        );
        // Local mode: unsigned forms are read and routed by their Version.
        let local = Arc::new(AuthPolicy::local(
            b"0123456789abcdef0123456789abcdef",
            "us-east-1",
        ));
        let s = services().signatures(local);
        let req = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("Action=ListTopics&Version=2010-03-31"))
            .unwrap();
        assert_eq!(send(&s, req).await.1, "sns");
    }

    #[tokio::test]
    async fn local_requests_for_other_hosts_are_refused_before_routing() {
        let mut local = AuthPolicy::local(b"0123456789abcdef0123456789abcdef", "us-east-1");
        local.allowed_hosts = vec!["kindling".into()];
        let s = services().signatures(Arc::new(local));
        let get = |host: &str| {
            Request::get("/2015-03-31/functions")
                .header("host", host)
                .header("authorization", "AWS4-HMAC-SHA256 Credential=unchecked")
                .body(Body::empty())
                .unwrap()
        };
        let (status, body, has_id) = send(&s, get("rebind.evil.example:9001")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(has_id);
        assert!(body.contains("--allowed-host"), "{body}");
        assert_eq!(send(&s, get("kindling:9001")).await.1, "lambda");
        assert_eq!(send(&s, get("127.0.0.1:9001")).await.1, "lambda");
        // Where signatures are checked, the gate judges (and the Host is signed).
        let shared = shared_mode();
        let s = services().signatures(shared);
        assert_eq!(send(&s, get("rebind.evil.example")).await.1, "lambda");
    }

    /// Claims `POST /2015-03-31/hot` only.
    struct HotPath;

    impl HotRoute for HotPath {
        fn claim(&self, req: Request<Body>) -> Result<crate::HotFuture, crate::Declined> {
            if req.method() == http::Method::POST && req.uri().path() == "/2015-03-31/hot" {
                Ok(Box::pin(async { Response::new(Body::from("hot")) }))
            } else {
                Err(Box::new(req))
            }
        }
    }

    #[tokio::test]
    async fn hot_routes_serve_what_they_claim_after_dispatch() {
        let s = services().hot(ServiceId::Lambda, Arc::new(HotPath));
        let post = |path: &str| Request::post(path).body(Body::empty()).unwrap();
        assert_eq!(
            send(&s, post("/2015-03-31/hot")).await,
            (StatusCode::OK, "hot".into(), true),
            "claimed, and still marked with a request id"
        );
        // Given back: the service's router answers, with the request as it came.
        assert_eq!(send(&s, post("/2015-03-31/cold")).await.1, "lambda");
        let get = Request::get("/2015-03-31/hot").body(Body::empty()).unwrap();
        assert_eq!(send(&s, get).await.1, "lambda");
        // Only requests dispatched to the route's service are offered to it.
        let sqs = Request::post("/2015-03-31/hot")
            .header("x-amz-target", "AmazonSQS.ListQueues")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&s, sqs).await.1, "sqs");
    }

    #[tokio::test]
    async fn unserved_services_are_named_in_the_request_protocol() {
        let s = services();
        let req = Request::post("/")
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(Body::empty())
            .unwrap();
        let (status, body, has_id) = send(&s, req).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert!(has_id);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["__type"], "NotImplemented");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("X-Amz-Target DynamoDB_20120810")
        );
        assert!(v["message"].as_str().unwrap().contains("SQS"));

        let req = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("Action=CreateStack&Version=2010-05-15"))
            .unwrap();
        let (status, body, _) = send(&s, req).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert!(body.contains("<Code>NotImplemented</Code>"), "{body}");
        assert!(
            body.contains("Kindling does not serve CloudFormation"),
            "{body}"
        );

        let req = Request::get("/v2/apis").body(Body::empty()).unwrap();
        let (status, body, _) = send(&s, req).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert!(body.contains("API Gateway v2"), "{body}");
    }
}
