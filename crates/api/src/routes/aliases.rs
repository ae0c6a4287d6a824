//! CreateAlias, GetAlias, UpdateAlias, DeleteAlias and ListAliases.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kindling_control::input::{CreateAlias, UpdateAlias};
use kindling_model::alias::AliasConfiguration;
use kindling_model::limits;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{json_status, no_content, ok, with_marker};

pub async fn create(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateAlias = read_json(body, limits::MAX_CONTROL_REQUEST_BODY, "CreateAlias").await?;
    let control = s.control.clone();
    let rec = blocking(move || control.create_alias(&name, req)).await?;
    Ok(json_status(
        StatusCode::CREATED,
        &AliasConfiguration::render(&rec, s.control.arn()),
    ))
}

pub async fn get(
    State(s): State<ApiState>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let rec = blocking(move || control.get_alias(&name, &alias)).await?;
    Ok(ok(&AliasConfiguration::render(&rec, s.control.arn())))
}

pub async fn update(
    State(s): State<ApiState>,
    Path((name, alias)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: UpdateAlias = read_json(body, limits::MAX_CONTROL_REQUEST_BODY, "UpdateAlias").await?;
    let control = s.control.clone();
    let raw = name.clone();
    let rec = blocking(move || control.update_alias(&raw, &alias, req)).await?;
    // An alias with provisioned concurrency takes it to its new version.
    super::sync_provisioned(&s, &name).await;
    Ok(ok(&AliasConfiguration::render(&rec, s.control.arn())))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let raw = name.clone();
    blocking(move || control.delete_alias(&raw, &alias)).await?;
    super::sync_provisioned(&s, &name).await;
    Ok(no_content())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let version = q.get("FunctionVersion").map(str::to_string);
    let control = s.control.clone();
    let page = blocking(move || {
        control.list_aliases(&name, version.as_deref(), marker.as_deref(), max_items)
    })
    .await?;
    let items: Vec<AliasConfiguration> = page
        .items
        .iter()
        .map(|a| AliasConfiguration::render(a, s.control.arn()))
        .collect();
    Ok(ok(&with_marker(
        json!({ "Aliases": items }),
        page.next_marker,
    )))
}
