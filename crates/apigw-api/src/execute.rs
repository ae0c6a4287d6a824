//! API invocations: which API, stage and route a request is for, the event, the function call
//! and API Gateway's answers (its gateway responses for what goes wrong).
//!
//! Addressing: Host `<api-id>.execute-api.<anything>` with the path as sent; the DNS-free
//! path form `/execute-api/<api-id>/<path>` (HTTP APIs' `apiEndpoint`; REST APIs put the
//! stage first); `/restapis/<api-id>/<stage>/_user_request_/<path>` (REST APIs).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use kindling_apigw::http_api::{CompiledRoute, Cors};
use kindling_apigw::rest_api::CompiledResource;
use kindling_apigw::routing::{self, split_path};
use kindling_apigw::target::{FunctionTarget, TargetError};
use kindling_apigw::{Deployed, DeployedHttp, DeployedRest};
use kindling_httpevents::{BodyEncoding, HttpRequest, HttpResponse, RequestContext, v1, v2};
use kindling_scheduler::InvokeResult;
use percent_encoding::percent_decode_str;

use crate::ExecuteState;
use crate::invoke::CallError;

/// API Gateway's request payload limit.
const MAX_REQUEST: usize = 10 * 1024 * 1024;
/// Lambda's synchronous payload limit (the event).
const MAX_EVENT: usize = 6 * 1024 * 1024;

/// Where the request says it is going.
struct Address {
    api_id: String,
    /// Fixed by the `/restapis/…/_user_request_` form.
    stage: Option<String>,
    /// The path after the addressing prefix, still percent-encoded.
    path: String,
}

fn address(parts: &Parts) -> Option<Address> {
    let path = parts.uri.path();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some((id, rest)) = host.split_once('.')
        && rest.starts_with("execute-api.")
        && !id.is_empty()
    {
        return Some(Address {
            api_id: id.to_string(),
            stage: None,
            path: path.to_string(),
        });
    }
    if let Some(rest) = path.strip_prefix("/execute-api/") {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(Address {
            api_id: id.to_string(),
            stage: None,
            path: format!("/{tail}"),
        });
    }
    let rest = path.strip_prefix("/restapis/")?;
    let mut it = rest.splitn(4, '/');
    let (id, stage, marker) = (it.next()?, it.next()?, it.next()?);
    if marker != "_user_request_" {
        return None;
    }
    Some(Address {
        api_id: id.to_string(),
        stage: Some(decode(stage)),
        path: format!("/{}", it.next().unwrap_or("")),
    })
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A gateway response: `{"message": …}` with API Gateway's headers.
fn gateway(status: u16, message: &str, error_type: Option<&str>, request_id: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-ErrorType", t);
    }
    set_ids(h, request_id);
    res
}

fn set_ids(h: &mut http::HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v.clone());
        h.insert("apigw-requestid", v);
    }
}

pub(crate) async fn serve(State(state): State<ExecuteState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let not_found = |id: &str| gateway(404, "Not Found", Some("NotFoundException"), id);
    let Some(addr) = address(&parts) else {
        return not_found(&request_id);
    };
    let deployed = match state.service.cached(&addr.api_id) {
        Some(d) => d,
        None => {
            let svc = Arc::clone(&state.service);
            let id = addr.api_id.clone();
            match tokio::task::spawn_blocking(move || svc.deployed(&id)).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    tracing::error!(api = %addr.api_id, error = ?e, "reading the API failed");
                    return gateway(500, "Internal Server Error", None, &request_id);
                }
                Err(_) => return gateway(500, "Internal Server Error", None, &request_id),
            }
        }
    };
    let Some(deployed) = deployed else {
        return not_found(&request_id);
    };
    let (_, limits) = kindling_edge::gate::context(&parts);
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match kindling_edge::read_body(body, declared, MAX_REQUEST, &limits).await {
        Ok(b) => b.bytes.clone(),
        Err(kindling_edge::BodyError::TooLarge { .. }) => {
            return gateway(413, "Request Too Long", None, &request_id);
        }
        Err(e) => {
            tracing::info!(error = %e, "API request body could not be read");
            return gateway(400, "Bad Request", None, &request_id);
        }
    };
    let call = Call {
        state: &state,
        parts: &parts,
        body,
        request_id: &request_id,
    };
    match deployed.as_ref() {
        Deployed::Http { disabled: true, .. } | Deployed::Rest { disabled: true, .. } => {
            gateway(403, "Forbidden", Some("ForbiddenException"), &request_id)
        }
        Deployed::Http { stages, .. } => {
            // A first segment naming a stage selects it; else the `$default` stage.
            let segs = split_path(&addr.path);
            let named = segs
                .first()
                .map(|s| decode(s))
                .filter(|s| s != "$default")
                .and_then(|s| stages.get(&s));
            let (stage, route_path) = match named {
                Some(stage) => (stage, format!("/{}", segs[1..].join("/"))),
                None => match stages.get("$default") {
                    Some(stage) => (stage, addr.path.clone()),
                    None => return not_found(&request_id),
                },
            };
            call.http(stage, &addr.path, &route_path).await
        }
        Deployed::Rest { stages, .. } => {
            let (stage_name, path) = match &addr.stage {
                Some(s) => (s.clone(), addr.path.clone()),
                None => {
                    let segs = split_path(&addr.path);
                    let Some(first) = segs.first() else {
                        return missing_token(&request_id);
                    };
                    let rest = addr.path.trim_start_matches('/');
                    let tail = rest.split_once('/').map_or("", |(_, t)| t);
                    (decode(first), format!("/{tail}"))
                }
            };
            match stages.get(&stage_name) {
                Some(stage) => call.rest(stage, &path).await,
                None => gateway(403, "Forbidden", Some("ForbiddenException"), &request_id),
            }
        }
    }
}

