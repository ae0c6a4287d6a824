//! What can go wrong in a queue or topic operation: SQS's and SNS's error kinds, each carrying
//! the message AWS shows; failures of the store keep their cause as `source`.

use std::sync::Arc;

use kindling_store::StoreError;

/// An SQS operation's failure. The wire crates map each variant to its code and status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueNameExists(String),
    #[error(
        "You must wait 60 seconds after deleting a queue before you can create another queue with the same name."
    )]
    QueueDeletedRecently,
    #[error("Unknown Attribute {0}.")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("Maximum number of entries per request are 10. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    #[error("There should be at least one {0} in the request.")]
    EmptyBatchRequest(&'static str),
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    #[error("Batch requests cannot be longer than {limit} bytes. You have sent {sent} bytes.")]
    BatchRequestTooLong { limit: usize, sent: usize },
    #[error(
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
    )]
    InvalidBatchEntryId(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    /// The store failed; the cause is the source.
    #[error("the queue store failed")]
    Store(#[source] Arc<StoreError>),
    /// The message writer is gone (the server is stopping).
    #[error("the queue service is stopping")]
    Stopped,
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => Self::invalid(kindling_store::UNSTORABLE_TEXT),
            e => Self::Store(Arc::new(e)),
        }
    }
}

impl QueueError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidParameterValue(message.into())
    }

    /// Whether the service (not the caller) is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Stopped)
    }
}

/// An SNS operation's failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TopicError {
    #[error("{0}")]
    NotFound(String),
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("Filter policy scope {0} exceeds the allowed limits")]
    FilterPolicyLimitExceeded(String),
    #[error("The batch request contains more entries than permissible.")]
    TooManyEntriesInBatchRequest,
    #[error("The batch request doesn't contain any entries.")]
    EmptyBatchRequest,
    #[error("Two or more batch entries in the request have the same Id.")]
    BatchEntryIdsNotDistinct,
    #[error("The length of all the batch messages put together is more than the limit.")]
    BatchRequestTooLong,
    #[error("The Id of a batch entry in a batch request doesn't abide by the specification.")]
    InvalidBatchEntryId,
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("the topic store failed")]
    Store(#[source] Arc<StoreError>),
    /// A delivery into queues failed.
    #[error("could not deliver to the subscribed queues")]
    Queue(#[source] QueueError),
}

impl From<StoreError> for TopicError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => Self::invalid(kindling_store::UNSTORABLE_TEXT),
            e => Self::Store(Arc::new(e)),
        }
    }
}

impl TopicError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidParameter(message.into())
    }

    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Queue(_))
    }
}
