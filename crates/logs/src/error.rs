//! CloudWatch Logs' errors: one variant per answer, rendered once (`WireError`).

use kindling_protocol::WireError;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("Operation {0} is not supported by this endpoint.")]
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
    /// Reading or writing the stored logs failed.
    #[error("The service is unavailable.")]
    Io(#[source] std::io::Error),
}

impl LogsError {
    pub(crate) fn group_not_found() -> Self {
        Self::ResourceNotFound("The specified log group does not exist.".into())
    }

    pub(crate) fn stream_not_found() -> Self {
        Self::ResourceNotFound("The specified log stream does not exist.".into())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidParameter(message.into())
    }
}

impl From<std::io::Error> for LogsError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl WireError for LogsError {
    fn status(&self) -> u16 {
        match self {
            Self::Auth { status, .. } => *status,
            Self::TooLarge(_) => 413,
            Self::Io(_) => 500,
            _ => 400,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::Serialization(_) => "SerializationException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Auth { code, .. } => code,
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::Body(_) => "RequestTimeout",
            Self::Io(_) => "ServiceUnavailableException",
        }
    }

    fn message(&self) -> String {
        self.to_string()
    }
}
