//! SQS's errors on the wire: each kind with its JSON `__type` name, its legacy query code
//! (the `x-amzn-query-error` header and the query protocol's `<Code>`) and its status.

use kindling_protocol::{ProtocolError, WireError};
use kindling_queues::QueueError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
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
    /// The body could not be read (timeout, budget, connection).
    #[error("The request body could not be read: {0}")]
    Body(String),
}

impl SqsError {
    /// `(JSON __type, legacy query code, status)`.
    pub fn codes(&self) -> (&str, &str, u16) {
        match self {
            Self::Queue(e) => queue_codes(e),
            Self::Protocol(ProtocolError::Missing(_)) => {
                ("MissingParameter", "MissingParameter", 400)
            }
            Self::Protocol(ProtocolError::Invalid { .. }) => {
                ("InvalidParameterValue", "InvalidParameterValue", 400)
            }
            Self::Protocol(ProtocolError::Malformed(_)) => {
                ("MalformedQueryString", "MalformedQueryString", 400)
            }
            Self::InvalidAction(_) => ("InvalidAction", "InvalidAction", 400),
            Self::Auth { status, code, .. } => (code, code, *status),
            Self::TooLarge(_) => ("RequestEntityTooLarge", "RequestEntityTooLarge", 413),
            Self::Body(_) => ("RequestTimeout", "RequestTimeout", 400),
        }
    }
}

/// The code and status of each domain error.
pub fn queue_codes(e: &QueueError) -> (&'static str, &'static str, u16) {
    use QueueError as E;
    match e {
        E::QueueDoesNotExist => (
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            400,
        ),
        E::QueueNameExists(_) => ("QueueNameExists", "QueueAlreadyExists", 400),
        E::QueueDeletedRecently => (
            "QueueDeletedRecently",
            "AWS.SimpleQueueService.QueueDeletedRecently",
            400,
        ),
        E::InvalidAttributeName(_) => ("InvalidAttributeName", "InvalidAttributeName", 400),
        E::InvalidAttributeValue(_) => ("InvalidAttributeValue", "InvalidAttributeValue", 400),
        E::InvalidParameterValue(_) => ("InvalidParameterValue", "InvalidParameterValue", 400),
        E::MissingParameter(_) => ("MissingParameter", "MissingParameter", 400),
        E::InvalidMessageContents(_) => ("InvalidMessageContents", "InvalidMessageContents", 400),
        E::TooManyEntriesInBatchRequest(_) => (
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            400,
        ),
        E::EmptyBatchRequest(_) => (
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            400,
        ),
        E::BatchEntryIdsNotDistinct(_) => (
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            400,
        ),
        E::BatchRequestTooLong { .. } => (
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            400,
        ),
        E::InvalidBatchEntryId(_) => (
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            400,
        ),
        E::ReceiptHandleIsInvalid(_) => ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400),
        E::MessageNotInflight => (
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            400,
        ),
        E::PurgeQueueInProgress(_) => (
            "PurgeQueueInProgress",
            "AWS.SimpleQueueService.PurgeQueueInProgress",
            403,
        ),
        E::UnsupportedOperation(_) => (
            "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            400,
        ),
        E::ResourceNotFound(_) => (
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            404,
        ),
        E::Store(_) | E::Stopped => ("InternalError", "InternalError", 500),
    }
}

impl WireError for SqsError {
    fn status(&self) -> u16 {
        self.codes().2
    }

    fn code(&self) -> &str {
        self.codes().0
    }

    fn message(&self) -> String {
        match self {
            Self::Queue(e) if e.is_internal() => {
                "We encountered an internal error. Please try again.".into()
            }
            other => other.to_string(),
        }
    }
}

/// The same error, answering with its legacy code (the query protocol's `<Code>`).
pub struct Legacy<'a>(pub &'a SqsError);

impl WireError for Legacy<'_> {
    fn status(&self) -> u16 {
        self.0.status()
    }

    fn code(&self) -> &str {
        self.0.codes().1
    }

    fn message(&self) -> String {
        self.0.message()
    }
}
