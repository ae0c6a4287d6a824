//! Why the scheduler could not run an invocation at all (function errors are results, not these).

use crate::concurrency::ThrottleReason;
use crate::users::UserPoolError;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Concurrency exhausted, or no environment could be had in time: the caller gets 429
    /// TooManyRequestsException.
    #[error("rate exceeded ({0:?})")]
    Throttled(ThrottleReason),
    /// The function's runtime cannot be executed on this host.
    #[error("{0}")]
    RuntimeUnavailable(String),
    /// The server is shutting down.
    #[error("the scheduler is shutting down")]
    ShuttingDown,
    /// A file-system step of Kindling's (work directories, unpacking, log files) failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not prepare an environment's network.
    #[error("{what}: {source}")]
    Sandbox {
        what: &'static str,
        #[source]
        source: kindling_sandbox::SandboxError,
    },
    /// No user id could be had for a namespaced environment.
    #[error("leasing an environment user id: {0}")]
    Users(#[source] UserPoolError),
    /// A task of the scheduler's (an invocation, a blocking preparation step) panicked or was
    /// cancelled by the runtime shutting down.
    #[error("{what}: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SchedulerError {
    /// Wraps an I/O error of the step `what` (for `map_err`).
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }

    /// Wraps a join error of the task `what` (for `map_err`).
    pub(crate) fn task(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Self::Task { what, source }
    }

    /// A fault of Kindling itself, not of the caller or the function (the API answers 500).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Io { .. } | Self::Sandbox { .. } | Self::Users(_) | Self::Task { .. }
        )
    }
}