fn missing_token(request_id: &str) -> Response {
    gateway(
        403,
        "Missing Authentication Token",
        Some("MissingAuthenticationTokenException"),
        request_id,
    )
}

struct Call<'a> {
    state: &'a ExecuteState,
    parts: &'a Parts,
    body: Bytes,
    request_id: &'a str,
}

impl Call<'_> {
    fn http_request(&self, path: &str) -> HttpRequest {
        let p = self.parts;
        let mut headers: Vec<(String, String)> = p
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
        // The connection's address, as API Gateway sees its client; X-Forwarded-For gets it
        // appended (a client's own value is kept in front, never trusted as the source).
        let source_ip = p
            .extensions
            .get::<kindling_edge::RequestContext>()
            .and_then(|c| c.peer)
            .map_or_else(|| "127.0.0.1".to_string(), |a| a.ip().to_string());
        let forwarded = match header(p, "x-forwarded-for") {
            Some(prior) => format!("{prior}, {source_ip}"),
            None => source_ip.clone(),
        };
        headers.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-port"
            )
        });
        headers.push(("x-forwarded-for".into(), forwarded));
        headers.push(("x-forwarded-proto".into(), "http".into()));
        let port = header(p, "host")
            .and_then(|h| h.rsplit_once(':'))
            .map_or("80", |(_, port)| port);
        headers.push(("x-forwarded-port".into(), port.to_string()));
        HttpRequest {
            method: p.method.to_string(),
            path: path.to_string(),
            query: p.uri.query().unwrap_or("").to_string(),
            protocol: match p.version {
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_2 => "HTTP/2.0",
                _ => "HTTP/1.1",
            }
            .into(),
            headers,
            body: self.body.clone(),
            source_ip,
        }
    }

    fn context(&self, api_id: &str, stage: &str) -> RequestContext {
        let host = header(self.parts, "host").unwrap_or("localhost");
        let domain = host.rsplit_once(':').map_or(host, |(h, _)| h);
        RequestContext {
            account_id: self.state.service.arn().account_id.clone(),
            api_id: api_id.to_string(),
            domain_name: domain.to_string(),
            domain_prefix: domain.split('.').next().unwrap_or(domain).to_string(),
            request_id: self.request_id.to_string(),
            stage: stage.to_string(),
            time_epoch_ms: now_ms(),
        }
    }

    fn source_arn(&self, api_id: &str, stage: &str, tail: &str) -> String {
        let a = self.state.service.arn();
        format!(
            "arn:aws:execute-api:{}:{}:{api_id}/{stage}/{tail}",
            a.region, a.account_id
        )
    }

    /// The function of an integration, as parsed when its deployment was compiled.
    fn target(
        function: Option<&Result<FunctionTarget, TargetError>>,
    ) -> Result<&FunctionTarget, String> {
        match function {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the integration has no URI".to_string()),
        }
    }

    // ---- HTTP APIs ----

    async fn http(&self, stage: &DeployedHttp, raw_path: &str, route_path: &str) -> Response {
        let id = self.request_id;
        let method = self.parts.method.as_str();
        if let Some(cors) = &stage.cors
            && self.parts.method == Method::OPTIONS
            && header(self.parts, "origin").is_some()
            && header(self.parts, "access-control-request-method").is_some()
        {
            return preflight(cors, self.parts, id);
        }
        let matched: Option<(&CompiledRoute, routing::Params)> =
            routing::best(&stage.routes, method, route_path)
                .or_else(|| stage.default_route.as_ref().map(|r| (r, Vec::new())));
        let Some((route, params)) = matched else {
            return self.with_cors(
                stage,
                gateway(404, "Not Found", Some("NotFoundException"), id),
            );
        };
        let Some(integration) = &route.integration else {
            return self.with_cors(
                stage,
                gateway(404, "Not Found", Some("NotFoundException"), id),
            );
        };
        let target = match Self::target(route.function.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(api = %stage.api_id, route = %route.route_key, error = %e, "API integration misconfigured");
                return self.with_cors(stage, gateway(500, "Internal Server Error", None, id));
            }
        };
        let tail = if route.route_key == "$default" {
            "$default".to_string()
        } else {
            let path = route.route_key.split_once(' ').map_or("", |(_, p)| p);
            format!("{method}{path}")
        };
        let source_arn = self.source_arn(&stage.api_id, &stage.stage, &tail);
        let request = self.http_request(raw_path);
        let context = self.context(&stage.api_id, &stage.stage);
        let path_parameters = (!params.is_empty()).then_some(params);
        let stage_variables =
            (!stage.stage_variables.is_empty()).then(|| stage.stage_variables.clone());
        let v2 = integration.payload_format_version == "2.0";
        let event = if v2 {
            let mut o = v2::Options::http_api(route.route_key.clone());
            o.path_parameters = path_parameters;
            o.stage_variables = stage_variables;
            v2::event(&request, &context, &o)
        } else {
            let resource = match route.route_key.split_once(' ') {
                Some((_, p)) => p.to_string(),
                None => route.route_key.clone(),
            };
            v1::event(
                &request,
                &context,
                &v1::Options {
                    resource,
                    path_parameters,
                    stage_variables,
                    context_path: raw_path.to_string(),
                    resource_id: route.route_key.clone(),
                    extended_request_id: self.request_id.to_string(),
                    body_encoding: BodyEncoding::Auto,
                    version_field: true,
                    ..v1::Options::default()
                },
            )
        };
        if event.len() > MAX_EVENT {
            return self.with_cors(stage, gateway(413, "Request Too Long", None, id));
        }
        let result = self
            .invoke(target, &source_arn, event, integration.timeout_in_millis)
            .await;
        let res = match result {
            Ok(r) if r.function_error.is_some() => {
                tracing::info!(api = %stage.api_id, route = %route.route_key, function = %target.name, "function error: API answers 500");
                gateway(500, "Internal Server Error", None, id)
            }
            Ok(r) => {
                let mapped = if v2 {
                    v2::response(&r.payload)
                } else {
                    v1::response(&r.payload, true)
                };
                match mapped {
                    Ok(resp) => to_response(resp, id),
                    Err(e) => {
                        tracing::warn!(api = %stage.api_id, route = %route.route_key, function = %target.name, error = %e, "malformed Lambda proxy response");
                        gateway(500, "Internal Server Error", None, id)
                    }
                }
            }
            Err(CallError::Timeout(t)) => {
                tracing::warn!(api = %stage.api_id, route = %route.route_key, function = %target.name, timeout_ms = t.as_millis() as u64, "integration timed out");
                gateway(503, "Service Unavailable", None, id)
            }
            Err(e) => {
                tracing::warn!(api = %stage.api_id, route = %route.route_key, function = %target.name, error = %e, "API integration refused");
                gateway(500, "Internal Server Error", None, id)
            }
        };
        self.with_cors(stage, res)
    }

    /// Adds the CORS headers the configuration asks for (overriding the function's).
    fn with_cors(&self, stage: &DeployedHttp, mut res: Response) -> Response {
        let (Some(cors), Some(origin)) = (&stage.cors, header(self.parts, "origin")) else {
            return res;
        };
        let Some(allowed) = allowed_origin(cors, origin) else {
            return res;
        };
        let h = res.headers_mut();
        put(h, "access-control-allow-origin", &allowed);
        if cors.allow_credentials == Some(true) {
            put(h, "access-control-allow-credentials", "true");
        }
        if let Some(e) = cors.expose_headers.as_ref().filter(|e| !e.is_empty()) {
            put(h, "access-control-expose-headers", &e.join(","));
        }
        if allowed != "*" {
            put(h, "vary", "Origin");
        }
        res
    }

    fn trace(&self) -> Option<String> {
        header(self.parts, "x-amzn-trace-id").map(str::to_string)
    }

    /// Runs the integration's function with `event`, waiting at most its timeout (50 ms at
    /// least), with the request's trace header.
    async fn invoke(
        &self,
        target: &FunctionTarget,
        source_arn: &str,
        event: Vec<u8>,
        timeout_in_millis: i64,
    ) -> Result<InvokeResult, CallError> {
        let timeout = Duration::from_millis(timeout_in_millis.max(50) as u64);
        self.state
            .invoker
            .call(
                target,
                source_arn,
                Bytes::from(event),
                timeout,
                self.trace(),
            )
            .await
    }

    // ---- REST APIs ----

    async fn rest(&self, stage: &DeployedRest, path: &str) -> Response {
        let id = self.request_id;
        let method = self.parts.method.as_str();
        let matched: Option<(&CompiledResource, routing::Params)> =
            routing::best(&stage.resources, method, path);
        let Some((resource, params)) = matched else {
            return missing_token(id);
        };
        let Some(integration) = &resource.integration else {
            tracing::warn!(api = %stage.api_id, resource = %resource.resource_path, "no integration defined for method");
            return gateway(500, "Internal server error", None, id);
        };
        if integration.kind == "MOCK" {
            return mock(integration.integration_responses.as_ref(), id);
        }
        let target = match Self::target(resource.function.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(api = %stage.api_id, resource = %resource.resource_path, error = %e, "API integration misconfigured");
                return gateway(500, "Internal server error", None, id);
            }
        };
        let tail = format!("{method}{}", resource.resource_path);
        let source_arn = self.source_arn(&stage.api_id, &stage.stage, tail.trim_end_matches('/'));
        let request = self.http_request(path);
        let context = self.context(&stage.api_id, &stage.stage);
        let binary = !stage.binary_media_types.is_empty()
            && header(self.parts, "content-type")
                .is_some_and(|ct| media_matches(&stage.binary_media_types, ct));
        let event = v1::event(
            &request,
            &context,
            &v1::Options {
                resource: resource.resource_path.clone(),
                path_parameters: (!params.is_empty()).then_some(params),
                stage_variables: (!stage.stage_variables.is_empty())
                    .then(|| stage.stage_variables.clone()),
                context_path: format!("/{}{}", stage.stage, path),
                resource_id: resource.resource_id.clone(),
                extended_request_id: self.request_id.to_string(),
                body_encoding: if binary {
                    BodyEncoding::Base64
                } else {
                    BodyEncoding::Text
                },
                version_field: false,
                ..v1::Options::default()
            },
        );
        if event.len() > MAX_EVENT {
            return gateway(413, "Request Too Long", None, id);
        }
        let result = self
            .invoke(target, &source_arn, event, integration.timeout_in_millis)
            .await;
        match result {
            Ok(r) if r.function_error.is_some() => {
                tracing::info!(api = %stage.api_id, resource = %resource.resource_path, function = %target.name, "function error: API answers 502");
                gateway(502, "Internal server error", None, id)
            }
            Ok(r) => match v1::response(&r.payload, false) {
                Ok(plain) => {
                    let accept = header(self.parts, "accept").and_then(|a| a.split(',').next());
                    let decode = !stage.binary_media_types.is_empty()
                        && (accept.is_some_and(|a| media_matches(&stage.binary_media_types, a))
                            || plain
                                .header("content-type")
                                .is_some_and(|ct| media_matches(&stage.binary_media_types, ct)));
                    let resp = if decode {
                        v1::response(&r.payload, true)
                    } else {
                        Ok(plain)
                    };
                    match resp {
                        Ok(resp) => to_response(resp, id),
                        Err(e) => {
                            tracing::warn!(api = %stage.api_id, function = %target.name, error = %e, "malformed Lambda proxy response");
                            gateway(502, "Internal server error", None, id)
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(api = %stage.api_id, resource = %resource.resource_path, function = %target.name, error = %e, "malformed Lambda proxy response");
                    gateway(502, "Internal server error", None, id)
                }
            },
            Err(CallError::Timeout(t)) => {
                tracing::warn!(api = %stage.api_id, function = %target.name, timeout_ms = t.as_millis() as u64, "integration timed out");
                gateway(504, "Endpoint request timed out", None, id)
            }
            Err(e) => {
                tracing::warn!(api = %stage.api_id, resource = %resource.resource_path, function = %target.name, error = %e, "API integration refused");
                gateway(500, "Internal server error", None, id)
            }
        }
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn put(h: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether a media type matches one of `types` (`image/*` and `*/*` wildcards).
fn media_matches(types: &[String], media: &str) -> bool {
    let media = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (mt, ms) = media.split_once('/').unwrap_or((&media, ""));
    types.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        let (tt, ts) = t.split_once('/').unwrap_or((&t, ""));
        (tt == "*" || tt == mt) && (ts == "*" || ts == ms)
    })
}

fn allowed_origin(cors: &Cors, origin: &str) -> Option<String> {
    let origins = cors.allow_origins.as_ref()?;
    if origins.iter().any(|o| o == "*") {
        return Some("*".into());
    }
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
        .then(|| origin.to_string())
}

/// API Gateway's answer to a CORS preflight (the integration is not invoked).
fn preflight(cors: &Cors, parts: &Parts, request_id: &str) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    set_ids(h, request_id);
    let origin = header(parts, "origin").unwrap_or("");
    let Some(allowed) = allowed_origin(cors, origin) else {
        return res;
    };
    let asked = header(parts, "access-control-request-method").unwrap_or("");
    let methods = cors.allow_methods.clone().unwrap_or_default();
    let method_ok = methods
        .iter()
        .any(|m| m == "*" || m.eq_ignore_ascii_case(asked));
    if !method_ok {
        return res;
    }
    put(h, "access-control-allow-origin", &allowed);
    put(h, "access-control-allow-methods", &methods.join(","));
    if let Some(hs) = cors.allow_headers.as_ref().filter(|h| !h.is_empty()) {
        put(h, "access-control-allow-headers", &hs.join(","));
    }
    if cors.allow_credentials == Some(true) {
        put(h, "access-control-allow-credentials", "true");
    }
    if let Some(age) = cors.max_age.filter(|a| *a >= 0) {
        put(h, "access-control-max-age", &age.to_string());
    }
    if let Some(e) = cors.expose_headers.as_ref().filter(|e| !e.is_empty()) {
        put(h, "access-control-expose-headers", &e.join(","));
    }
    res
}

