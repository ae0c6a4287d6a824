//! What the data plane needs to run one invocation, as resolved by the control plane.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Qualifier;
use crate::function::VersionRecord;

/// The version chosen to run (after alias routing), its packages and concurrency settings.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub record: Arc<VersionRecord>,
    /// The ARN as invoked: unqualified, version or alias ARN.
    pub invoked_arn: String,
    /// The qualifier as invoked (`None`: unqualified, which runs `$LATEST`).
    pub qualifier: Option<Qualifier>,
    pub code_zip: PathBuf,
    /// Layers in order: (blob id, zip path).
    pub layers: Vec<(String, PathBuf)>,
    /// A container image's layer files, bottom first (empty for zip functions).
    pub image_layers: Vec<PathBuf>,
    pub reserved_concurrency: Option<u32>,
    /// Account concurrency not reserved by any function.
    pub unreserved_pool: u32,
}

impl InvokeTarget {
    /// The function ARN qualified with what was invoked (`...:$LATEST` when unqualified), as
    /// destination records show it.
    pub fn qualified_arn(&self) -> String {
        match self.qualifier {
            Some(_) => self.invoked_arn.clone(),
            None => format!("{}:$LATEST", self.invoked_arn),
        }
    }
}

/// The error type of a failed invocation, as the caller and the logs see it (`errorType` of
/// platform errors, `Error Type:` of REPORT lines). The wire names live here only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FunctionError {
    /// `Runtime.ExitError`: the runtime exited (or was killed) before answering.
    ExitError,
    /// `Runtime.OutOfMemory`: the environment reached its memory limit.
    OutOfMemory,
    /// `Sandbox.Timedout`: the invocation (or Init) ran out of time.
    Timeout,
    /// `Function.ResponseSizeTooLarge`: the response was over the limit.
    ResponseTooLarge,
    /// `Runtime.InvalidEntrypoint`: the runtime could not be started.
    InvalidEntrypoint,
    /// `Runtime.Unknown`: an init error posted without a type.
    Unknown,
    /// `Unhandled`: the runtime posted an invocation error without a type.
    Unhandled,
    /// Any other type, as the runtime posted it (`Runtime.ImportModuleError`, `ValueError`...).
    Runtime(String),
}

impl FunctionError {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ExitError => "Runtime.ExitError",
            Self::OutOfMemory => "Runtime.OutOfMemory",
            Self::Timeout => "Sandbox.Timedout",
            Self::ResponseTooLarge => "Function.ResponseSizeTooLarge",
            Self::InvalidEntrypoint => "Runtime.InvalidEntrypoint",
            Self::Unknown => "Runtime.Unknown",
            Self::Unhandled => "Unhandled",
            Self::Runtime(t) => t,
        }
    }

    /// The type a runtime posted (`Lambda-Runtime-Function-Error-Type`); the platform's own
    /// names map to their variants.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "Runtime.ExitError" => Self::ExitError,
            "Runtime.OutOfMemory" => Self::OutOfMemory,
            "Sandbox.Timedout" => Self::Timeout,
            "Function.ResponseSizeTooLarge" => Self::ResponseTooLarge,
            "Runtime.InvalidEntrypoint" => Self::InvalidEntrypoint,
            "Runtime.Unknown" => Self::Unknown,
            "Unhandled" => Self::Unhandled,
            other => Self::Runtime(other.to_string()),
        }
    }
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_error_names_round_trip() {
        for e in [
            FunctionError::ExitError,
            FunctionError::OutOfMemory,
            FunctionError::Timeout,
            FunctionError::ResponseTooLarge,
            FunctionError::InvalidEntrypoint,
            FunctionError::Unknown,
            FunctionError::Unhandled,
            FunctionError::Runtime("Runtime.ImportModuleError".into()),
        ] {
            assert_eq!(FunctionError::from_wire(e.as_str()), e);
        }
        assert_eq!(FunctionError::Timeout.to_string(), "Sandbox.Timedout");
    }
}
