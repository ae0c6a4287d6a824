//! The apigateway (v1) control plane (REST APIs): method + path → domain call → JSON. Lists
//! are `{"item": [...]}` with `position`/`limit` paging.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use kindling_apigw::rest_api::{PatchOperation, PutMode, Resource};
use kindling_apigw::{ApiGateway, ApigwError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ControlError;
use crate::paths::{admit, blocking, empty, input, json, query, render, segments};

pub(crate) async fn serve(State(state): State<ControlState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    render(handle(&state, req).await, &request_id)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Patch {
    #[serde(default)]
    patch_operations: Vec<PatchOperation>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateResource {
    path_part: Option<String>,
}

/// `{"item": [...], "position": ...}` with `limit` (1-500, default 25) and `position`.
fn page<T: serde::Serialize + Clone>(
    all: &[T],
    parts: &http::request::Parts,
) -> Result<Value, ControlError> {
    let limit = match query(parts, "limit") {
        None => 25,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApigwError::BadRequest(format!("Invalid limit '{l}': a number from 1 to 500."))
            })?,
    };
    let (page, next) = kindling_apigw::http_api::page(
        all,
        Some(&limit.to_string()),
        query(parts, "position").as_deref(),
    )?;
    let mut v = json!({ "item": page });
    if let Some(n) = next {
        v["position"] = json!(n);
    }
    Ok(v)
}

/// A resource as listed: methods in full with `embed=methods`, else only their names.
fn resource_json(r: &Resource, embed: bool) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if !embed && let Some(methods) = v.get_mut("resourceMethods").and_then(Value::as_object_mut) {
        for m in methods.values_mut() {
            *m = json!({});
        }
    }
    v
}

fn ok<T: serde::Serialize>(v: &T) -> Response {
    json(200, v)
}

