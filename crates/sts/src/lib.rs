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

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use kindling_auth::AuthError;
use kindling_edge::gate::{Gate, GateError};
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
    /// Who may call (the server's shared authentication policy, signing name `sts`).
    pub gate: Gate,
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
    #[error("{0}")]
    Denied(String),
}

impl WireError for StsError {
    fn status(&self) -> u16 {
        match self {
            Self::Auth(e) => e.status(),
            Self::Denied(_) => 403,
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
            Self::Denied(_) => "AccessDenied",
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
    let admission = state.gate.check_head(&parts).map_err(gate_error)?;
    let (caller, body) = state
        .gate
        .read_body(admission, &parts, body, MAX_BODY)
        .await
        .map_err(gate_error)?;
    let mut params = Params::parse(parts.uri.query().unwrap_or("").as_bytes())
        .map_err(|e| StsError::MalformedQuery(e.to_string()))?;
    if !body.bytes.is_empty() {
        let form =
            Params::parse(&body.bytes).map_err(|e| StsError::MalformedQuery(e.to_string()))?;
        params.extend(form);
    }
    let action = params.action().ok_or(StsError::MissingAction)?;
    match action {
        "GetCallerIdentity" => {
            let who = CallerIdentity::of(&caller, &state.account_id);
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

fn gate_error(e: GateError) -> StsError {
    match e {
        GateError::Auth(e) => StsError::Auth(e),
        GateError::Body(kindling_edge::BodyError::TooLarge { .. }) => StsError::TooLarge,
        e => StsError::Denied(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
