//! Why the scheduler could not run an invocation at all (function errors are results, not these).

use crate::concurrency::ThrottleReason;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Concurrency exhausted: the caller gets 429 TooManyRequestsException.
    #[error("rate exceeded ({0:?})")]
    Throttled(ThrottleReason),
    /// The function's runtime cannot be executed on this host.
    #[error("{0}")]
    RuntimeUnavailable(String),
    /// The server is shutting down.
    #[error("the scheduler is shutting down")]
    ShuttingDown,
    /// A fault of Kindling itself (I/O, sandbox setup).
    #[error("{0}")]
    Internal(String),
}

impl From<std::io::Error> for SchedulerError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}
