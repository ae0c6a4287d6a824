//! The one error type of the crate.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why an environment could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The [`EnvironmentSpec`](crate::EnvironmentSpec) is unusable (bad id, relative path, NUL
    /// byte, reserved mount point, ...). Retrying with the same spec fails the same way.
    #[error("invalid environment spec: {0}")]
    InvalidSpec(String),

    /// The isolation asked for cannot be had here: not root, namespaces refused, no cgroup
    /// controller for memory or pids. The caller may fall back to [`IsolationMode::Process`].
    ///
    /// [`IsolationMode::Process`]: crate::IsolationMode::Process
    #[error("isolation unavailable: {0}")]
    IsolationUnavailable(String),

    /// The program could not be executed (missing, not executable, bad interpreter line).
    /// Lambda reports this as `Runtime.InvalidEntrypoint`.
    #[error("cannot execute {}: {source}", program.display())]
    Exec {
        program: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A step of building the environment failed inside the new process (a mount, the working
    /// directory, dropping privileges, ...).
    #[error("environment setup failed while {step}: {source}")]
    Setup {
        step: String,
        #[source]
        source: io::Error,
    },

    /// Creating, configuring or driving the environment's cgroup failed.
    #[error("cgroup {}: {source}", path.display())]
    Cgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The system call filter every program runs under could not be built (libseccomp missing
    /// or too old); nothing is started without it.
    #[error("cannot build the system call filter: {0}")]
    SyscallFilter(String),

    /// The supervisor did not report the program as running in time.
    #[error("environment did not start within {0:?}")]
    StartTimeout(Duration),

    /// Any other operating system failure on Kindling's side (pipes, clone, ...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    /// True when the caller should retry in [`IsolationMode::Process`](crate::IsolationMode).
    pub fn is_isolation_unavailable(&self) -> bool {
        matches!(self, SandboxError::IsolationUnavailable(_))
    }

    /// True when the host ran out of something every environment needs (file descriptors,
    /// kernel memory, processes): nothing is wrong with the function, and a later start may
    /// succeed once environments have gone.
    pub fn is_host_exhausted(&self) -> bool {
        match self {
            // Inside the environment, memory and processes are the function's own limits
            // (its cgroup): only running out of descriptors is the host's.
            SandboxError::Exec { source, .. } | SandboxError::Setup { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
            }
            SandboxError::Cgroup { source, .. } | SandboxError::Io { source, .. } => {
                is_exhaustion(source)
            }
            SandboxError::InvalidSpec(_)
            | SandboxError::IsolationUnavailable(_)
            | SandboxError::SyscallFilter(_)
            | SandboxError::StartTimeout(_) => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        SandboxError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn cgroup(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SandboxError::Cgroup {
            path: path.into(),
            source,
        }
    }
}

/// Out of descriptors (the process's or the system's), memory, or processes.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_the_host_not_the_function() {
        let emfile = || io::Error::from_raw_os_error(libc::EMFILE);
        assert!(SandboxError::io("creating the stdout pipe", emfile()).is_host_exhausted());
        assert!(SandboxError::cgroup("/sys/fs/cgroup/x", emfile()).is_host_exhausted());
        let missing = SandboxError::Exec {
            program: "/var/task/bootstrap".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(
            !missing.is_host_exhausted(),
            "a missing bootstrap is the function's"
        );
        let too_small = SandboxError::Exec {
            program: "/var/task/bootstrap".into(),
            source: io::Error::from_raw_os_error(libc::ENOMEM),
        };
        assert!(
            !too_small.is_host_exhausted(),
            "its memory limit is the function's"
        );
        let clone = io::Error::from_raw_os_error(libc::EAGAIN);
        assert!(SandboxError::io("cloning the supervisor", clone).is_host_exhausted());
        assert!(!SandboxError::InvalidSpec("x".into()).is_host_exhausted());
    }
}
