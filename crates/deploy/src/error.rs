//! The engine's typed errors; `kindling-cloudformation` maps them to the wire in one place.

use kindling_cfn_template::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// `ValidationError` (400): bad input, unknown stack, template problems.
    #[error("{0}")]
    Validation(String),
    /// `AlreadyExistsException` (400).
    #[error("{0}")]
    AlreadyExists(String),
    /// `ChangeSetNotFound` (404).
    #[error("{0}")]
    ChangeSetNotFound(String),
    /// `InsufficientCapabilitiesException` (400).
    #[error("{0}")]
    InsufficientCapabilities(String),
    /// `InvalidChangeSetStatus` (400).
    #[error("{0}")]
    InvalidChangeSetStatus(String),
    /// `LimitExceededException` (400).
    #[error("{0}")]
    LimitExceeded(String),
    /// The state store failed (500); the cause is logged, not sent.
    #[error("the stack store failed")]
    Store(#[source] kindling_store::StoreError),
    /// The engine could not read its own record (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TemplateError> for DeployError {
    fn from(e: TemplateError) -> Self {
        Self::Validation(e.to_string())
    }
}

impl From<kindling_store::StoreError> for DeployError {
    fn from(e: kindling_store::StoreError) -> Self {
        match e {
            kindling_store::StoreError::UnstorableText(_) => {
                Self::Validation(kindling_store::UNSTORABLE_TEXT.into())
            }
            e => Self::Store(e),
        }
    }
}

pub type Result<T, E = DeployError> = std::result::Result<T, E>;

/// "Stack with id X does not exist".
pub fn no_stack(name: &str) -> DeployError {
    DeployError::Validation(format!("Stack with id {name} does not exist"))
}
