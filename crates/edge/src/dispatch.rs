//! The dispatch table: which service a request is for.
//!
//! Clients do not name the service in the URL; they say it in other ways (see
//! `shared/aws-services-facts.md` §0). In order of precedence:
//! 1. hosts that name an invocation front door: `<id>.lambda-url.<…>` (function URLs) and
//!    `<id>.execute-api.<…>` (API Gateway invocations);
//! 2. Kindling's own paths (`/_kindling/…`) and the path forms of the front doors
//!    (`/lambda-url/<id>/…`, `/restapis/<id>/<stage>/_user_request_/…`,
//!    `/execute-api/<id>/…`), which work without DNS;
//! 3. the SigV4 signing name of the credential scope (`Authorization` header or presigned
//!    `X-Amz-Credential`): `lambda`, `sqs`, `apigateway` (v1, or v2 under `/v2/`), …;
//! 4. `X-Amz-Target: <prefix>.<Operation>` for the JSON protocols;
//! 5. the path: Lambda's date-versioned REST paths, API Gateway's resource paths, the OCI
//!    registry's `/v2/`;
//! 6. a form body whose `Version` names a query-protocol service (needs the body: the caller
//!    reads it, bounded, and asks [`classify_form`]);
//! 7. otherwise S3 path-style, when S3 is served.
//!
//! A request that names a service Kindling does not serve is [`Decision::Unserved`], so the
//! caller can say so instead of answering with some other service's 404.

use http::{HeaderMap, HeaderName, Method, header};

/// A service behind the one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceId {
    /// Lambda's REST API (control plane and Invoke).
    Lambda,
    /// Function URLs: HTTP requests that invoke a function.
    FunctionUrl,
    /// API Gateway v1 control plane (REST APIs).
    ApiGateway,
    /// API Gateway v2 control plane (HTTP APIs).
    ApiGatewayV2,
    /// Invocations through API Gateway (REST and HTTP APIs).
    ExecuteApi,
    Sqs,
    Sns,
    CloudFormation,
    Sts,
    Logs,
    Events,
    Scheduler,
    S3,
    /// The OCI distribution registry for container images.
    Registry,
    /// Kindling's own endpoints: console, metrics, health, code downloads.
    Kindling,
}

impl ServiceId {
    /// The name people know the service by (for error messages and logs).
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Lambda => "Lambda",
            Self::FunctionUrl => "Lambda function URLs",
            Self::ApiGateway => "API Gateway (REST APIs)",
            Self::ApiGatewayV2 => "API Gateway v2 (HTTP APIs)",
            Self::ExecuteApi => "API Gateway invocations",
            Self::Sqs => "SQS",
            Self::Sns => "SNS",
            Self::CloudFormation => "CloudFormation",
            Self::Sts => "STS",
            Self::Logs => "CloudWatch Logs",
            Self::Events => "EventBridge",
            Self::Scheduler => "EventBridge Scheduler",
            Self::S3 => "S3",
            Self::Registry => "the container registry",
            Self::Kindling => "Kindling",
        }
    }
}

/// Query-protocol services by the `Version` of their form.
const QUERY_VERSIONS: &[(&str, ServiceId)] = &[
    ("2012-11-05", ServiceId::Sqs),
    ("2010-03-31", ServiceId::Sns),
    ("2010-05-15", ServiceId::CloudFormation),
    ("2011-06-15", ServiceId::Sts),
];

/// JSON-protocol services by their `X-Amz-Target` prefix.
const TARGET_PREFIXES: &[(&str, ServiceId)] = &[
    ("AmazonSQS", ServiceId::Sqs),
    ("Logs_20140328", ServiceId::Logs),
    ("AWSEvents", ServiceId::Events),
];

/// API Gateway v1's top-level resource paths.
const APIGATEWAY_PATHS: &[&str] = &[
    "restapis",
    "account",
    "apikeys",
    "clientcertificates",
    "domainnames",
    "usageplans",
    "vpclinks",
    "tags",
];

/// API Gateway v2's top-level resource paths (under `/v2/`).
const APIGATEWAYV2_PATHS: &[&str] = &["apis", "domainnames", "vpclinks", "tags", "apimappings"];

/// What the dispatcher needs of a request before its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Service(ServiceId),
    /// A form-encoded request whose `Version` decides: read the (bounded) body and ask
    /// [`classify_form`].
    NeedsForm,
    /// A service Kindling does not serve, as the request names it (a signing name, a target
    /// prefix or a query version).
    Unserved(String),
    /// Nothing names a service.
    Unknown,
}

