//! Why the scheduler could not run an invocation at all (function errors are results, not these).

use kindling_package::PackageError;

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
    /// A start that expected to claim a pre-initialized environment found none that fits, and
    /// the node keeps `--max-environments` environments already: the caller makes room or
    /// throttles, as when its own reservation fails (it never reaches the API as such).
    #[error("the node keeps --max-environments environments already")]
    NoPlace,
    /// The function's package (or a layer) cannot be unpacked: Lambda's
    /// `InvalidZipFileException`.
    #[error("{0}")]
    InvalidPackage(#[source] PackageError),
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
        /// A `tokio::task::JoinError`, or an invocation's caught panic.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SchedulerError {
    /// Wraps an I/O error of the step `what` (for `map_err`).
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }

    /// Wraps an error of unpacking (step `what`): a package the function's owner gave that
    /// cannot be unpacked is [`InvalidPackage`](Self::InvalidPackage) (unpacking reports it
    /// as an I/O error carrying the `PackageError`); anything else is Kindling's own fault.
    pub(crate) fn unpacking(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| {
            let invalid = source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<PackageError>())
                .is_some_and(PackageError::is_invalid_package);
            if !invalid {
                return Self::Io { what, source };
            }
            match source
                .into_inner()
                .map(|inner| inner.downcast::<PackageError>())
            {
                Some(Ok(package)) => Self::InvalidPackage(*package),
                // Unreachable (checked above); keep the error rather than panic.
                Some(Err(inner)) => Self::Io {
                    what,
                    source: std::io::Error::other(inner),
                },
                None => Self::Io {
                    what,
                    source: std::io::Error::other("unpacking failed"),
                },
            }
        }
    }

    /// Wraps a join error of the task `what` (for `map_err`).
    pub(crate) fn task(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Self::Task {
            what,
            source: Box::new(source),
        }
    }

    /// An invocation run in place panicked (for `map_err`).
    pub(crate) fn panicked(what: &'static str) -> impl FnOnce(crate::detach::Panicked) -> Self {
        move |source| Self::Task {
            what,
            source: Box::new(source),
        }
    }

    /// True when a start failed because the host ran out of file descriptors, memory or
    /// processes: not the function's fault, and worth retrying once environments have gone.
    pub fn is_host_exhausted(&self) -> bool {
        match self {
            Self::Sandbox { source, .. } => source.is_host_exhausted(),
            Self::Io { source, .. } | Self::Users(UserPoolError::Lock { source, .. }) => {
                kindling_sandbox::is_exhaustion(source)
            }
            _ => false,
        }
    }

    /// A fault of Kindling itself, not of the caller or the function (the API answers 500).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Io { .. } | Self::Sandbox { .. } | Self::Users(_) | Self::Task { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_package_is_not_an_internal_error() {
        let unpacking = SchedulerError::unpacking("unpacking the function's code");
        let bad = PackageError::TooLarge { limit: 10 };
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, bad);
        assert!(matches!(
            unpacking(io),
            SchedulerError::InvalidPackage(PackageError::TooLarge { limit: 10 })
        ));
        let disk_full = PackageError::Write {
            path: "x".into(),
            source: std::io::Error::other("no space"),
        };
        let io = std::io::Error::other(disk_full);
        let e = SchedulerError::unpacking("unpacking the function's code")(io);
        assert!(matches!(e, SchedulerError::Io { .. }) && e.is_internal());
        let plain = std::io::Error::other("boom");
        let e = SchedulerError::unpacking("unpacking the function's layers")(plain);
        assert_eq!(e.to_string(), "unpacking the function's layers: boom");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    }
}
