//! The control planes' errors on the wire, in one place: status, `x-amzn-ErrorType` and
//! `{"message": …}` (rest-json, as both API Gateway clients read them).

use kindling_apigw::ApigwError;
use kindling_auth::AuthError;
use kindling_edge::BodyError;
use kindling_edge::gate::GateError;
use kindling_protocol::WireError;

/// Why a control-plane request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Domain(#[from] ApigwError),
    #[error("{0}")]
    Gate(#[from] GateError),
    /// The JSON body does not match the operation's input.
    #[error("Invalid request body: {0}")]
    BadBody(String),
    /// A method and path no operation answers.
    #[error("Kindling's API Gateway does not serve {0}")]
    Unserved(String),
    /// A blocking task died (a bug).
    #[error("internal failure")]
    Task,
}

impl WireError for ControlError {
    fn status(&self) -> u16 {
        match self {
            Self::Domain(e) => match e {
                ApigwError::NotFound(_) => 404,
                ApigwError::BadRequest(_) => 400,
                ApigwError::Conflict(_) => 409,
                ApigwError::LimitExceeded(_) | ApigwError::TooManyRequests(_) => 429,
                ApigwError::Store(_) => 500,
            },
            Self::Gate(g) => match g {
                GateError::Auth(a) => a.status(),
                GateError::EnvironmentCredentialsRequired | GateError::AccessDenied { .. } => 403,
                GateError::Body(BodyError::TooLarge { .. }) => 413,
                GateError::Body(BodyError::Busy) => 503,
                GateError::Body(_) => 400,
                GateError::Task(_) => 500,
            },
            Self::BadBody(_) => 400,
            Self::Unserved(_) => 404,
            Self::Task => 500,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Domain(e) => match e {
                ApigwError::NotFound(_) => "NotFoundException",
                ApigwError::BadRequest(_) => "BadRequestException",
                ApigwError::Conflict(_) => "ConflictException",
                ApigwError::LimitExceeded(_) => "LimitExceededException",
                ApigwError::TooManyRequests(_) => "TooManyRequestsException",
                ApigwError::Store(_) => "InternalFailure",
            },
            Self::Gate(g) => match g {
                GateError::Auth(a) => match a {
                    AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
                    AuthError::UnrecognizedClient => "UnrecognizedClientException",
                    AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
                    AuthError::ExpiredToken => "ExpiredTokenException",
                    _ => "InvalidSignatureException",
                },
                GateError::EnvironmentCredentialsRequired => "UnrecognizedClientException",
                GateError::AccessDenied { .. } => "AccessDeniedException",
                GateError::Body(BodyError::TooLarge { .. }) => "PayloadTooLargeException",
                GateError::Body(BodyError::Busy) => "ServiceUnavailableException",
                GateError::Body(_) => "BadRequestException",
                GateError::Task(_) => "InternalFailure",
            },
            Self::BadBody(_) => "BadRequestException",
            Self::Unserved(_) => "NotFoundException",
            Self::Task => "InternalFailure",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Domain(ApigwError::Store(_)) | Self::Task => {
                "An internal error occurred; see Kindling's log.".into()
            }
            Self::Gate(GateError::Auth(a)) => a.message().to_string(),
            Self::Gate(GateError::AccessDenied {
                caller,
                action,
                resource,
            }) => GateError::access_denied_message(caller, action, resource),
            other => other.to_string(),
        }
    }
}
