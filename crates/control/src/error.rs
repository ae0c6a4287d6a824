//! The control plane's error type: one variant per kind of answer a client gets.

use kindling_store::StoreError;

pub type Result<T, E = ControlError> = std::result::Result<T, E>;

/// Why an operation failed. Each variant maps to one Lambda exception in the API crate.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A model constraint (pattern, length, range, enum) was violated: `ValidationException`.
    #[error("{0}")]
    Validation(String),
    /// A parameter is wrong for the service: `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// The request body is not the JSON the operation expects: `InvalidRequestContentException`.
    #[error("{0}")]
    InvalidRequestContent(String),
    /// `ResourceNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// `ResourceConflictException`.
    #[error("{0}")]
    Conflict(String),
    /// A stale `RevisionId`: `PreconditionFailedException`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A code upload over the size quota: `RequestEntityTooLargeException`.
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// Account code storage exhausted: `CodeStorageExceededException`.
    #[error("{0}")]
    CodeStorageExceeded(String),
    /// A resource policy over 20 KB: `PolicyLengthExceededException`.
    #[error("{0}")]
    PolicyLengthExceeded(String),
    /// A fault of Kindling itself: `ServiceException`; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<std::io::Error> for ControlError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The AWS message for a stale revision id.
pub(crate) fn revision_mismatch() -> ControlError {
    ControlError::PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            .into(),
    )
}
