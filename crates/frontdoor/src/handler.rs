//! One function URL request, from head to response.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode, Version};
use kindling_auth::{Payload, PendingSignature};
use kindling_control::UrlTarget;
use kindling_edge::gate::context;
use kindling_httpevents::{HttpRequest, RequestContext, v2};
use kindling_model::limits;
use kindling_model::url::{Cors, InvokeMode, UrlAuthType};
use kindling_scheduler::{InvokeRequest, InvokeResponse};
use serde_json::json;

use crate::FrontDoorState;
use crate::address::{address, domain_name};
use crate::cors;
use crate::error::FrontDoorError;
use crate::streaming;

type Shared = Arc<FrontDoorState>;

/// Headers of the function's response that describe the connection or framing, which Kindling
/// sets itself.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

pub(crate) async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let request_id = kindling_edge::new_request_id();
    let (parts, body) = req.into_parts();
    match serve(&s, &request_id, &parts, body).await {
        Ok(res) => res,
        Err(e) => {
            match &e {
                FrontDoorError::Internal(_) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        request_id,
                        "function URL request failed"
                    )
                }
                FrontDoorError::Function(_)
                | FrontDoorError::BadResult(_)
                | FrontDoorError::BadStream(_)
                | FrontDoorError::Unrunnable(_) => {
                    tracing::info!(error = %e, request_id, "function URL answered 502")
                }
                _ => tracing::debug!(error = %e, request_id, "function URL request refused"),
            }
            e.response(&request_id)
        }
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The URL's target: from memory when cached, else read on the blocking pool.
async fn target(s: &Shared, url_id: &str) -> Result<UrlTarget, FrontDoorError> {
    if let Some(t) = s.control.cached_url_target(url_id) {
        return Ok(t);
    }
    let control = Arc::clone(&s.control);
    let id = url_id.to_owned();
    tokio::task::spawn_blocking(move || control.url_target(&id))
        .await
        .map_err(|e| FrontDoorError::Internal(Box::new(e)))??
        .ok_or(FrontDoorError::NotFound)
}

async fn serve(
    s: &Shared,
    request_id: &str,
    parts: &Parts,
    body: Body,
) -> Result<Response, FrontDoorError> {
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let addr = address(header(parts, "host"), parts.uri.path()).ok_or(FrontDoorError::NotFound)?;
    let target = target(s, addr.url_id).await?;
    let cors_config = target.record.cors.as_ref();

    if let Some(c) = cors_config
        && cors::is_preflight(&parts.method, &parts.headers)
    {
        return Ok(preflight(c, parts, request_id));
    }

    let pending = authenticate(s, &target, parts)?;
    let (_, body_limits) = context(parts);
    let declared = header(parts, "content-length").and_then(|v| v.parse::<u64>().ok());
    let body = kindling_edge::read_body(body, declared, limits::SYNC_PAYLOAD, &body_limits).await?;
    let authorizer = match pending {
        Some(p) => Some(finish_signature(s, p, parts, &body.bytes)?),
        None => None,
    };

    let region = &s.control.arn().region;
    let url_id = addr.url_id;
    let source_ip = context_peer(parts);
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: addr.path.to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        protocol: protocol(parts.version).to_owned(),
        headers: event_headers(parts, &source_ip),
        body: body.bytes.clone(),
        source_ip,
    };
    drop(body);
    let context = RequestContext {
        account_id: s.control.arn().account_id.clone(),
        api_id: url_id.to_owned(),
        domain_name: domain_name(url_id, region),
        domain_prefix: url_id.to_owned(),
        request_id: request_id.to_owned(),
        stage: "$default".to_owned(),
        time_epoch_ms: started_ms,
    };
    let mut options = v2::Options::function_url();
    options.authorizer = authorizer;
    let event = v2::event(&request, &context, &options);
    if event.len() > limits::SYNC_PAYLOAD {
        return Err(FrontDoorError::TooLarge {
            limit: limits::SYNC_PAYLOAD,
        });
    }

    let invoke_target = invoke_target(s, &target).await?;
    let begun = Instant::now();
    let invoke = InvokeRequest {
        target: invoke_target,
        request_id: request_id.to_owned(),
        payload: Bytes::from(event),
        client_context: None,
        trace_id: header(parts, "x-amzn-trace-id").map(str::to_owned),
        tail: false,
        enqueued_ms: None,
    };
    let result = if target.record.invoke_mode == InvokeMode::ResponseStream {
        match s.scheduler.invoke_response(invoke).await? {
            InvokeResponse::Buffered(result) => result,
            InvokeResponse::Stream(stream) => {
                let (status, mut headers, body) = streaming::respond(stream).await?;
                if let Some(c) = cors_config {
                    cors::apply(c, header(parts, "origin"), &mut headers);
                }
                return Ok(response(status, headers, body, request_id, None));
            }
        }
    } else {
        s.scheduler.invoke(invoke).await?
    };
    if let Some(e) = &result.function_error {
        return Err(FrontDoorError::Function(e.as_str().to_owned()));
    }
    let mapped = v2::response(&result.payload)?;
    if !(200..=599).contains(&mapped.status) {
        return Err(FrontDoorError::BadResult(
            kindling_httpevents::ResponseError::BadStatusCode,
        ));
    }
    let mut headers = mapped.headers;
    headers.retain(|(n, _)| !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)));
    if let Some(c) = cors_config {
        cors::apply(c, header(parts, "origin"), &mut headers);
    }
    tracing::trace!(elapsed = ?begun.elapsed(), "function URL invocation");
    Ok(response(
        mapped.status,
        headers,
        Body::from(mapped.body),
        request_id,
        Some(&result.trace_id),
    ))
}

