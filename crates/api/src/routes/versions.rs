//! PublishVersion and ListVersionsByFunction.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kindling_control::input::PublishVersion;
use kindling_model::function::Phase;
use kindling_model::limits;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{config, json_status, ok, with_marker};

pub async fn publish(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: PublishVersion =
        read_json(body, limits::MAX_CONTROL_REQUEST_BODY, "PublishVersion").await?;
    let control = s.control.clone();
    let rec = blocking(move || control.publish_version(&name, req)).await?;
    Ok(json_status(
        StatusCode::CREATED,
        &config(&rec, s.control.arn(), true, Phase::Settled)?,
    ))
}

pub async fn list(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let control = s.control.clone();
    let page = blocking(move || control.list_versions(&name, marker.as_deref(), max_items)).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|v| config(v, s.control.arn(), true, Phase::Listed))
        .collect::<Result<_, _>>()?;
    Ok(ok(&with_marker(
        json!({ "Versions": items }),
        page.next_marker,
    )))
}