/// Decides from the request head, given the set of services this server mounts.
pub fn classify(head: &RequestHead<'_>, served: &dyn Fn(ServiceId) -> bool) -> Decision {
    let decide = |id: ServiceId| {
        if served(id) {
            Decision::Service(id)
        } else {
            Decision::Unserved(id.display_name().to_string())
        }
    };
    if let Some(id) = by_host(head.headers) {
        return decide(id);
    }
    if let Some(id) = by_kindling_path(head.path) {
        return decide(id);
    }
    if let Some(name) = signing_name(head) {
        return match by_signing_name(&name, head.path) {
            Some(id) => decide(id),
            None => Decision::Unserved(format!("the service signed as \"{name}\"")),
        };
    }
    if let Some(target) = header(head.headers, X_AMZ_TARGET) {
        let prefix = target.split('.').next().unwrap_or_default();
        return match TARGET_PREFIXES.iter().find(|(p, _)| *p == prefix) {
            Some((_, id)) => decide(*id),
            None => Decision::Unserved(format!("X-Amz-Target {prefix}")),
        };
    }
    if let Some(id) = by_path(head.path) {
        return decide(id);
    }
    if let Some(version) = query_param(head.query.unwrap_or(""), "Version")
        && query_param(head.query.unwrap_or(""), "Action").is_some()
    {
        return by_version(&version, served);
    }
    if is_form(head.headers) && *head.method == Method::POST {
        return Decision::NeedsForm;
    }
    if served(ServiceId::S3) {
        return Decision::Service(ServiceId::S3);
    }
    Decision::Unknown
}

/// Decides a form-encoded request by its `Version` (and `Action`) fields.
pub fn classify_form(form: &[u8], served: &dyn Fn(ServiceId) -> bool) -> Decision {
    let form = std::str::from_utf8(form).unwrap_or("");
    match (query_param(form, "Version"), query_param(form, "Action")) {
        (Some(version), Some(_)) => by_version(&version, served),
        _ if served(ServiceId::S3) => Decision::Service(ServiceId::S3),
        _ => Decision::Unknown,
    }
}

fn by_version(version: &str, served: &dyn Fn(ServiceId) -> bool) -> Decision {
    match QUERY_VERSIONS.iter().find(|(v, _)| *v == version) {
        Some((_, id)) if served(*id) => Decision::Service(*id),
        Some((_, id)) => Decision::Unserved(id.display_name().to_string()),
        None => Decision::Unserved(format!("the query API version {version}")),
    }
}

/// `X-Amz-Target` (JSON protocol services).
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");

/// A header's text. Names are constants: a `&str` would be parsed on every request.
fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_form(headers: &HeaderMap) -> bool {
    header(headers, header::CONTENT_TYPE).is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// Front doors named by the host: `<id>.lambda-url.<region>.<…>`, `<id>.execute-api.<…>`.
fn by_host(headers: &HeaderMap) -> Option<ServiceId> {
    let host = header(headers, header::HOST)?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let mut labels = host.split('.');
    let first = labels.next()?;
    if first.is_empty() {
        return None;
    }
    match (labels.next()?, labels.next()) {
        ("lambda-url", _) => Some(ServiceId::FunctionUrl),
        ("execute-api", _) => Some(ServiceId::ExecuteApi),
        // ECR's registry host: `<account>.dkr.ecr.<region>.<…>`.
        ("dkr", Some("ecr")) => Some(ServiceId::Registry),
        _ => None,
    }
}

/// Kindling's own paths and the DNS-free path forms of the front doors.
fn by_kindling_path(path: &str) -> Option<ServiceId> {
    let mut segments = path.trim_start_matches('/').split('/');
    match segments.next()? {
        "_kindling" | "metrics" => Some(ServiceId::Kindling),
        "lambda-url" => Some(ServiceId::FunctionUrl),
        "execute-api" => Some(ServiceId::ExecuteApi),
        "restapis" => {
            // `/restapis/<id>/<stage>/_user_request_/…` invokes; the rest is the v1 API.
            let (_id, _stage) = (segments.next()?, segments.next()?);
            (segments.next()? == "_user_request_").then_some(ServiceId::ExecuteApi)
        }
        _ => None,
    }
}

/// The signing name of a SigV4 request: the 4th element of the credential scope, from the
/// `Authorization` header or a presigned URL's `X-Amz-Credential`.
pub fn signing_name(head: &RequestHead<'_>) -> Option<String> {
    if let Some(auth) = header(head.headers, header::AUTHORIZATION) {
        let (_, rest) = auth.split_once("Credential=")?;
        let scope = rest.split([',', ' ']).next()?;
        return scope_service(scope);
    }
    let credential = query_param(head.query?, "X-Amz-Credential")?;
    scope_service(&credential)
}

/// `AKID/20261206/us-east-1/sqs/aws4_request` → `sqs` (SigV4a scopes have no region:
/// `AKID/20261206/sqs/aws4_request`).
fn scope_service(scope: &str) -> Option<String> {
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, _, service, "aws4_request"] | [_, _, service, "aws4_request"] => {
            Some((*service).to_string())
        }
        _ => None,
    }
}

