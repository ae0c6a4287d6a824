//! What a service error must say about itself to be rendered in any protocol.

/// Who is to blame: the query protocol's `<Type>` and SQS's `x-amzn-query-error` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "Sender",
            Self::Receiver => "Receiver",
        }
    }
}

/// A service's error as its wire shows it. Implemented once per service error enum.
pub trait WireError {
    /// HTTP status.
    fn status(&self) -> u16;
    /// The error code clients match on (`QueueDoesNotExist`, `ValidationError`...).
    fn code(&self) -> &str;
    /// The text shown to the client. Internal errors must not leak detail here.
    fn message(&self) -> String;
    /// `Receiver` for the service's own failures (5xx), else `Sender`.
    fn fault(&self) -> Fault {
        if self.status() >= 500 {
            Fault::Receiver
        } else {
            Fault::Sender
        }
    }
}

/// A request that cannot be read as its protocol requires. Services usually wrap it in their
/// own error enum and render it with their protocol's code for malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A required parameter is absent.
    #[error("Value for parameter {0} is missing")]
    Missing(String),
    /// A parameter's value cannot be read as its type.
    #[error("Value {value} for parameter {name} is invalid. {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    /// The body is not what the protocol requires (bad form encoding, bad JSON, bad XML).
    #[error("{0}")]
    Malformed(String),
}

impl ProtocolError {
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
