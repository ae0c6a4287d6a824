//! TagResource, UntagResource and ListTags.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use kindling_control::ControlError;
use kindling_control::input::TagResource;
use kindling_model::limits;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{no_content, ok};

pub async fn tag(
    State(s): State<ApiState>,
    Path(resource): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: TagResource = read_json(body, limits::MAX_CONTROL_REQUEST_BODY, "TagResource").await?;
    let tags = req.tags.ok_or_else(|| {
        ApiError::Control(ControlError::Validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null".into(),
        ))
    })?;
    let control = s.control.clone();
    blocking(move || control.tag_resource(&resource, tags)).await?;
    Ok(no_content())
}

pub async fn untag(
    State(s): State<ApiState>,
    Path(resource): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let keys = q.get_all("tagKeys");
    let control = s.control.clone();
    blocking(move || control.untag_resource(&resource, &keys)).await?;
    Ok(no_content())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(resource): Path<String>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let tags = blocking(move || control.list_tags(&resource)).await?;
    Ok(ok(&json!({ "Tags": tags })))
}