fn by_signing_name(name: &str, path: &str) -> Option<ServiceId> {
    Some(match name {
        "lambda" => ServiceId::Lambda,
        "apigateway" if path.starts_with("/v2/") => ServiceId::ApiGatewayV2,
        "apigateway" => ServiceId::ApiGateway,
        "execute-api" => ServiceId::ExecuteApi,
        "sqs" => ServiceId::Sqs,
        "sns" => ServiceId::Sns,
        "cloudformation" => ServiceId::CloudFormation,
        "sts" => ServiceId::Sts,
        "logs" => ServiceId::Logs,
        "events" => ServiceId::Events,
        "scheduler" => ServiceId::Scheduler,
        "s3" => ServiceId::S3,
        _ => return None,
    })
}

/// Services named by the path alone (unsigned requests in local mode).
fn by_path(path: &str) -> Option<ServiceId> {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next()?;
    if is_api_date(first) {
        return Some(ServiceId::Lambda);
    }
    if first == "v2" {
        if is_registry_path(path) {
            return Some(ServiceId::Registry);
        }
        return match segments.next() {
            Some(s) if APIGATEWAYV2_PATHS.contains(&s) => Some(ServiceId::ApiGatewayV2),
            _ => Some(ServiceId::Registry),
        };
    }
    if APIGATEWAY_PATHS.contains(&first) {
        return Some(ServiceId::ApiGateway);
    }
    if first == "schedules" || first == "schedule-groups" {
        return Some(ServiceId::Scheduler);
    }
    None
}

/// The OCI distribution API's own shapes under `/v2/`: the base, the catalog, and paths
/// ending in `/tags/list` or holding `/manifests/` or `/blobs/`. API Gateway v2's paths
/// (`/v2/apis/…`, `/v2/tags/<arn>`) never have these, while a repository may be named `apis`
/// or `tags/x` (`/v2/apis/manifests/v1` is the registry's).
fn is_registry_path(path: &str) -> bool {
    matches!(path, "/v2" | "/v2/" | "/v2/_catalog")
        || path.ends_with("/tags/list")
        || path.contains("/manifests/")
        || path.contains("/blobs/")
}

