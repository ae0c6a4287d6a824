//! Content addresses: `sha256:<64 lowercase hex>` (the only algorithm Kindling accepts; the
//! OCI spec's `sha512` is refused as unsupported).

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A SHA-256 content address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} is not of the form sha256:<64 hex digits>")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported (only sha256)")]
    Unsupported(String),
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(text: &str) -> Result<Self, DigestError> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(DigestError::Malformed(text.to_string()));
        };
        if algorithm != "sha256" {
            let known = matches!(algorithm, "sha512" | "sha384" | "blake3");
            return Err(if known {
                DigestError::Unsupported(algorithm.to_string())
            } else {
                DigestError::Malformed(text.to_string())
            });
        }
        Self::from_hex(hex).ok_or_else(|| DigestError::Malformed(text.to_string()))
    }

    /// From 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(
            || Self {
                hex: hex.to_string(),
            },
        )
    }

    /// The digest of a finished SHA-256.
    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Self { hex }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(data).into())
    }

    /// The 64 hex digits (safe as a file name).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        for bad in [
            "",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(DigestError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Digest::parse("sha512:abcd"),
            Err(DigestError::Unsupported(_))
        ));
    }
}
