//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
//! UpdateFunctionConfiguration and DeleteFunction.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kindling_control::FunctionDetails;
use kindling_control::input::{CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration};
use kindling_model::function::Phase;
use kindling_model::limits;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{code_location, config, json_status, no_content, ok, with_marker};

pub async fn create(State(s): State<ApiState>, body: Body) -> Result<Response, ApiError> {
    let req: CreateFunction =
        read_json(body, limits::MAX_CODE_REQUEST_BODY, "CreateFunction").await?;
    let control = s.control.clone();
    let (latest, note) = blocking(move || {
        let (latest, _published) = control.create_function(req)?;
        let note = control.runtime_note(&latest);
        Ok((latest, note))
    })
    .await?;
    prepare_code(&s, &latest);
    let mut body = config(&latest, s.control.arn(), false, Phase::Creating)?;
    if let Some(note) = note
        && let Some(reason) = body.get_mut("StateReason")
    {
        // Where the user looks first: the function runs, but not exactly as asked.
        *reason = serde_json::json!(format!(
            "{} Kindling WARNING: {note}.",
            reason.as_str().unwrap_or_default()
        ));
    }
    Ok(json_status(StatusCode::CREATED, &body))
}

/// Lets the data plane unpack new code (a zip, or an image's layers) before its first
/// invocation.
fn prepare_code(s: &ApiState, rec: &kindling_model::function::VersionRecord) {
    let Some(scheduler) = &s.scheduler else {
        return;
    };
    if rec.code.image.is_some() {
        // Finding the layer files touches the disk: off the async runtime.
        let (control, scheduler, rec) = (s.control.clone(), scheduler.clone(), rec.clone());
        tokio::task::spawn_blocking(move || {
            if let Ok(Some((digest, layers))) = control.image_layers(&rec) {
                scheduler.prepare_image(digest, layers);
            }
        });
        return;
    }
    let blob = &rec.code.blob;
    if let Some(id) = kindling_store::BlobId::parse(blob) {
        scheduler.prepare_code(blob.to_string(), s.control.blobs().path(&id));
    }
}

/// Reads a function version as GetFunction / GetFunctionConfiguration do.
async fn details(s: &ApiState, name: String, q: &QueryParams) -> Result<FunctionDetails, ApiError> {
    let control = s.control.clone();
    let qualifier = q.get("Qualifier").map(str::to_string);
    blocking(move || control.get_function(&name, qualifier.as_deref())).await
}

/// The configuration as reached: qualified ARNs when a qualifier was given, the alias's ARN
/// when reached through an alias.
fn configuration(s: &ApiState, d: &FunctionDetails) -> Result<Value, ApiError> {
    let mut body = config(
        &d.version,
        s.control.arn(),
        d.qualifier.is_some(),
        Phase::Settled,
    )?;
    if let Some(alias) = &d.alias {
        body["FunctionArn"] = json!(s.control.arn().qualified_arn(
            &d.version.function_name,
            &kindling_model::Qualifier::Alias(alias.clone())
        ));
    }
    Ok(body)
}

pub async fn get(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let d = details(&s, name, &q).await?;
    let code = match &d.version.code.image {
        Some(image) => json!({
            "RepositoryType": "ECR",
            "ImageUri": image.image_uri,
            "ResolvedImageUri": image.resolved_image_uri,
        }),
        None => json!({
            "RepositoryType": "S3",
            "Location": code_location(&s, &headers, &d.version.code.blob),
        }),
    };
    let mut body = json!({
        "Configuration": configuration(&s, &d)?,
        "Code": code,
    });
    if !d.tags.is_empty() {
        body["Tags"] = json!(d.tags);
    }
    if let Some(c) = d.reserved_concurrency {
        body["Concurrency"] = json!({ "ReservedConcurrentExecutions": c });
    }
    Ok(ok(&body))
}

pub async fn get_configuration(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let d = details(&s, name, &q).await?;
    Ok(ok(&configuration(&s, &d)?))
}

pub async fn list(State(s): State<ApiState>, q: QueryParams) -> Result<Response, ApiError> {
    let all = match q.get("FunctionVersion") {
        None => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(ApiError::Control(
                kindling_control::ControlError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
                )),
            ));
        }
    };
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let control = s.control.clone();
    let page = blocking(move || control.list_functions(all, marker.as_deref(), max_items)).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|v| config(v, s.control.arn(), all, Phase::Listed))
        .collect::<Result<_, _>>()?;
    Ok(ok(&with_marker(
        json!({ "Functions": items }),
        page.next_marker,
    )))
}

pub async fn update_code(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: UpdateFunctionCode =
        read_json(body, limits::MAX_CODE_REQUEST_BODY, "UpdateFunctionCode").await?;
    let control = s.control.clone();
    let (latest, published) = blocking(move || control.update_function_code(&name, req)).await?;
    prepare_code(&s, &latest);
    // With Publish, Lambda answers with the new version's configuration.
    let body = match &published {
        Some(v) => config(v, s.control.arn(), true, Phase::Settled)?,
        None => config(&latest, s.control.arn(), false, Phase::Updating)?,
    };
    Ok(ok(&body))
}

pub async fn update_configuration(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: UpdateFunctionConfiguration = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "UpdateFunctionConfiguration",
    )
    .await?;
    let control = s.control.clone();
    let latest = blocking(move || control.update_function_configuration(&name, req)).await?;
    Ok(ok(&config(
        &latest,
        s.control.arn(),
        false,
        Phase::Updating,
    )?))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let control = s.control.clone();
    let qualifier = q.get("Qualifier").map(str::to_string);
    let raw = name.clone();
    blocking(move || control.delete_function(&raw, qualifier.as_deref())).await?;
    // Environments provisioned for it (or for the deleted version) are released.
    super::sync_provisioned(&s, &name).await;
    // The function's event source mappings went with it: their pollers stop now.
    if let Some(esm) = &s.esm {
        esm.wake();
    }
    Ok(no_content())
}
