//! EventBridge's errors, rendered once (`WireError`, AWS JSON 1.1).

use kindling_edge::gate::GateError;
use kindling_protocol::WireError;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Serialization(String),
    #[error(
        "Operation {0} is not supported by Kindling's EventBridge (PutEvents is; rules are made with CloudFormation)."
    )]
    UnknownOperation(String),
    #[error("{message}")]
    Auth {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    #[error("The request body could not be read: {0}")]
    Body(String),
}

impl WireError for EventsError {
    fn status(&self) -> u16 {
        match self {
            Self::Auth { status, .. } => *status,
            Self::TooLarge(_) => 413,
            _ => 400,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Auth { code, .. } => code,
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::Body(_) => "RequestTimeout",
        }
    }

    fn message(&self) -> String {
        self.to_string()
    }
}

impl From<GateError> for EventsError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::Auth(a) => Self::Auth {
                status: a.status(),
                code: a.error_type(),
                message: a.message().to_string(),
            },
            GateError::AccessDenied {
                caller,
                action,
                resource,
            } => Self::Auth {
                status: 400,
                code: "AccessDeniedException",
                message: GateError::access_denied_message(&caller, &action, &resource),
            },
            GateError::EnvironmentCredentialsRequired => Self::Auth {
                status: 400,
                code: "AccessDeniedException",
                message: e.to_string(),
            },
            GateError::Body(kindling_edge::BodyError::TooLarge { limit }) => Self::TooLarge(limit),
            other => Self::Body(other.to_string()),
        }
    }
}
