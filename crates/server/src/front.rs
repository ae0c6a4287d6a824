//! PROVISIONAL (branch s3-sts): one front door for Lambda, S3 and STS on the same listener,
//! routed by `kindling_edge::classify`, until the edge listener that mounts every service's
//! router lands on main. That merge replaces this module (and its one call in `serve.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use kindling_edge::{Decision, RequestHead, ServiceId, classify, classify_form};
use tower::ServiceExt;

/// Largest form body read to tell query-protocol services apart.
const MAX_FORM: usize = 64 * 1024;

#[derive(Clone)]
struct Services {
    lambda: Router,
    s3: Router,
    sts: Router,
}

fn served(id: ServiceId) -> bool {
    matches!(
        id,
        ServiceId::Lambda | ServiceId::Kindling | ServiceId::S3 | ServiceId::Sts
    )
}

/// The router that sends each request to its service.
pub fn router(lambda: Router, s3: Router, sts: Router) -> Router {
    Router::new()
        .fallback(route)
        .with_state(Services { lambda, s3, sts })
}

async fn route(State(services): State<Services>, req: Request) -> Response {
    let decision = {
        let head = RequestHead {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
        };
        classify(&head, &served)
    };
    let (decision, req) = match decision {
        Decision::NeedsForm => {
            let (parts, body) = req.into_parts();
            let bytes = match http_body_util::Limited::new(body, MAX_FORM).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    return (
                        http::StatusCode::PAYLOAD_TOO_LARGE,
                        "request body too large",
                    )
                        .into_response();
                }
            };
            let decision = classify_form(&bytes, &served);
            (decision, Request::from_parts(parts, Body::from(bytes)))
        }
        d => (d, req),
    };
    let target = match decision {
        Decision::Service(ServiceId::S3) => services.s3,
        Decision::Service(ServiceId::Sts) => services.sts,
        _ => {
            let req = kindling_api::normalize_path(req);
            return match services.lambda.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
        }
    };
    match target.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}
