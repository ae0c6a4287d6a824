//! Request paths as decoded segments, and the control planes' shared plumbing: the gate,
//! JSON bodies, the blocking pool and rendering.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use kindling_edge::gate::Access;
use kindling_protocol::rest::json_error_response;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ControlError;
use crate::{ControlState, MAX_CONTROL_BODY};

/// The path's segments, percent-decoded (`%24default` → `$default`).
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// A decoded query parameter.
pub(crate) fn query(parts: &Parts, name: &str) -> Option<String> {
    let q = parts.uri.query()?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Checks the signature and access, and reads the body.
pub(crate) async fn admit(
    state: &ControlState,
    req: Request,
) -> Result<(Parts, Bytes), ControlError> {
    let (parts, body) = req.into_parts();
    let admission = state.gate.check_head(&parts)?;
    let (caller, body) = state
        .gate
        .read_body(admission, &parts, body, MAX_CONTROL_BODY)
        .await?;
    let access = if parts.method == http::Method::GET {
        Access::Read
    } else {
        Access::Write
    };
    let action = format!("apigateway:{}", parts.method);
    let arn = state.service.arn();
    let resource = format!(
        "arn:aws:apigateway:{}::{}",
        arn.region,
        parts.uri.path().trim_start_matches("/v2")
    );
    state
        .gate
        .authorize(&caller, access, &action, &resource, false)?;
    Ok((parts, body.bytes.clone()))
}

/// The JSON input of an operation; an empty body is `{}`.
pub(crate) fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ControlError::BadBody(e.to_string()))
}

/// Runs a domain call on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ControlError>
where
    F: FnOnce() -> Result<T, kindling_apigw::ApigwError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ControlError::Task),
    }
}

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

pub(crate) fn empty(status: u16) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    res
}

/// Renders a result, logging failures of Kindling's own.
pub(crate) fn render(result: Result<Response, ControlError>, request_id: &str) -> Response {
    let mut res = match result {
        Ok(res) => res,
        Err(e) => {
            if matches!(
                e,
                ControlError::Task | ControlError::Domain(kindling_apigw::ApigwError::Store(_))
            ) {
                tracing::error!(error = ?e, "API Gateway control plane failed");
            }
            json_error_response(&e, request_id).map(Body::from)
        }
    };
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        res.headers_mut().insert("x-amzn-RequestId", v);
    }
    res
}

/// The scheme and authority clients reached us at (for `apiEndpoint`).
pub(crate) fn origin(parts: &Parts) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}
