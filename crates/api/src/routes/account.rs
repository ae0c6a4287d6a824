//! Put/Get/DeleteFunctionConcurrency and GetAccountSettings.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use kindling_control::input::PutConcurrency;
use kindling_model::limits;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{blocking, read_json};
use crate::render::{no_content, ok};

pub async fn put_concurrency(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: PutConcurrency = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "PutFunctionConcurrency",
    )
    .await?;
    let control = s.control.clone();
    let value =
        blocking(move || control.put_concurrency(&name, req.reserved_concurrent_executions))
            .await?;
    Ok(ok(&json!({ "ReservedConcurrentExecutions": value })))
}

pub async fn get_concurrency(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let value = blocking(move || control.get_concurrency(&name)).await?;
    Ok(ok(&match value {
        Some(v) => json!({ "ReservedConcurrentExecutions": v }),
        None => json!({}),
    }))
}

pub async fn delete_concurrency(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    blocking(move || control.delete_concurrency(&name)).await?;
    Ok(no_content())
}

pub async fn settings(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let a = blocking(move || control.account_settings()).await?;
    Ok(ok(&json!({
        "AccountLimit": {
            "TotalCodeSize": a.total_code_size_limit,
            "CodeSizeUnzipped": a.code_size_unzipped,
            "CodeSizeZipped": a.code_size_zipped,
            "ConcurrentExecutions": a.concurrent_executions,
            "UnreservedConcurrentExecutions": a.unreserved_concurrent_executions,
        },
        "AccountUsage": {
            "TotalCodeSize": a.total_code_size_used,
            "FunctionCount": a.function_count,
        },
    })))
}
