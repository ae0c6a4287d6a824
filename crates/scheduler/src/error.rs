//! Why the scheduler could not run an invocation at all (function errors are results, not these).

use kindling_package::PackageError;

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
    /// The function's package (or a layer) cannot be unpacked: Lambda's
    /// `InvalidZipFileException`.
    #[error("{0}")]
    InvalidPackage(#[source] PackageError),
    /// A fault of Kindling itself (I/O, sandbox setup).
    #[error("{0}")]
    Internal(String),
}

impl From<std::io::Error> for SchedulerError {
    fn from(e: std::io::Error) -> Self {
        // Unpacking reports a bad package as an I/O error carrying the `PackageError`.
        if e.get_ref()
            .and_then(|inner| inner.downcast_ref::<PackageError>())
            .is_some_and(PackageError::is_invalid_package)
        {
            let text = e.to_string();
            return match e.into_inner().map(|inner| inner.downcast::<PackageError>()) {
                Some(Ok(package)) => Self::InvalidPackage(*package),
                _ => Self::Internal(text),
            };
        }
        Self::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_package_is_not_an_internal_error() {
        let bad = PackageError::TooLarge { limit: 10 };
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, bad);
        assert!(matches!(
            SchedulerError::from(io),
            SchedulerError::InvalidPackage(PackageError::TooLarge { limit: 10 })
        ));
        let disk_full = PackageError::Write {
            path: "x".into(),
            source: std::io::Error::other("no space"),
        };
        let io = std::io::Error::other(disk_full);
        assert!(matches!(
            SchedulerError::from(io),
            SchedulerError::Internal(_)
        ));
        let plain = std::io::Error::other("boom");
        assert!(matches!(
            SchedulerError::from(plain),
            SchedulerError::Internal(_)
        ));
    }
}