/// The HTTP answer: the function's status and headers (those that are valid HTTP), Kindling's
/// request id and the trace header.
fn response(
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    request_id: &str,
    trace_id: Option<&str>,
) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = res.headers_mut();
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                h.append(n, v);
            }
            _ => tracing::debug!(
                header = name,
                "function URL response header skipped: not valid HTTP"
            ),
        }
    }
    set(h, "x-amzn-RequestId", request_id);
    if let Some(t) = trace_id {
        set(h, "X-Amzn-Trace-Id", t);
    }
    res
}

/// The request's header lines as the function sees them, with the `X-Forwarded-*` headers
/// Lambda adds in front of a function URL (frameworks build absolute URLs from them): the
/// client's address appended to `X-Forwarded-For`, Kindling's scheme (`http`) and port.
fn event_headers(parts: &Parts, source_ip: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(parts.headers.len() + 3);
    let mut forwarded_for = None;
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == "x-forwarded-for" {
            forwarded_for = Some(value);
            continue;
        }
        if name == "x-forwarded-proto" || name == "x-forwarded-port" {
            continue;
        }
        out.push((name.as_str().to_owned(), value.to_owned()));
    }
    let chain = match forwarded_for {
        Some(prior) => format!("{prior}, {source_ip}"),
        None => source_ip.to_owned(),
    };
    let port = header(parts, "host")
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    out.push(("x-forwarded-for".to_owned(), chain));
    out.push(("x-forwarded-proto".to_owned(), "http".to_owned()));
    out.push(("x-forwarded-port".to_owned(), port.to_owned()));
    out
}

fn set(h: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn context_peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<kindling_edge::RequestContext>()
        .and_then(|c| c.peer)
        .map_or_else(|| "127.0.0.1".to_owned(), |p| p.ip().to_string())
}

/// A preflight answered by Lambda itself: 200, no body, the CORS headers when allowed.
fn preflight(c: &Cors, parts: &Parts, request_id: &str) -> Response {
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    for (name, value) in cors::preflight(c, &parts.headers) {
        set(h, name, &value);
    }
    set(h, "x-amzn-RequestId", request_id);
    res
}

/// Whether AWS_IAM URLs check signatures: when Kindling has operators' keys or requires
/// signatures (without keys, as for the rest of Kindling's local mode, they are not checked).
fn iam_enforced(s: &Shared) -> bool {
    let p = s.gate.policy();
    p.require_signature || !p.operators.is_empty()
}

