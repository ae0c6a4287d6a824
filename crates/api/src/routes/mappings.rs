//! Create/Get/Update/Delete/ListEventSourceMappings and Put/GetFunctionRecursionConfig.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kindling_esm::Mappings;
use kindling_esm::input::{CreateMappingInput, UpdateMappingInput};
use kindling_model::limits;
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, read_json};
use crate::render::{json_status, ok, with_marker};

fn service(s: &ApiState) -> Result<&Mappings, ApiError> {
    s.esm.as_ref().ok_or(ApiError::DataPlaneDisabled)
}

pub async fn create(State(s): State<ApiState>, body: Body) -> Result<Response, ApiError> {
    let input: CreateMappingInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "CreateEventSourceMapping",
    )
    .await?;
    let v = service(&s)?.create(input).await?;
    Ok(json_status(StatusCode::ACCEPTED, &v))
}

pub async fn get(
    State(s): State<ApiState>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(&service(&s)?.get(&uuid).await?))
}

pub async fn update(
    State(s): State<ApiState>,
    Path(uuid): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let input: UpdateMappingInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "UpdateEventSourceMapping",
    )
    .await?;
    let v = service(&s)?.update(&uuid, input).await?;
    Ok(json_status(StatusCode::ACCEPTED, &v))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let v = service(&s)?.delete(&uuid).await?;
    Ok(json_status(StatusCode::ACCEPTED, &v))
}

pub async fn list(State(s): State<ApiState>, q: QueryParams) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let (items, next) = service(&s)?
        .list(
            q.get("EventSourceArn"),
            q.get("FunctionName"),
            q.get("Marker"),
            max_items,
        )
        .await?;
    Ok(ok(&with_marker(
        json!({ "EventSourceMappings": items }),
        next,
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecursionInput {
    recursive_loop: Option<String>,
}

pub async fn put_recursion(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let input: RecursionInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "PutFunctionRecursionConfig",
    )
    .await?;
    let v = service(&s)?
        .put_recursion_config(&name, input.recursive_loop.as_deref())
        .await?;
    Ok(ok(&v))
}

pub async fn get_recursion(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(&service(&s)?.recursion_config(&name).await?))
}
