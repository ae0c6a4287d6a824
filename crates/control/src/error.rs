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
    /// `ProvisionedConcurrencyConfigNotFoundException`.
    #[error("{0}")]
    ProvisionedConfigNotFound(String),
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
    /// The state store failed: `ServiceException`. The store error, with its cause, is the
    /// source (logged, not sent). Outcomes the operation expects (absent, present, stale...)
    /// are mapped to the variants above where the store is called; `?` on a store call hands
    /// everything else here.
    #[error("the state store failed")]
    Store(#[source] StoreError),
    /// Reading or writing code packages failed: `ServiceException`, the cause logged.
    #[error("the code package store failed")]
    Io(#[source] std::io::Error),
    /// The object store holding `S3Bucket`/`S3Key` packages failed: `ServiceException`, the
    /// cause logged.
    #[error("the object store failed")]
    CodeSource(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Kindling's own state contradicts itself (a bug or a damaged data dir), with no
    /// underlying error: `ServiceException`; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => {
                Self::InvalidParameter(kindling_store::UNSTORABLE_TEXT.into())
            }
            e => Self::Store(e),
        }
    }
}

impl From<std::io::Error> for ControlError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The AWS message for a stale revision id.
pub(crate) fn revision_mismatch() -> ControlError {
    ControlError::PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            .into(),
    )
}

/// Lambda's answer when a write raced another writer of the same resource.
pub(crate) fn update_in_progress(function_arn: &str) -> ControlError {
    ControlError::Conflict(format!(
        "The operation cannot be performed at this time. An update is in progress for resource: {function_arn}"
    ))
}

/// A compare-and-swap the store refused (`RevisionMismatch`): the client's `RevisionId` went
/// stale (`PreconditionFailedException`) or, when it sent none, another writer (another node)
/// changed the resource since it was read (`ResourceConflictException`).
pub(crate) fn stale_revision(client_sent_revision: bool, function_arn: &str) -> ControlError {
    if client_sent_revision {
        revision_mismatch()
    } else {
        update_in_progress(function_arn)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use kindling_store::Entity;

    use super::*;

    #[test]
    fn store_failures_keep_their_cause() {
        let cause = std::io::Error::other("disk on fire");
        let e = ControlError::from(cause);
        assert_eq!(e.to_string(), "the code package store failed");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("disk on fire")
        );

        let e = ControlError::from(StoreError::NotFound(Entity::Alias));
        assert!(matches!(
            &e,
            ControlError::Store(StoreError::NotFound(Entity::Alias))
        ));
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("alias not found")
        );
    }

    #[test]
    fn a_stale_revision_is_a_precondition_only_when_the_client_sent_one() {
        assert!(matches!(
            stale_revision(true, "arn"),
            ControlError::PreconditionFailed(_)
        ));
        assert!(matches!(
            stale_revision(false, "arn"),
            ControlError::Conflict(m) if m.ends_with("resource: arn")
        ));
    }
}
