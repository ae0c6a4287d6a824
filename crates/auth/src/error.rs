//! Why a request was not authenticated, in the shape of AWS's own answers.

use std::fmt;

const MISSING_TOKEN: &str = "Missing Authentication Token";
const UNRECOGNIZED_CLIENT: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// A request that failed SigV4 verification. Each variant maps to the status, exception name
/// and message AWS answers with; see [`AuthError::status`], [`AuthError::error_type`] and
/// [`AuthError::message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned-URL query parameters:
    /// 403 `MissingAuthenticationTokenException`.
    MissingAuthenticationToken,
    /// The `Authorization` header, presigned query parameters or date are malformed or
    /// incomplete: 400 `IncompleteSignatureException` with a message saying what is wrong.
    IncompleteSignature(String),
    /// Unknown access key id, or a session token that does not belong to it:
    /// 403 `UnrecognizedClientException`.
    UnrecognizedClient,
    /// Session credentials past their expiry: 403 `ExpiredTokenException`.
    ExpiredToken,
    /// The signature is well formed but wrong (wrong secret, tampered request, a different
    /// canonicalization): 403 `InvalidSignatureException`.
    SignatureDoesNotMatch,
    /// The request's date is more than 5 minutes from the server's clock (or a presigned URL
    /// is past its `X-Amz-Expires`): 403 `InvalidSignatureException`, "Signature expired: ..."
    /// or "Signature not yet current: ...".
    SignatureExpired(String),
    /// Another reason the signature cannot be accepted (credential scope for the wrong
    /// service, region or date, a payload hash that does not match the body, an unsigned
    /// payload where none is allowed): 403 `InvalidSignatureException`.
    InvalidSignature(String),
}

impl AuthError {
    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::IncompleteSignature(_) => 400,
            _ => 403,
        }
    }

    /// The exception name: the `x-amzn-ErrorType` header and the body's `Type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::ExpiredToken => "ExpiredTokenException",
            Self::SignatureDoesNotMatch | Self::SignatureExpired(_) | Self::InvalidSignature(_) => {
                "InvalidSignatureException"
            }
        }
    }

    /// The client-facing message. It never contains secrets.
    pub fn message(&self) -> &str {
        match self {
            Self::MissingAuthenticationToken => MISSING_TOKEN,
            Self::UnrecognizedClient => UNRECOGNIZED_CLIENT,
            Self::ExpiredToken => EXPIRED_TOKEN,
            Self::SignatureDoesNotMatch => SIGNATURE_MISMATCH,
            Self::IncompleteSignature(m)
            | Self::SignatureExpired(m)
            | Self::InvalidSignature(m) => m,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message())
    }
}

impl std::error::Error for AuthError {}
