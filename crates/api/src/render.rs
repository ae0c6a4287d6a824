//! Rendering domain results as Lambda's JSON, and the small response helpers the routes share.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kindling_model::ArnContext;
use kindling_model::function::{FunctionConfiguration, Phase, VersionRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;

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

pub fn config(
    rec: &VersionRecord,
    ctx: &ArnContext,
    qualified: bool,
    phase: Phase,
) -> Result<Value, ApiError> {
    Ok(serde_json::to_value(FunctionConfiguration::render(
        rec, ctx, qualified, phase,
    ))?)
}

/// Adds `NextMarker` to a list body when there is a next page.
pub fn with_marker(mut body: Value, next: Option<String>) -> Value {
    if let Some(m) = next {
        body["NextMarker"] = json!(m);
    }
    body
}

/// Where a code blob can be downloaded: a presigned URL valid for 10 minutes.
pub fn code_location(s: &ApiState, headers: &HeaderMap, blob: &str) -> String {
    s.auth
        .code_urls
        .location(headers, blob, std::time::SystemTime::now())
}
