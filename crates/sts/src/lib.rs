//! STS over the query protocol (`Action=…&Version=2011-06-15`, form body or query string),
//! answering `GetCallerIdentity` for whoever signed the request:
//!
//! * an operator's key from the credentials file: `arn:aws:iam::<account>:user/<key id>`;
//! * a function's session credentials: `arn:aws:sts::<account>:assumed-role/<role>/<function>`
//!   (`UserId` `AROA…:<function>`, as Lambda's execution-role sessions show);
//! * in local mode (no credentials configured, signatures not checked): the account's root,
//!   `arn:aws:iam::<account>:root`, whatever key signed.
//!
//! Other actions are answered `InvalidAction`. *Invariant: no state; the identity comes from
//! the signature check.*

mod identity;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::BodyExt;
use kindling_auth::{AuthError, Payload, Verifier};
use kindling_protocol::WireError;
use kindling_protocol::query::{Params, error_response, response};

pub use identity::CallerIdentity;

/// STS's XML namespace.
pub const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The API version clients send.
pub const VERSION: &str = "2011-06-15";
/// Largest form body read.
const MAX_BODY: usize = 64 * 1024;

/// What the STS router serves with.
#[derive(Clone)]
pub struct StsState {
    pub account_id: String,
    /// Signature verification (scope service `sts`); `None` is local mode.
    pub auth: Option<Arc<StsAuth>>,
}

/// Signature settings, as the Lambda API's: every request signed in shared mode; in local
/// mode only those from inside execution environments (with their session credentials).
#[derive(Debug)]
pub struct StsAuth {
    pub verifier: Verifier,
    /// Shared mode: every request must be signed.
    pub require_signature: bool,
}

/// Why an STS request failed.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("Could not find operation {0} for version 2011-06-15")]
    InvalidAction(String),
    #[error("Value for parameter Action is missing")]
    MissingAction,
    #[error("{0}")]
    MalformedQuery(String),
    #[error("Request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("{}", .0.message())]
    Auth(AuthError),
}

impl WireError for StsError {
    fn status(&self) -> u16 {
        match self {
            Self::Auth(e) => e.status(),
            Self::TooLarge => 413,
            _ => 400,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::InvalidAction(_) => "InvalidAction",
            Self::MissingAction => "MissingAction",
            Self::MalformedQuery(_) => "MalformedQueryString",
            Self::TooLarge => "RequestEntityTooLarge",
            Self::Auth(e) => match e {
                AuthError::UnrecognizedClient => "InvalidClientTokenId",
                AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
                AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
                AuthError::IncompleteSignature(_) => "IncompleteSignature",
                AuthError::SignatureExpired(_) => "SignatureDoesNotMatch",
                AuthError::InvalidSignature(_) => "SignatureDoesNotMatch",
                AuthError::ExpiredToken => "ExpiredToken",
            },
        }
    }

    fn message(&self) -> String {
        self.to_string()
    }
}

/// The STS API.
pub fn router(state: StsState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<StsState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let res = match serve(&state, &request_id, req).await {
        Ok(res) => res,
        Err(e) => error_response(&e, NS, &request_id),
    };
    res.map(Body::from)
}

async fn serve(
    state: &StsState,
    request_id: &str,
    req: Request,
) -> Result<kindling_protocol::Response, StsError> {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await?;
    let mut params = Params::parse(parts.uri.query().unwrap_or("").as_bytes())
        .map_err(|e| StsError::MalformedQuery(e.to_string()))?;
    if !body.is_empty() {
        let form = Params::parse(&body).map_err(|e| StsError::MalformedQuery(e.to_string()))?;
        params.extend(form);
    }
    let identity = authenticate(state, &parts, &body)?;
    let action = params.action().ok_or(StsError::MissingAction)?;
    match action {
        "GetCallerIdentity" => {
            let who = identity.unwrap_or_else(|| CallerIdentity::root(&state.account_id));
            Ok(response(
                "GetCallerIdentity",
                NS,
                request_id,
                Some(&|x| {
                    x.leaf("Arn", &who.arn)
                        .leaf("UserId", &who.user_id)
                        .leaf("Account", &who.account);
                }),
            ))
        }
        other => Err(StsError::InvalidAction(other.to_string())),
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, StsError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(StsError::TooLarge),
    }
}

/// Checks the signature when the server verifies them: the caller, or `None` in local mode.
fn authenticate(
    state: &StsState,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Option<CallerIdentity>, StsError> {
    let Some(auth) = &state.auth else {
        return Ok(None);
    };
    let from_environment = parts
        .extensions
        .get::<kindling_edge::RequestContext>()
        .is_some_and(|c| matches!(c.origin, kindling_edge::Origin::Environment { .. }));
    if !auth.require_signature && !from_environment {
        return Ok(None);
    }
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
    let verified = auth
        .verifier
        .verify(&request, SystemTime::now())
        .map_err(StsError::Auth)?;
    Ok(Some(CallerIdentity::of(&verified, &state.account_id)))
}

#[cfg(test)]
mod tests;
