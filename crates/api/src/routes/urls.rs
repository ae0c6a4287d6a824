//! Create/Get/Update/Delete/ListFunctionUrlConfig(s).
//!
//! A `FunctionUrl` is minted as `http://<Host of this request>/lambda-url/<url-id>/`: the path
//! form works from curl, Python, Node and browsers with no DNS; the edge also routes the host
//! form `<url-id>.lambda-url.<region>.localhost`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kindling_control::FunctionUrlView;
use kindling_control::input::FunctionUrlConfigInput;
use kindling_model::limits;
use kindling_model::timefmt::lambda_timestamp;
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{json_status, no_content, ok, with_marker};

/// The authority clients reached this server by, if it looks like one (else `localhost`).
fn authority(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        })
        .unwrap_or("localhost")
}

/// The URL clients call: the path form on this server's authority.
pub fn function_url(headers: &HeaderMap, url_id: &str) -> String {
    format!("http://{}/lambda-url/{url_id}/", authority(headers))
}

/// The configuration as Lambda renders it; `last_modified` for Get, Update and List.
fn render(headers: &HeaderMap, v: &FunctionUrlView, last_modified: bool) -> Value {
    let r = &v.record;
    let mut out = Map::new();
    out.insert(
        "FunctionUrl".into(),
        json!(function_url(headers, &r.url_id)),
    );
    out.insert("FunctionArn".into(), json!(v.function_arn));
    out.insert("AuthType".into(), json!(r.auth_type.as_str()));
    if let Some(c) = &r.cors {
        out.insert("Cors".into(), json!(c));
    }
    out.insert(
        "CreationTime".into(),
        json!(lambda_timestamp(r.creation_ms)),
    );
    if last_modified {
        out.insert(
            "LastModifiedTime".into(),
            json!(lambda_timestamp(r.last_modified_ms)),
        );
    }
    out.insert("InvokeMode".into(), json!(r.invoke_mode.as_str()));
    Value::Object(out)
}

pub async fn create(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let input: FunctionUrlConfigInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "CreateFunctionUrlConfig",
    )
    .await?;
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v =
        blocking(move || control.create_function_url_config(&name, qualifier.as_deref(), input))
            .await?;
    Ok(json_status(
        StatusCode::CREATED,
        &render(&headers, &v, false),
    ))
}

pub async fn get(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v = blocking(move || control.get_function_url_config(&name, qualifier.as_deref())).await?;
    Ok(ok(&render(&headers, &v, true)))
}

pub async fn update(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let input: FunctionUrlConfigInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "UpdateFunctionUrlConfig",
    )
    .await?;
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v =
        blocking(move || control.update_function_url_config(&name, qualifier.as_deref(), input))
            .await?;
    Ok(ok(&render(&headers, &v, true)))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    blocking(move || control.delete_function_url_config(&name, qualifier.as_deref())).await?;
    Ok(no_content())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let control = s.control.clone();
    let page =
        blocking(move || control.list_function_url_configs(&name, marker.as_deref(), max_items))
            .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|v| render(&headers, v, true))
        .collect();
    Ok(ok(&with_marker(
        json!({ "FunctionUrlConfigs": items }),
        page.next_marker,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn urls_take_the_request_authority() {
        let mut h = HeaderMap::new();
        assert_eq!(function_url(&h, "abc"), "http://localhost/lambda-url/abc/");
        h.insert("host", HeaderValue::from_static("127.0.0.1:9001"));
        assert_eq!(
            function_url(&h, "abc"),
            "http://127.0.0.1:9001/lambda-url/abc/"
        );
        h.insert("host", HeaderValue::from_static("[::1]:9001"));
        assert_eq!(function_url(&h, "abc"), "http://[::1]:9001/lambda-url/abc/");
        h.insert("host", HeaderValue::from_static("evil/path?x"));
        assert_eq!(function_url(&h, "abc"), "http://localhost/lambda-url/abc/");
    }
}
