//! SNS's errors on the wire (query codes and statuses from the model).

use kindling_protocol::{ProtocolError, WireError};
use kindling_queues::TopicError;

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("The action {0} is not valid for this endpoint.")]
    InvalidAction(String),
    #[error("{message}")]
    Auth {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
}

impl SnsError {
    fn codes(&self) -> (&'static str, u16) {
        match self {
            Self::Topic(e) => topic_codes(e),
            Self::Protocol(_) => ("InvalidParameter", 400),
            Self::InvalidAction(_) => ("InvalidAction", 400),
            Self::Auth { status, code, .. } => (code, *status),
            Self::TooLarge(_) => ("RequestEntityTooLarge", 413),
        }
    }
}

/// The code and status of each domain error.
pub fn topic_codes(e: &TopicError) -> (&'static str, u16) {
    use TopicError as E;
    match e {
        E::NotFound(_) => ("NotFound", 404),
        E::InvalidParameter(_) => ("InvalidParameter", 400),
        E::InvalidParameterValue(_) => ("ParameterValueInvalid", 400),
        E::FilterPolicyLimitExceeded(_) => ("FilterPolicyLimitExceeded", 403),
        E::TooManyEntriesInBatchRequest => ("TooManyEntriesInBatchRequest", 400),
        E::EmptyBatchRequest => ("EmptyBatchRequest", 400),
        E::BatchEntryIdsNotDistinct => ("BatchEntryIdsNotDistinct", 400),
        E::BatchRequestTooLong => ("BatchRequestTooLong", 400),
        E::InvalidBatchEntryId => ("InvalidBatchEntryId", 400),
        E::ResourceNotFound(_) => ("ResourceNotFound", 404),
        E::Store(_) | E::Queue(_) => ("InternalError", 500),
    }
}

impl WireError for SnsError {
    fn status(&self) -> u16 {
        self.codes().1
    }

    fn code(&self) -> &str {
        self.codes().0
    }

    fn message(&self) -> String {
        match self {
            Self::Topic(e) if e.is_internal() => "Internal Error".into(),
            Self::Protocol(ProtocolError::Missing(name)) => {
                format!("Invalid parameter: {name}")
            }
            other => other.to_string(),
        }
    }
}
