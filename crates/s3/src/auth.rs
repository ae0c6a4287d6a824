//! SigV4 for S3 requests when the server has credentials: the `Authorization` header or a
//! presigned URL is checked before the body is read (S3's canonical URI: the path as sent,
//! not normalized, not encoded again). The payload hash the signature covers is the
//! `x-amz-content-sha256` value: a hex hash is then checked against the body as it streams
//! (`XAmzContentSHA256Mismatch`), `UNSIGNED-PAYLOAD` and presigned URLs leave the body
//! unsigned, and signed aws-chunked bodies are checked chunk by chunk.

use std::time::SystemTime;

use http::request::Parts;
use kindling_auth::{
    AuthError, ChunkChain, Payload, UNSIGNED_PAYLOAD, VerifiedIdentity, Verifier, is_s3_v2_query,
};

use kindling_edge::{Origin, RequestContext};

use crate::addressing::Target;
use crate::chunked::ChunkSignatures;
use crate::error::S3Error;

/// The S3 endpoint's authentication settings (the same rules as the Lambda API's): in
/// shared mode every request must be signed with an operator's key or a function's session
/// credentials; in local mode only requests from inside execution environments must be (with
/// their own session credentials), and other requests are served without a check.
#[derive(Debug)]
pub struct S3Auth {
    /// Verifies signatures scoped to service `s3` (operators' keys and session credentials).
    pub verifier: Verifier,
    /// Shared mode: every request must be signed.
    pub require_signature: bool,
}

/// What the signature check found.
pub enum Signing {
    /// No check (no credentials configured, or an unsigned request allowed in local mode).
    None,
    /// A verified signature.
    Verified {
        identity: VerifiedIdentity,
        /// The chain that checks the chunk signatures of a signed aws-chunked body.
        chunks: Option<Box<dyn ChunkSignatures>>,
    },
}

impl Signing {
    /// Takes the chunk-signature checker, if the request is signed.
    pub fn take_chunks(&mut self) -> Option<Box<dyn ChunkSignatures>> {
        match self {
            Self::Verified { chunks, .. } => chunks.take(),
            Self::None => None,
        }
    }

    /// Whether the signature was checked (so chunk signatures must be, too).
    pub fn verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }
}

fn is_signed(parts: &Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.uri.query().is_some_and(|q| {
            is_s3_v2_query(q)
                || q.split('&').any(|p| {
                    p.starts_with("X-Amz-Signature=")
                        || p.starts_with("X-Amz-Credential=")
                        || p.starts_with("X-Amz-Algorithm=")
                })
        })
}

/// AWS's S3 error for a failed signature check.
pub fn auth_error(e: &AuthError) -> S3Error {
    let (code, status) = match e {
        AuthError::MissingAuthenticationToken => ("AccessDenied", 403),
        AuthError::UnrecognizedClient => ("InvalidAccessKeyId", 403),
        AuthError::SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
        AuthError::SignatureExpired(_) => ("AccessDenied", 403),
        AuthError::IncompleteSignature(_) => ("AuthorizationQueryParametersError", 400),
        _ => ("AccessDenied", 403),
    };
    let message = match e {
        AuthError::UnrecognizedClient => {
            "The AWS Access Key Id you provided does not exist in our records.".to_string()
        }
        AuthError::SignatureDoesNotMatch => "The request signature we calculated does not match \
            the signature you provided. Check your key and signing method."
            .to_string(),
        AuthError::MissingAuthenticationToken => "Access Denied".to_string(),
        e => e.message().to_string(),
    };
    S3Error::Auth {
        code,
        status,
        message,
    }
}

impl S3Auth {
    /// Whether this request must be signed: always in shared mode, else when it comes from
    /// inside an execution environment.
    fn must_sign(&self, parts: &Parts) -> bool {
        self.require_signature
            || parts
                .extensions
                .get::<RequestContext>()
                .is_some_and(|c| matches!(c.origin, Origin::Environment { .. }))
    }

    /// Checks the request's signature from its head (`target`: where the request is
    /// addressed, for SigV2's canonical resource of virtual-hosted requests).
    pub fn check(&self, parts: &Parts, target: &Target) -> Result<Signing, S3Error> {
        if !self.must_sign(parts) {
            return Ok(Signing::None);
        }
        if !is_signed(parts) {
            return Err(auth_error(&AuthError::MissingAuthenticationToken));
        }
        let headers: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let declared = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(UNSIGNED_PAYLOAD);
        let request = kindling_auth::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            payload: Payload::Sha256Hex(declared),
        };
        if parts.uri.query().is_some_and(is_s3_v2_query) {
            let bucket = target.bucket.as_deref().filter(|_| target.virtual_hosted);
            let identity = self
                .verifier
                .verify_s3_v2_query(&request, bucket, SystemTime::now())
                .map_err(|e| auth_error(&e))?;
            return Ok(Signing::Verified {
                identity,
                chunks: None,
            });
        }
        let (identity, chain) = self
            .verifier
            .verify_streaming(&request, SystemTime::now())
            .map_err(|e| auth_error(&e))?;
        Ok(Signing::Verified {
            identity,
            chunks: chain.map(|c| Box::new(Chain(c)) as Box<dyn ChunkSignatures>),
        })
    }
}

/// The auth crate's chunk-signature chain as the decoder's checker.
struct Chain(ChunkChain);

impl ChunkSignatures for Chain {
    fn chunk(&mut self, chunk_sha256: &[u8; 32], signature: &str) -> bool {
        self.0.verify_chunk(chunk_sha256, signature)
    }

    fn trailer(&mut self, trailer_lines: &[u8], signature: &str) -> bool {
        self.0.verify_trailer(trailer_lines, signature)
    }
}