/// `2015-03-31`: Lambda's date-versioned API paths.
fn is_api_date(segment: &str) -> bool {
    let b = segment.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The decoded value of one parameter of a query string or form.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn head<'a>(
        method: &'a Method,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            query,
            headers,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn all(_: ServiceId) -> bool {
        true
    }

    fn only_lambda(id: ServiceId) -> bool {
        id == ServiceId::Lambda
    }

    fn signed(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }

    #[test]
    fn signing_names_pick_services() {
        let get = Method::GET;
        let post = Method::POST;
        for (service, method, path, want) in [
            ("lambda", &get, "/2015-03-31/functions", ServiceId::Lambda),
            ("apigateway", &get, "/restapis", ServiceId::ApiGateway),
            ("apigateway", &get, "/v2/apis", ServiceId::ApiGatewayV2),
            ("sqs", &post, "/", ServiceId::Sqs),
            ("sqs", &post, "/000000000000/q", ServiceId::Sqs),
            ("s3", &get, "/restapis/key", ServiceId::S3),
            ("cloudformation", &post, "/", ServiceId::CloudFormation),
        ] {
            let h = headers(&[("authorization", &signed(service))]);
            assert_eq!(
                classify(&head(method, path, None, &h), &all),
                Decision::Service(want),
                "{service} {path}"
            );
        }
        let h = headers(&[("authorization", &signed("dynamodb"))]);
        assert_eq!(
            classify(&head(&post, "/", None, &h), &all),
            Decision::Unserved("the service signed as \"dynamodb\"".into())
        );
    }

    #[test]
    fn presigned_urls_carry_the_scope_in_the_query() {
        let h = HeaderMap::new();
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261206%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(
            classify(&head(&Method::GET, "/bucket/key", Some(q), &h), &all),
            Decision::Service(ServiceId::S3)
        );
        // SigV4a: no region in the scope.
        assert_eq!(
            scope_service("AKID/20261206/sqs/aws4_request").as_deref(),
            Some("sqs")
        );
    }

    #[test]
    fn unsigned_requests_by_target_path_and_form() {
        let post = Method::POST;
        let h = headers(&[("x-amz-target", "AmazonSQS.SendMessage")]);
        assert_eq!(
            classify(&head(&post, "/", None, &h), &all),
            Decision::Service(ServiceId::Sqs)
        );
        let h = headers(&[("x-amz-target", "DynamoDB_20120810.GetItem")]);
        assert!(matches!(
            classify(&head(&post, "/", None, &h), &all),
            Decision::Unserved(_)
        ));
        let none = HeaderMap::new();
        assert_eq!(
            classify(
                &head(&Method::GET, "/2015-03-31/functions", None, &none),
                &all
            ),
            Decision::Service(ServiceId::Lambda)
        );
        assert_eq!(
            classify(&head(&Method::GET, "/v2/", None, &none), &all),
            Decision::Service(ServiceId::Registry)
        );
        assert_eq!(
            classify(&head(&Method::GET, "/v2/apis", None, &none), &all),
            Decision::Service(ServiceId::ApiGatewayV2)
        );
        for registry in [
            "/v2/apis/manifests/v1",
            "/v2/tags/x/tags/list",
            "/v2/domainnames/blobs/uploads/",
            "/v2/_catalog",
            "/v2/team/app/blobs/sha256:ab",
        ] {
            assert_eq!(
                classify(&head(&Method::GET, registry, None, &none), &all),
                Decision::Service(ServiceId::Registry),
                "{registry}"
            );
        }
        let ecr = headers(&[("host", "123456789012.dkr.ecr.us-east-1.localhost:9001")]);
        assert_eq!(
            classify(&head(&Method::GET, "/v2/apis/tags/list", None, &ecr), &all),
            Decision::Service(ServiceId::Registry)
        );
        let form = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )]);
        assert_eq!(
            classify(&head(&post, "/", None, &form), &all),
            Decision::NeedsForm
        );
        assert_eq!(
            classify_form(b"Action=Publish&Version=2010-03-31&Message=x", &all),
            Decision::Service(ServiceId::Sns)
        );
        assert_eq!(
            classify_form(b"Action=Publish&Version=2010-03-31", &only_lambda),
            Decision::Unserved("SNS".into())
        );
        assert_eq!(
            classify(
                &head(
                    &Method::GET,
                    "/",
                    Some("Action=GetCallerIdentity&Version=2011-06-15"),
                    &none
                ),
                &all
            ),
            Decision::Service(ServiceId::Sts)
        );
    }

    #[test]
    fn front_doors_by_host_and_by_path() {
        let get = Method::GET;
        let h = headers(&[("host", "abc123.lambda-url.us-east-1.localhost:9001")]);
        assert_eq!(
            classify(&head(&get, "/any/path", None, &h), &all),
            Decision::Service(ServiceId::FunctionUrl)
        );
        let h = headers(&[("host", "a1b2c3.execute-api.localhost")]);
        assert_eq!(
            classify(&head(&get, "/prod/pets", None, &h), &all),
            Decision::Service(ServiceId::ExecuteApi)
        );
        let none = HeaderMap::new();
        for (path, want) in [
            ("/lambda-url/abc123/x", ServiceId::FunctionUrl),
            (
                "/restapis/a1/prod/_user_request_/pets",
                ServiceId::ExecuteApi,
            ),
            ("/restapis/a1/resources", ServiceId::ApiGateway),
            ("/execute-api/a1/pets", ServiceId::ExecuteApi),
            ("/_kindling/code/abc", ServiceId::Kindling),
        ] {
            assert_eq!(
                classify(&head(&get, path, None, &none), &all),
                Decision::Service(want),
                "{path}"
            );
        }
        // A front door wins over a signature (IAM-authorized invocations are signed).
        let h = headers(&[
            ("host", "a1.execute-api.localhost"),
            ("authorization", &signed("execute-api")),
        ]);
        assert_eq!(
            classify(&head(&get, "/prod", None, &h), &all),
            Decision::Service(ServiceId::ExecuteApi)
        );
        // AWS_IAM function URLs are signed for `lambda`: both forms stay function URLs.
        let h = headers(&[("authorization", &signed("lambda"))]);
        assert_eq!(
            classify(&head(&Method::POST, "/lambda-url/abc123/", None, &h), &all),
            Decision::Service(ServiceId::FunctionUrl)
        );
        let h = headers(&[
            ("host", "abc123.lambda-url.us-east-1.localhost"),
            ("authorization", &signed("lambda")),
        ]);
        assert_eq!(
            classify(&head(&get, "/2015-03-31/functions", None, &h), &all),
            Decision::Service(ServiceId::FunctionUrl)
        );
    }

    #[test]
    fn unserved_services_are_named_and_s3_is_the_fallback() {
        let none = HeaderMap::new();
        let get = Method::GET;
        assert_eq!(
            classify(&head(&get, "/v2/apis", None, &none), &only_lambda),
            Decision::Unserved("API Gateway v2 (HTTP APIs)".into())
        );
        assert_eq!(
            classify(&head(&get, "/mybucket/key", None, &none), &only_lambda),
            Decision::Unknown
        );
        assert_eq!(
            classify(&head(&get, "/mybucket/key", None, &none), &all),
            Decision::Service(ServiceId::S3)
        );
        assert!(!is_api_date("2015-0331xx"));
        assert!(is_api_date("2021-10-31"));
    }
}
