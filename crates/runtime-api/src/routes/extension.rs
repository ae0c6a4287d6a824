//! The Extensions API (2020-01-01): register, event/next, init/error, exit/error; and the
//! Telemetry (2022-07-01) and Logs (2020-08-15) subscriptions, which are stored only.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Res, SMALL_BODY_LIMIT, header_string, read_body};
use crate::error::{ApiError, ExtensionErrorKind, accepted, json_response};
use crate::state::{ExtensionErrorKindPosted, Poll, Shared};
use crate::types::{TelemetryApi, TelemetrySubscription};

const EXTENSION_NAME: HeaderName = HeaderName::from_static("lambda-extension-name");
const EXTENSION_ID: HeaderName = HeaderName::from_static("lambda-extension-identifier");
const ACCEPT_FEATURE: HeaderName = HeaderName::from_static("lambda-extension-accept-feature");
const EVENT_ID: HeaderName = HeaderName::from_static("lambda-extension-event-identifier");
const ERROR_TYPE: HeaderName = HeaderName::from_static("lambda-extension-function-error-type");

#[derive(Deserialize)]
struct RegisterRequest {
    #[serde(default)]
    events: Vec<String>,
    #[serde(default, rename = "configurationKeys")]
    configuration_keys: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterResponse<'a> {
    function_name: &'a str,
    function_version: &'a str,
    handler: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

/// `POST /extension/register`.
pub(super) async fn register(shared: &Shared, req: Request<Incoming>) -> Result<Res, ApiError> {
    let (parts, body) = req.into_parts();
    let name = header_string(&parts.headers, &EXTENSION_NAME).ok_or_else(|| {
        ApiError::extension(
            ExtensionErrorKind::InvalidExtensionName,
            "Empty extension name",
        )
    })?;
    let wants_account_id = parts.headers.get_all(&ACCEPT_FEATURE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("accountId"))
        })
    });
    let invalid_format =
        |message: String| ApiError::extension(ExtensionErrorKind::InvalidRequestFormat, message);
    let body = read_body(body, SMALL_BODY_LIMIT).await?;
    let request: RegisterRequest = if body.bytes.iter().all(u8::is_ascii_whitespace) {
        RegisterRequest {
            events: Vec::new(),
            configuration_keys: None,
        }
    } else {
        serde_json::from_slice(&body.bytes)
            .map_err(|e| invalid_format(format!("Invalid registration body: {e}")))?
    };
    if request.configuration_keys.is_some() {
        return Err(invalid_format(
            "configurationKeys is deprecated and not accepted".into(),
        ));
    }
    let (mut invoke, mut shutdown) = (false, false);
    for event in &request.events {
        match event.as_str() {
            "INVOKE" => invoke = true,
            "SHUTDOWN" => shutdown = true,
            other => {
                return Err(ApiError::extension(
                    ExtensionErrorKind::InvalidEventType,
                    format!("Unknown event type: {other}"),
                ));
            }
        }
    }
    let id = shared.register_extension(&name, invoke, shutdown)?;

    let config = &shared.config;
    let answer = RegisterResponse {
        function_name: &config.function_name,
        function_version: &config.function_version,
        handler: config.handler.as_deref().unwrap_or(""),
        account_id: wants_account_id.then_some(config.account_id.as_str()),
    };
    let json = serde_json::to_vec(&answer).unwrap_or_default();
    let mut res = json_response(StatusCode::OK, Bytes::from(json));
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(EXTENSION_ID, v);
    }
    Ok(res)
}

/// The caller's `Lambda-Extension-Identifier`.
fn extension_id(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(EXTENSION_ID).ok_or_else(|| {
        ApiError::extension(
            ExtensionErrorKind::MissingExtensionIdentifier,
            "Missing Lambda-Extension-Identifier header",
        )
    })?;
    value.to_str().map_err(|_| {
        ApiError::extension(
            ExtensionErrorKind::InvalidExtensionIdentifier,
            "Invalid Lambda-Extension-Identifier header",
        )
    })
}

/// `GET /extension/event/next`: long poll for the next INVOKE or SHUTDOWN.
pub(super) async fn next(shared: &Shared, req: Request<Incoming>) -> Result<Res, ApiError> {
    let poll = shared.extension_next(extension_id(req.headers())?)?;
    let event = match poll {
        Poll::Ready(event) => event,
        Poll::Wait(rx) => rx.await.map_err(|_| {
            ApiError::extension(
                ExtensionErrorKind::InvalidExtensionState,
                "This event/next request was replaced by a newer one or the extension failed",
            )
        })?,
    };
    let mut res = Response::new(Full::new(event));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert(EVENT_ID, v);
    }
    Ok(res)
}

/// `POST /extension/init/error` and `POST /extension/exit/error`.
pub(super) async fn post_error(
    shared: &Shared,
    kind: ExtensionErrorKindPosted,
    req: Request<Incoming>,
) -> Result<Res, ApiError> {
    let (parts, body) = req.into_parts();
    let id = extension_id(&parts.headers)?;
    let error_type = header_string(&parts.headers, &ERROR_TYPE);
    let body = read_body(body, shared.config.max_response_bytes).await?;
    shared.extension_error(id, kind, error_type, body.bytes)?;
    Ok(accepted())
}

#[derive(Deserialize)]
struct SubscribeRequest {
    #[serde(default)]
    types: Vec<String>,
    destination: Destination,
}

#[derive(Deserialize)]
struct Destination {
    protocol: String,
    #[serde(rename = "URI")]
    uri: String,
}

/// `PUT /2022-07-01/telemetry` and `PUT /2020-08-15/logs`: validated, stored, and delivered
/// to from now on.
pub(super) async fn subscribe(
    shared: &Shared,
    api: TelemetryApi,
    req: Request<Incoming>,
) -> Result<Res, ApiError> {
    let (parts, body) = req.into_parts();
    let id = extension_id(&parts.headers)?;
    let raw = read_body(body, SMALL_BODY_LIMIT).await?.bytes;
    let request: SubscribeRequest = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::InvalidSubscription(format!("Invalid subscription body: {e}")))?;
    if !matches!(request.destination.protocol.as_str(), "HTTP" | "TCP") {
        return Err(ApiError::InvalidSubscription(format!(
            "Unsupported destination protocol: {}",
            request.destination.protocol
        )));
    }
    if crate::telemetry::deliver::parse_uri(&request.destination.uri).is_none() {
        return Err(ApiError::InvalidSubscription(format!(
            "Invalid destination URI: {} (expected http://HOST:PORT inside the execution environment, HOST being {}{})",
            request.destination.uri,
            crate::telemetry::deliver::DESTINATION_HOSTS,
            if request.destination.uri.contains('[') {
                "; IPv6 addresses are not: deliveries connect to 127.0.0.1"
            } else {
                ""
            }
        )));
    }
    shared.subscribe(
        id,
        TelemetrySubscription {
            extension: String::new(),
            api,
            protocol: request.destination.protocol,
            uri: request.destination.uri,
            types: request.types,
            raw,
        },
    )?;
    Ok(json_response(StatusCode::OK, Bytes::from_static(b"\"OK\"")))
}
