//! Rendering domain results as Lambda's JSON, and the small response helpers the routes share.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kindling_model::ArnContext;
use kindling_model::function::{FunctionConfiguration, Phase, VersionRecord};
use serde::Serialize;
use serde_json::{Value, json};

/// A JSON response with a status.
pub fn json_status<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

pub fn ok<T: Serialize>(body: &T) -> Response {
    json_status(StatusCode::OK, body)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn config(rec: &VersionRecord, ctx: &ArnContext, qualified: bool, phase: Phase) -> Value {
    serde_json::to_value(FunctionConfiguration::render(rec, ctx, qualified, phase))
        .unwrap_or(Value::Null)
}

/// Adds `NextMarker` to a list body when there is a next page.
pub fn with_marker(mut body: Value, next: Option<String>) -> Value {
    if let Some(m) = next {
        body["NextMarker"] = json!(m);
    }
    body
}

/// The base URL the client reached us at (for download locations).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Where a code blob can be downloaded.
pub fn code_location(headers: &HeaderMap, blob: &str) -> String {
    format!("{}/_kindling/code/{blob}", base_url(headers))
}