fn auth_request<'a>(
    parts: &'a Parts,
    headers: &'a [(&'a str, &'a [u8])],
    payload: Payload<'a>,
) -> kindling_auth::Request<'a> {
    kindling_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers,
        payload,
    }
}

fn header_pairs(parts: &Parts) -> Vec<(&str, &[u8])> {
    parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect()
}

/// The URL's `AuthType`: NONE needs the public statement; AWS_IAM a signature's head (the
/// signature over the body is finished once it is read).
fn authenticate(
    s: &Shared,
    target: &UrlTarget,
    parts: &Parts,
) -> Result<Option<PendingSignature>, FrontDoorError> {
    match target.record.auth_type {
        UrlAuthType::None => {
            if target.public {
                Ok(None)
            } else {
                tracing::info!(
                    function = target.function_arn,
                    "function URL with AuthType NONE refused: the resource policy has no statement allowing lambda:InvokeFunctionUrl to principal \"*\" (add-permission --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE)"
                );
                Err(FrontDoorError::Forbidden(
                    "no public resource-policy statement",
                ))
            }
        }
        // Nobody checks the signature (local mode without keys): the URL is still not a web
        // page's to call, as the rest of the local API (DNS rebinding, other sites' pages).
        UrlAuthType::AwsIam if !iam_enforced(s) => {
            if kindling_edge::browser::sent_for_another_site(parts, &s.gate.policy().allowed_hosts)
            {
                tracing::info!(
                    function = target.function_arn,
                    "AWS_IAM function URL refused: a web page of another site sent the request (its Origin, Sec-Fetch-Site or Host says so) and signatures are not checked"
                );
                return Err(FrontDoorError::Forbidden("a web page of another site"));
            }
            Ok(None)
        }
        UrlAuthType::AwsIam => {
            let headers = header_pairs(parts);
            let request = auth_request(parts, &headers, Payload::Bytes(&[]));
            s.gate
                .verifier()
                .check_head(&request, SystemTime::now())
                .map(Some)
                .map_err(FrontDoorError::Auth)
        }
    }
}

/// Proves the signature over the body; the caller as `requestContext.authorizer.iam`.
fn finish_signature(
    s: &Shared,
    pending: PendingSignature,
    parts: &Parts,
    body: &[u8],
) -> Result<serde_json::Value, FrontDoorError> {
    let headers = header_pairs(parts);
    let request = auth_request(parts, &headers, Payload::Bytes(body));
    let identity = pending
        .finish(s.gate.verifier(), &request)
        .map_err(FrontDoorError::Auth)?;
    let account = &s.control.arn().account_id;
    let (user_arn, user_id) = match &identity.session {
        Some(session) => (
            session.assumed_role_arn(),
            format!("{}:{}", identity.access_key_id, session.function_name()),
        ),
        None => (
            format!("arn:aws:iam::{account}:user/{}", identity.access_key_id),
            identity.access_key_id.clone(),
        ),
    };
    Ok(json!({
        "iam": {
            "accessKey": identity.access_key_id,
            "accountId": account,
            "callerId": user_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": user_arn,
            "userId": user_id,
        }
    }))
}

/// What runs: the URL's function at `$LATEST` or through its alias (weights drawn per call).
async fn invoke_target(
    s: &Shared,
    target: &UrlTarget,
) -> Result<kindling_scheduler::InvokeTarget, FrontDoorError> {
    if let Some(t) = s
        .control
        .cached_invoke_target(&target.record.function_name, target.record.alias())?
    {
        return Ok(t);
    }
    let name = target.record.function_name.clone();
    let qualifier = target.record.alias().map(str::to_owned);
    let control = Arc::clone(&s.control);
    Ok(
        tokio::task::spawn_blocking(move || control.invoke_target(&name, qualifier.as_deref()))
            .await
            .map_err(|e| FrontDoorError::Internal(Box::new(e)))??,
    )
}
