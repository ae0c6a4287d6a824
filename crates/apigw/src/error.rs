//! API Gateway's error kinds (the same for v1 and v2), each with the message the client sees.

use kindling_store::StoreError;

pub type Result<T, E = ApigwError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApigwError {
    /// `NotFoundException` (404).
    #[error("{0}")]
    NotFound(String),
    /// `BadRequestException` (400).
    #[error("{0}")]
    BadRequest(String),
    /// `ConflictException` (409).
    #[error("{0}")]
    Conflict(String),
    /// `LimitExceededException` (429): a quota of the API (routes, resources, stages...).
    #[error("{0}")]
    LimitExceeded(String),
    /// `TooManyRequestsException` (429): writers kept racing on one API.
    #[error("{0}")]
    TooManyRequests(String),
    /// The store failed; the source keeps the cause (500, no detail to the client).
    #[error("the API store failed")]
    Store(#[source] StoreError),
}

impl From<StoreError> for ApigwError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => bad(kindling_store::UNSTORABLE_TEXT),
            e => Self::Store(e),
        }
    }
}

pub(crate) fn bad(message: impl Into<String>) -> ApigwError {
    ApigwError::BadRequest(message.into())
}
