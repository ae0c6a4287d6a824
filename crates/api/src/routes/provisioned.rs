//! Put/Get/Delete/ListProvisionedConcurrencyConfig(s), and [`sync_provisioned`]: after every
//! change that moves a configuration (these operations, alias updates, deletions, a restart)
//! the scheduler is told what to keep provisioned for the function.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kindling_control::ProvisionedView;
use kindling_model::limits;
use kindling_scheduler::{ProvisionedSpec, ProvisionedState};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{QueryParams, blocking, read_json};
use crate::render::{json_status, no_content, ok, with_marker};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput {
    provisioned_concurrent_executions: Option<i64>,
}

/// The configuration's members; the status is the data plane's (IN_PROGRESS while the
/// environments start, or when this server runs no data plane).
fn render(s: &ApiState, v: &ProvisionedView, with_arn: bool) -> Value {
    let status = s
        .scheduler
        .as_ref()
        .and_then(|sch| sch.provisioned_status(&v.function_name, &v.qualifier));
    let (allocated, available, state, reason) = match status {
        Some(st) => (st.allocated, st.available, st.state, st.reason),
        None => (0, 0, ProvisionedState::InProgress, None),
    };
    let mut m = Map::new();
    if with_arn {
        m.insert("FunctionArn".into(), json!(v.function_arn));
    }
    m.insert(
        "RequestedProvisionedConcurrentExecutions".into(),
        json!(v.requested),
    );
    m.insert(
        "AvailableProvisionedConcurrentExecutions".into(),
        json!(available),
    );
    m.insert(
        "AllocatedProvisionedConcurrentExecutions".into(),
        json!(allocated),
    );
    m.insert("Status".into(), json!(state.as_str()));
    if let Some(r) = reason {
        m.insert("StatusReason".into(), json!(r));
    }
    m.insert("LastModified".into(), json!(v.last_modified));
    Value::Object(m)
}

/// Tells the scheduler what to keep provisioned for the function `raw` names, as the store
/// says now. A failure is logged: the configuration stands, and the next change or restart
/// applies it.
pub async fn sync_provisioned(s: &ApiState, raw: &str) {
    let Some(scheduler) = s.scheduler.as_ref() else {
        return;
    };
    provision(&s.control, scheduler, raw).await;
}

/// [`sync_provisioned`] for callers without an [`ApiState`] (CloudFormation's handlers).
pub async fn provision(
    control: &std::sync::Arc<kindling_control::ControlPlane>,
    scheduler: &kindling_scheduler::Scheduler,
    raw: &str,
) {
    let Ok(r) = kindling_model::FunctionRef::parse(raw, true) else {
        return;
    };
    let control = control.clone();
    let name = r.name.clone();
    let targets = match blocking(move || control.provisioned_targets(&name)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(function = %r.name, error = %e, "could not read provisioned concurrency");
            return;
        }
    };
    let specs = targets
        .into_iter()
        .filter_map(|t| {
            Some(ProvisionedSpec {
                qualifier: t.view.qualifier,
                target: t.target?,
                count: t.view.requested,
                generation: t.view.last_modified,
            })
        })
        .collect();
    scheduler.set_provisioned(&r.name, specs);
}

/// Re-provisions every configured function (at startup).
pub async fn restore_provisioned(s: &ApiState) {
    let control = s.control.clone();
    let names = match blocking(move || control.provisioned_functions()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not read provisioned concurrency configurations");
            return;
        }
    };
    for name in names {
        sync_provisioned(s, &name).await;
    }
}

pub async fn put(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    let input: PutInput = read_json(
        body,
        limits::MAX_CONTROL_REQUEST_BODY,
        "PutProvisionedConcurrencyConfig",
    )
    .await?;
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let raw = name.clone();
    let v = blocking(move || {
        control.put_provisioned(
            &raw,
            qualifier.as_deref(),
            input.provisioned_concurrent_executions,
        )
    })
    .await?;
    sync_provisioned(&s, &name).await;
    // The answer describes the request just taken: nothing is allocated for it yet.
    Ok(json_status(
        StatusCode::ACCEPTED,
        &json!({
            "RequestedProvisionedConcurrentExecutions": v.requested,
            "AvailableProvisionedConcurrentExecutions": 0,
            "AllocatedProvisionedConcurrentExecutions": 0,
            "Status": ProvisionedState::InProgress.as_str(),
            "LastModified": v.last_modified,
        }),
    ))
}

/// GET serves two operations, told apart by `List=ALL` (the gate authorizes the right one).
pub async fn get_or_list(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    if q.get("List").is_some() {
        return list(s, name, q).await;
    }
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let v = blocking(move || control.get_provisioned(&name, qualifier.as_deref())).await?;
    Ok(ok(&render(&s, &v, false)))
}

async fn list(s: ApiState, name: String, q: QueryParams) -> Result<Response, ApiError> {
    let max_items = q.max_items()?;
    let marker = q.get("Marker").map(str::to_string);
    let control = s.control.clone();
    let page =
        blocking(move || control.list_provisioned(&name, marker.as_deref(), max_items)).await?;
    let items: Vec<Value> = page.items.iter().map(|v| render(&s, v, true)).collect();
    Ok(ok(&with_marker(
        json!({ "ProvisionedConcurrencyConfigs": items }),
        page.next_marker,
    )))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let qualifier = q.get("Qualifier").map(str::to_string);
    let control = s.control.clone();
    let raw = name.clone();
    blocking(move || control.delete_provisioned(&raw, qualifier.as_deref())).await?;
    sync_provisioned(&s, &name).await;
    Ok(no_content())
}
