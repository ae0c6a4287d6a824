//! PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions
//! and DeleteLayerVersion.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kindling_control::ControlError;
use kindling_control::input::PublishLayerVersion;
use kindling_model::limits;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{code_location, json_status, no_content, ok, with_marker};

pub async fn publish(
    State(s): State<ApiState>,
    Path(layer): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: PublishLayerVersion =
        read_json(body, limits::MAX_CODE_REQUEST_BODY, "PublishLayerVersion").await?;
    let control = s.control.clone();
    let rec = blocking(move || control.publish_layer_version(&layer, req)).await?;
    let location = code_location(&s, &headers, &rec.code.blob);
    Ok(json_status(
        StatusCode::CREATED,
        &rec.full(s.control.arn(), &location),
    ))
}

pub async fn get(
    State(s): State<ApiState>,
    Path((layer, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let rec = blocking(move || control.get_layer_version(&layer, &version)).await?;
    let location = code_location(&s, &headers, &rec.code.blob);
    Ok(ok(&rec.full(s.control.arn(), &location)))
}

/// `GET /2018-10-31/layers`: ListLayers, or GetLayerVersionByArn with `find=LayerVersion`.
pub async fn list_or_find(
    State(s): State<ApiState>,
    q: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    match q.get("find") {
        Some("LayerVersion") => {
            let arn = q.get("Arn").map(str::to_string).ok_or_else(|| {
                ApiError::Control(ControlError::Validation(
                    "1 validation error detected: Value null at 'arn' failed to satisfy constraint: Member must not be null".into(),
                ))
            })?;
            let rec = blocking(move || control.get_layer_version_by_arn(&arn)).await?;
            let location = code_location(&s, &headers, &rec.code.blob);
            Ok(ok(&rec.full(s.control.arn(), &location)))
        }
        Some(_) => Err(ApiError::UnknownOperation),
        None => {
            let max_items = q.max_items()?;
            let marker = q.get("Marker").map(str::to_string);
            let rt = q.get("CompatibleRuntime").map(str::to_string);
            let arch = q.get("CompatibleArchitecture").map(str::to_string);
            let page = blocking(move || {
                control.list_layers(rt.as_deref(), arch.as_deref(), marker.as_deref(), max_items)
            })
            .await?;
            let ctx = s.control.arn();
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|l| {
                    json!({
                        "LayerName": l.name,
                        "LayerArn": ctx.layer_arn(&l.name),
                        "LatestMatchingVersion": l.latest.list_item(ctx),
                    })
                })
                .collect();
            Ok(ok(&with_marker(
                json!({ "Layers": items }),
                page.next_marker,
            )))
        }
    }
}

pub async fn list_versions(
    State(s): State<ApiState>,
    Path(layer): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let rt = q.get("CompatibleRuntime").map(str::to_string);
    let arch = q.get("CompatibleArchitecture").map(str::to_string);
    let control = s.control.clone();
    let page = blocking(move || {
        control.list_layer_versions(
            &layer,
            rt.as_deref(),
            arch.as_deref(),
            marker.as_deref(),
            max_items,
        )
    })
    .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|l| l.list_item(s.control.arn()))
        .collect();
    Ok(ok(&with_marker(
        json!({ "LayerVersions": items }),
        page.next_marker,
    )))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((layer, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    blocking(move || control.delete_layer_version(&layer, &version)).await?;
    Ok(no_content())
}
