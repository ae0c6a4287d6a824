//! SigV4 verification of API requests (on when the server has credentials).

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kindling_auth::{Payload, Verifier};
use kindling_model::limits;

use crate::ApiState;
use crate::error::{ApiError, error_response};

/// Paths served without a signature: code downloads behave like S3 pre-signed URLs.
fn is_public(path: &str) -> bool {
    path.starts_with("/_kindling/code/")
}

/// Verifies the request's signature against the server's credentials, or answers as AWS does.
pub async fn verify(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(verifier) = state.auth.clone() else {
        return next.run(req).await;
    };
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The body is hashed into the signature; the largest legitimate one is a code upload.
    let limit = limits::MAX_CODE_REQUEST_BODY + 64 * 1024;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::BodyTooLarge {
                limit,
                operation: "this",
            }
            .into_response();
        }
    };
    if let Err(e) = check(&verifier, &parts, &bytes) {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
        tracing::debug!(error = %e, "request signature rejected");
        return error_response(status, e.error_type(), e.message());
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn check(
    verifier: &Arc<Verifier>,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), kindling_auth::AuthError> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = kindling_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload: Payload::Bytes(body),
    };
    verifier.verify(&request, SystemTime::now()).map(|_| ())
}
