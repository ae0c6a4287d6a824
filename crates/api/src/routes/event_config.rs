//! Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use kindling_control::EventConfigView;
use kindling_control::input::EventInvokeConfigInput;
use kindling_model::limits;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{no_content, ok, with_marker};

fn render(v: &EventConfigView) -> Value {
    v.config.render(&v.function_arn)
}

/// Put (replace) or Update (merge) of a configuration.
async fn write(
    s: ApiState,
    name: String,
    q: QueryParams,
    body: Body,
    merge: bool,
) -> Result<Response, ApiError> {
    let operation = if merge {
        "UpdateFunctionEventInvokeConfig"
    } else {
        "PutFunctionEventInvokeConfig"
    };
    let input: EventInvokeConfigInput =
        read_json(body, limits::MAX_CONTROL_REQUEST_BODY, operation).await?;
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v = blocking(move || {
        if merge {
            control.update_event_invoke_config(&name, qualifier.as_deref(), input)
        } else {
            control.put_event_invoke_config(&name, qualifier.as_deref(), input)
        }
    })
    .await?;
    Ok(ok(&render(&v)))
}

pub async fn put(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    write(s, name, q, body, false).await
}

pub async fn update(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    write(s, name, q, body, true).await
}

pub async fn get(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v = blocking(move || control.get_event_invoke_config(&name, qualifier.as_deref())).await?;
    Ok(ok(&render(&v)))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    blocking(move || control.delete_event_invoke_config(&name, qualifier.as_deref())).await?;
    Ok(no_content())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let control = s.control.clone();
    let page =
        blocking(move || control.list_event_invoke_configs(&name, marker.as_deref(), max_items))
            .await?;
    let items: Vec<Value> = page.items.iter().map(render).collect();
    Ok(ok(&with_marker(
        json!({ "FunctionEventInvokeConfigs": items }),
        page.next_marker,
    )))
}
