//! The mapping domain's errors: one variant per kind of answer a client gets (the API crate
//! maps them to Lambda's exceptions), failures keeping their cause.

use kindling_control::ControlError;
use kindling_store::StoreError;

pub type Result<T, E = EsmError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EsmError {
    /// Resolving the function (its name's pattern, its existence) failed as the control plane
    /// answers: the same exceptions as other function operations.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A model constraint: `ValidationException`.
    #[error("{0}")]
    Validation(String),
    /// A parameter wrong for the source: `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// `ResourceNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// `ResourceConflictException` (a mapping of the same source and function exists).
    #[error("{0}")]
    Conflict(String),
    /// `ResourceInUseException` (the mapping is still settling a change).
    #[error("{0}")]
    InUse(String),
    /// The state store failed: `ServiceException`, the cause logged.
    #[error("the state store failed")]
    Store(#[source] StoreError),
    /// Looking the source queue up failed (not a client mistake): `ServiceException`.
    #[error("the queue service failed")]
    Queue(#[source] kindling_queues::QueueError),
    /// A blocking task died: `ServiceException`.
    #[error("a blocking task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<StoreError> for EsmError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => {
                Self::InvalidParameter(kindling_store::UNSTORABLE_TEXT.into())
            }
            e => Self::Store(e),
        }
    }
}

/// Lambda's answer for an unknown UUID.
pub(crate) fn mapping_not_found() -> EsmError {
    EsmError::NotFound("The resource you requested does not exist.".into())
}
