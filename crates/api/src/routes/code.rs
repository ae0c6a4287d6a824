//! Downloads of stored code packages: the target of `Code.Location` and layer
//! `Content.Location`, presigned URLs that expire (S3-style SigV4 query signatures made with a
//! key derived from the server secret).

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kindling_auth::Payload;
use kindling_control::ControlError;
use kindling_store::BlobId;

use crate::ApiState;
use crate::error::ApiError;

/// Serves a package by its hex SHA-256 (packages are at most 50 MB, read whole) when the URL's
/// signature is valid and unexpired.
pub async fn download(
    State(s): State<ApiState>,
    Path(blob): Path<String>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = kindling_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload: Payload::Bytes(&[]),
    };
    s.auth
        .code_urls
        .verify(&request, SystemTime::now())
        .map_err(ApiError::CodeUrl)?;
    let missing = || {
        ApiError::Control(ControlError::NotFound(
            "The resource you requested does not exist.".into(),
        ))
    };
    let id = BlobId::parse(&blob).ok_or_else(missing)?;
    // From this node's copy, or from the shared store (several nodes) when it has none yet.
    let blobs = s.control.blobs().clone();
    let bytes = tokio::task::spawn_blocking(move || blobs.read(&id))
        .await
        .map_err(|_| missing())?
        .map_err(|_| missing())?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/zip")],
        bytes,
    )
        .into_response())
}
