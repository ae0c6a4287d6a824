//! Downloads of stored code packages: the target of `Code.Location` and layer `Content.Location`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kindling_control::ControlError;
use kindling_store::BlobId;

use crate::ApiState;
use crate::error::ApiError;

/// Serves a package by its hex SHA-256 (packages are at most 50 MB, read whole).
pub async fn download(
    State(s): State<ApiState>,
    Path(blob): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || {
        ApiError::Control(ControlError::NotFound(
            "The resource you requested does not exist.".into(),
        ))
    };
    let id = BlobId::parse(&blob).ok_or_else(missing)?;
    let bytes = tokio::fs::read(s.control.blobs().path(&id))
        .await
        .map_err(|_| missing())?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/zip")],
        bytes,
    )
        .into_response())
}
