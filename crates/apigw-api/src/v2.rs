//! The apigatewayv2 control plane (HTTP APIs): method + path → domain call → JSON.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use kindling_apigw::http_api::{self, HttpApiDoc};
use kindling_apigw::{ApiGateway, ApigwError};
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ControlError;
use crate::paths::{admit, blocking, empty, input, json, origin, query, render, segments};

pub(crate) async fn serve(State(state): State<ControlState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    render(handle(&state, req).await, &request_id)
}

/// The Api object as the wire shows it: with `apiEndpoint`, the DNS-free invoke URL.
fn api_json(doc: &HttpApiDoc, origin: &str) -> Value {
    let mut v = serde_json::to_value(&doc.api).unwrap_or_else(|_| json!({}));
    v["apiEndpoint"] = json!(format!("{origin}/execute-api/{}", doc.api.api_id));
    v
}

fn items<T: serde::Serialize + Clone>(
    all: &[T],
    parts: &http::request::Parts,
) -> Result<Value, ControlError> {
    let (page, next) = http_api::page(
        all,
        query(parts, "maxResults").as_deref(),
        query(parts, "nextToken").as_deref(),
    )?;
    let mut v = json!({ "items": page });
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(v)
}

fn ok<T: serde::Serialize>(v: &T) -> Response {
    json(200, v)
}

async fn handle(state: &ControlState, req: Request) -> Result<Response, ControlError> {
    let (parts, body) = admit(state, req).await?;
    let segs = segments(parts.uri.path());
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let svc: Arc<ApiGateway> = Arc::clone(&state.service);
    let origin = origin(&parts);
    let m = parts.method.clone();
    let owned = |i: usize| segs[i].clone();
    Ok(match (&m, s.as_slice()) {
        (&Method::POST, ["v2", "apis"]) => {
            let i = input(&body)?;
            let doc = blocking(move || svc.create_http_api(i)).await?;
            json(201, &api_json(&doc, &origin))
        }
        (&Method::GET, ["v2", "apis"]) => {
            let docs = blocking(move || svc.http_apis()).await?;
            let all: Vec<Value> = docs.iter().map(|d| api_json(d, &origin)).collect();
            ok(&items(&all, &parts)?)
        }
        (&Method::PUT, ["v2", "apis"]) | (&Method::PUT, ["v2", "apis", _]) => {
            return Err(ApigwError::BadRequest(
                "ImportApi and ReimportApi are not supported by Kindling for HTTP APIs; create the API with CreateApi, CreateIntegration and CreateRoute.".into(),
            )
            .into());
        }
        (&Method::GET, ["v2", "apis", _]) => {
            let id = owned(2);
            let doc = blocking(move || svc.get_http_api(&id)).await?;
            ok(&api_json(&doc, &origin))
        }
        (&Method::PATCH, ["v2", "apis", _]) => {
            let (id, i) = (owned(2), input(&body)?);
            let doc = blocking(move || svc.update_http_api(&id, i)).await?;
            ok(&api_json(&doc, &origin))
        }
        (&Method::DELETE, ["v2", "apis", _]) => {
            let id = owned(2);
            blocking(move || svc.delete_http_api(&id)).await?;
            empty(204)
        }
        // ---- routes ----
        (&Method::POST, ["v2", "apis", _, "routes"]) => {
            let (id, i) = (owned(2), input(&body)?);
            json(201, &blocking(move || svc.create_route(&id, i)).await?)
        }
        (&Method::GET, ["v2", "apis", _, "routes"]) => {
            let id = owned(2);
            let doc = blocking(move || svc.get_http_api(&id)).await?;
            ok(&items(&doc.routes, &parts)?)
        }
        (&Method::GET, ["v2", "apis", _, "routes", _]) => {
            let (id, r) = (owned(2), owned(4));
            ok(&blocking(move || svc.get_route(&id, &r)).await?)
        }
        (&Method::PATCH, ["v2", "apis", _, "routes", _]) => {
            let (id, r, i) = (owned(2), owned(4), input(&body)?);
            ok(&blocking(move || svc.update_route(&id, &r, i)).await?)
        }
        (&Method::DELETE, ["v2", "apis", _, "routes", _]) => {
            let (id, r) = (owned(2), owned(4));
            blocking(move || svc.delete_route(&id, &r)).await?;
            empty(204)
        }
        // ---- integrations ----
        (&Method::POST, ["v2", "apis", _, "integrations"]) => {
            let (id, i) = (owned(2), input(&body)?);
            json(
                201,
                &blocking(move || svc.create_integration(&id, i)).await?,
            )
        }
        (&Method::GET, ["v2", "apis", _, "integrations"]) => {
            let id = owned(2);
            let doc = blocking(move || svc.get_http_api(&id)).await?;
            ok(&items(&doc.integrations, &parts)?)
        }
        (&Method::GET, ["v2", "apis", _, "integrations", _]) => {
            let (id, x) = (owned(2), owned(4));
            ok(&blocking(move || svc.get_integration(&id, &x)).await?)
        }
        (&Method::PATCH, ["v2", "apis", _, "integrations", _]) => {
            let (id, x, i) = (owned(2), owned(4), input(&body)?);
            ok(&blocking(move || svc.update_integration(&id, &x, i)).await?)
        }
        (&Method::DELETE, ["v2", "apis", _, "integrations", _]) => {
            let (id, x) = (owned(2), owned(4));
            blocking(move || svc.delete_integration(&id, &x)).await?;
            empty(204)
        }
        // ---- stages ----
        (&Method::POST, ["v2", "apis", _, "stages"]) => {
            let (id, i) = (owned(2), input(&body)?);
            json(201, &blocking(move || svc.create_stage(&id, i)).await?)
        }
        (&Method::GET, ["v2", "apis", _, "stages"]) => {
            let id = owned(2);
            let doc = blocking(move || svc.get_http_api(&id)).await?;
            ok(&items(&doc.stages, &parts)?)
        }
        (&Method::GET, ["v2", "apis", _, "stages", _]) => {
            let (id, n) = (owned(2), owned(4));
            ok(&blocking(move || svc.get_stage(&id, &n)).await?)
        }
        (&Method::PATCH, ["v2", "apis", _, "stages", _]) => {
            let (id, n, i) = (owned(2), owned(4), input(&body)?);
            ok(&blocking(move || svc.update_stage(&id, &n, i)).await?)
        }
        (&Method::DELETE, ["v2", "apis", _, "stages", _]) => {
            let (id, n) = (owned(2), owned(4));
            blocking(move || svc.delete_stage(&id, &n)).await?;
            empty(204)
        }
        // ---- deployments ----
        (&Method::POST, ["v2", "apis", _, "deployments"]) => {
            let (id, i) = (owned(2), input(&body)?);
            json(201, &blocking(move || svc.create_deployment(&id, i)).await?)
        }
        (&Method::GET, ["v2", "apis", _, "deployments"]) => {
            let id = owned(2);
            let doc = blocking(move || svc.get_http_api(&id)).await?;
            ok(&items(&doc.deployments, &parts)?)
        }
        (&Method::GET, ["v2", "apis", _, "deployments", _]) => {
            let (id, d) = (owned(2), owned(4));
            ok(&blocking(move || svc.get_deployment(&id, &d)).await?)
        }
        (&Method::DELETE, ["v2", "apis", _, "deployments", _]) => {
            let (id, d) = (owned(2), owned(4));
            blocking(move || svc.delete_deployment(&id, &d)).await?;
            empty(204)
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