/// A MOCK integration (CORS preflights in imported APIs): 200 with the literal header values
/// of its 200 integration response (`method.response.header.X: "'value'"`).
fn mock(responses: Option<&serde_json::Value>, request_id: &str) -> Response {
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    set_ids(h, request_id);
    if let Some(params) = responses
        .and_then(|r| r.get("200"))
        .and_then(|r| r.get("responseParameters"))
        .and_then(serde_json::Value::as_object)
    {
        for (k, v) in params {
            let (Some(name), Some(value)) = (
                k.strip_prefix("method.response.header."),
                v.as_str()
                    .and_then(|v| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))),
            ) else {
                continue;
            };
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
                h.append(n, v);
            }
        }
    }
    res
}

/// The function's mapped response as an HTTP response.
fn to_response(resp: HttpResponse, request_id: &str) -> Response {
    let mut res = Response::new(Body::from(resp.body));
    *res.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    let h = res.headers_mut();
    for (name, value) in resp.headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(lower), HeaderValue::from_str(&value)) {
            h.append(n, v);
        }
    }
    set_ids(h, request_id);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: &str, path: &str) -> Parts {
        let (p, ()) = http::Request::get(path)
            .header("host", host)
            .body(())
            .expect("request")
            .into_parts();
        p
    }

    #[test]
    fn addressing_forms() {
        let a = address(&parts("abc123.execute-api.localhost:9001", "/prod/pets")).expect("host");
        assert_eq!(
            (a.api_id.as_str(), a.stage, a.path.as_str()),
            ("abc123", None, "/prod/pets")
        );
        let a = address(&parts("127.0.0.1:9001", "/execute-api/abc123/pets/1")).expect("path");
        assert_eq!((a.api_id.as_str(), a.path.as_str()), ("abc123", "/pets/1"));
        let a = address(&parts("127.0.0.1:9001", "/execute-api/abc123")).expect("root");
        assert_eq!(a.path, "/");
        let a = address(&parts(
            "127.0.0.1",
            "/restapis/abc123/dev/_user_request_/a/b",
        ))
        .expect("rest");
        assert_eq!((a.stage.as_deref(), a.path.as_str()), (Some("dev"), "/a/b"));
        assert!(address(&parts("127.0.0.1", "/restapis/abc123/dev/x")).is_none());
    }

    #[test]
    fn media_types() {
        let types = vec![
            "image/*".to_string(),
            "application/octet-stream".to_string(),
        ];
        assert!(media_matches(&types, "image/png"));
        assert!(media_matches(&types, "application/octet-stream; charset=x"));
        assert!(!media_matches(&types, "application/json"));
        assert!(media_matches(&["*/*".to_string()], "text/plain"));
    }
}
