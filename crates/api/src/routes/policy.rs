//! AddPermission, GetPolicy and RemovePermission.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kindling_control::input::AddPermission;
use kindling_model::limits;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{json_status, no_content, ok};

pub async fn add(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    let req: AddPermission =
        read_json(body, limits::MAX_CONTROL_REQUEST_BODY, "AddPermission").await?;
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let statement =
        blocking(move || control.add_permission(&name, qualifier.as_deref(), req)).await?;
    Ok(json_status(
        StatusCode::CREATED,
        &json!({ "Statement": statement.to_string() }),
    ))
}

pub async fn get(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let p = blocking(move || control.get_policy(&name, qualifier.as_deref())).await?;
    Ok(ok(
        &json!({ "Policy": p.document.to_string(), "RevisionId": p.revision_id }),
    ))
}

pub async fn remove(
    State(s): State<ApiState>,
    Path((name, sid)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let revision = q.get("RevisionId").map(str::to_string);
    let control = s.control.clone();
    blocking(move || {
        control.remove_permission(&name, &sid, qualifier.as_deref(), revision.as_deref())
    })
    .await?;
    Ok(no_content())
}