fn flag(parts: &http::request::Parts, name: &str) -> bool {
    query(parts, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn handle(state: &ControlState, req: Request) -> Result<Response, ControlError> {
    let (parts, body) = admit(state, req).await?;
    let segs = segments(parts.uri.path());
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let svc: Arc<ApiGateway> = Arc::clone(&state.service);
    let m = parts.method.clone();
    let owned = |i: usize| segs[i].clone();
    let fail_on_warnings = flag(&parts, "failonwarnings");
    Ok(match (&m, s.as_slice()) {
        (&Method::POST, ["restapis"]) if query(&parts, "mode").as_deref() == Some("import") => {
            let api = blocking(move || svc.import_rest_api(&body, fail_on_warnings)).await?;
            json(201, &api)
        }
        (&Method::POST, ["restapis"]) => {
            let i = input(&body)?;
            json(201, &blocking(move || svc.create_rest_api(i)).await?)
        }
        (&Method::GET, ["restapis"]) => {
            let all = blocking(move || svc.rest_apis()).await?;
            ok(&page(&all, &parts)?)
        }
        (&Method::GET, ["restapis", _]) => {
            let id = owned(1);
            ok(&blocking(move || svc.get_rest_api(&id)).await?)
        }
        (&Method::PUT, ["restapis", _]) => {
            let mode = match query(&parts, "mode").as_deref() {
                None | Some("merge") => PutMode::Merge,
                Some("overwrite") => PutMode::Overwrite,
                Some(other) => {
                    return Err(ApigwError::BadRequest(format!(
                        "Invalid mode '{other}': must be merge or overwrite."
                    ))
                    .into());
                }
            };
            let id = owned(1);
            ok(&blocking(move || svc.put_rest_api(&id, &body, mode, fail_on_warnings)).await?)
        }
        (&Method::PATCH, ["restapis", _]) => {
            let (id, p): (String, Patch) = (owned(1), input(&body)?);
            ok(&blocking(move || svc.update_rest_api(&id, p.patch_operations)).await?)
        }
        (&Method::DELETE, ["restapis", _]) => {
            let id = owned(1);
            blocking(move || svc.delete_rest_api(&id)).await?;
            empty(202)
        }
        // ---- resources ----
        (&Method::GET, ["restapis", _, "resources"]) => {
            let id = owned(1);
            let embed = query(&parts, "embed").is_some_and(|e| e.contains("methods"));
            let all = blocking(move || svc.rest_resources(&id)).await?;
            let all: Vec<Value> = all.iter().map(|r| resource_json(r, embed)).collect();
            ok(&page(&all, &parts)?)
        }
        (&Method::GET, ["restapis", _, "resources", _]) => {
            let (id, r) = (owned(1), owned(3));
            let embed = query(&parts, "embed").is_some_and(|e| e.contains("methods"));
            let res = blocking(move || svc.rest_resource(&id, &r)).await?;
            ok(&resource_json(&res, embed))
        }
        (&Method::POST, ["restapis", _, "resources", _]) => {
            let (id, parent, i): (String, String, CreateResource) =
                (owned(1), owned(3), input(&body)?);
            json(
                201,
                &blocking(move || svc.create_resource(&id, &parent, i.path_part)).await?,
            )
        }
        (&Method::DELETE, ["restapis", _, "resources", _]) => {
            let (id, r) = (owned(1), owned(3));
            blocking(move || svc.delete_resource(&id, &r)).await?;
            empty(202)
        }
        // ---- methods and integrations ----
        (&Method::PUT, ["restapis", _, "resources", _, "methods", _]) => {
            let (id, r, hm, i) = (owned(1), owned(3), owned(5), input(&body)?);
            json(
                201,
                &blocking(move || svc.put_method(&id, &r, &hm, i)).await?,
            )
        }
        (&Method::GET, ["restapis", _, "resources", _, "methods", _]) => {
            let (id, r, hm) = (owned(1), owned(3), owned(5));
            ok(&blocking(move || svc.get_method(&id, &r, &hm)).await?)
        }
        (&Method::DELETE, ["restapis", _, "resources", _, "methods", _]) => {
            let (id, r, hm) = (owned(1), owned(3), owned(5));
            blocking(move || svc.delete_method(&id, &r, &hm)).await?;
            empty(204)
        }
        (&Method::PUT, ["restapis", _, "resources", _, "methods", _, "integration"]) => {
            let (id, r, hm, i) = (owned(1), owned(3), owned(5), input(&body)?);
            json(
                201,
                &blocking(move || svc.put_integration(&id, &r, &hm, i)).await?,
            )
        }
        (&Method::GET, ["restapis", _, "resources", _, "methods", _, "integration"]) => {
            let (id, r, hm) = (owned(1), owned(3), owned(5));
            ok(&blocking(move || svc.get_integration_v1(&id, &r, &hm)).await?)
        }
        (&Method::DELETE, ["restapis", _, "resources", _, "methods", _, "integration"]) => {
            let (id, r, hm) = (owned(1), owned(3), owned(5));
            blocking(move || svc.delete_integration_v1(&id, &r, &hm)).await?;
            empty(204)
        }
        // ---- deployments and stages ----
        (&Method::POST, ["restapis", _, "deployments"]) => {
            let (id, i) = (owned(1), input(&body)?);
            json(
                201,
                &blocking(move || svc.create_rest_deployment(&id, i)).await?,
            )
        }
        (&Method::GET, ["restapis", _, "deployments"]) => {
            let id = owned(1);
            let all = blocking(move || svc.rest_deployments(&id)).await?;
            ok(&page(&all, &parts)?)
        }
        (&Method::GET, ["restapis", _, "deployments", _]) => {
            let (id, d) = (owned(1), owned(3));
            ok(&blocking(move || svc.rest_deployment(&id, &d)).await?)
        }
        (&Method::POST, ["restapis", _, "stages"]) => {
            let (id, i) = (owned(1), input(&body)?);
            json(201, &blocking(move || svc.create_rest_stage(&id, i)).await?)
        }
        (&Method::GET, ["restapis", _, "stages"]) => {
            let id = owned(1);
            let dep = query(&parts, "deploymentId");
            let all = blocking(move || svc.rest_stages(&id, dep.as_deref())).await?;
            ok(&json!({ "item": all }))
        }
        (&Method::GET, ["restapis", _, "stages", _]) => {
            let (id, n) = (owned(1), owned(3));
            ok(&blocking(move || svc.rest_stage(&id, &n)).await?)
        }
        (&Method::PATCH, ["restapis", _, "stages", _]) => {
            let (id, n, p): (String, String, Patch) = (owned(1), owned(3), input(&body)?);
            ok(&blocking(move || svc.update_rest_stage(&id, &n, p.patch_operations)).await?)
        }
        (&Method::DELETE, ["restapis", _, "stages", _]) => {
            let (id, n) = (owned(1), owned(3));
            blocking(move || svc.delete_rest_stage(&id, &n)).await?;
            empty(202)
        }
        _ => {
            return Err(ControlError::Unserved(format!(
                "{} {}",
                parts.method,
                parts.uri.path()
            )));
        }
    })
}
