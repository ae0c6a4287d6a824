//! Who may call S3, with the rules every service shares (`kindling_edge::gate`): in shared
//! mode every request is signed with an operator's key or a function's session credentials;
//! in local mode only requests from inside execution environments must be (with their own
//! session credentials), and other requests are served without a check.
//!
//! S3's signatures are checked before the body is read: SigV4 headers and presigned URLs
//! with S3's canonical URI (the auth crate's `s3` rules), and S3's legacy presigned URLs
//! (signature version 2, what boto3 and the aws CLI presign with by default; operators' keys
//! only). The payload hash a SigV4 signature covers is the `x-amz-content-sha256` value: a
//! hex hash is then checked against the body as it streams (`XAmzContentSHA256Mismatch`),
//! `UNSIGNED-PAYLOAD` and presigned URLs leave the body unsigned, and signed aws-chunked
//! bodies are checked chunk by chunk.
//!
//! Functions' session credentials may use objects and list buckets (the data plane); reading
//! bucket configuration needs `--function-api-access read`, changing buckets `full` (or an
//! `--admin-role`).

use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;
use kindling_auth::{AuthError, ChunkChain, Payload, UNSIGNED_PAYLOAD, is_s3_v2_query};
use kindling_edge::gate::{Access, AuthPolicy, Caller, Gate, GateError};

use crate::addressing::Target;
use crate::chunked::ChunkSignatures;
use crate::error::S3Error;
use crate::operation::Operation;

/// The S3 endpoint's gate.
#[derive(Debug)]
pub struct S3Auth {
    gate: Gate,
}

/// What the signature check found.
pub enum Signing {
    /// Not checked (an unsigned request allowed in local mode).
    None,
    /// A verified signature.
    Verified {
        caller: Caller,
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

/// AWS's S3 error for a failed signature check.
pub fn auth_error(e: &AuthError) -> S3Error {
    let (code, status) = match e {
        AuthError::UnrecognizedClient => ("InvalidAccessKeyId", 403),
        AuthError::SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
        AuthError::IncompleteSignature(_) => ("AuthorizationQueryParametersError", 400),
        AuthError::ExpiredToken => ("ExpiredToken", 400),
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

fn gate_error(e: GateError) -> S3Error {
    match e {
        GateError::Auth(e) => auth_error(&e),
        GateError::EnvironmentCredentialsRequired => S3Error::Auth {
            code: "AccessDenied",
            status: 403,
            message: "Requests from execution environments must be signed with their own \
                      session credentials."
                .into(),
        },
        GateError::AccessDenied {
            caller,
            action,
            resource,
        } => S3Error::Auth {
            code: "AccessDenied",
            status: 403,
            message: GateError::access_denied_message(&caller, &action, &resource),
        },
        GateError::Body(_) | GateError::Task(_) => S3Error::Auth {
            code: "AccessDenied",
            status: 403,
            message: "Access Denied".into(),
        },
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

/// Whether a SigV2 presigned URL covers what selects `op`. SigV2 signs only the
/// sub-resources of its day (`kindling_auth::sigv2`); `encryption` and `publicAccessBlock`
/// came later, so appending one to a captured presigned bucket URL (a CreateBucket PUT, a
/// DeleteBucket) would turn it into another operation under the same signature.
fn v2_signs_operation(op: Operation) -> bool {
    use Operation as Op;
    !matches!(
        op,
        Op::PutBucketEncryption
            | Op::GetBucketEncryption
            | Op::DeleteBucketEncryption
            | Op::PutPublicAccessBlock
            | Op::GetPublicAccessBlock
            | Op::DeletePublicAccessBlock
    )
}

/// What a function's credentials need to call `op`.
fn access(op: Operation) -> Access {
    use Operation as Op;
    match op {
        Op::CreateBucket
        | Op::DeleteBucket
        | Op::PutBucketVersioning
        | Op::PutBucketPolicy
        | Op::DeleteBucketPolicy
        | Op::PutBucketTagging
        | Op::DeleteBucketTagging
        | Op::PutBucketEncryption
        | Op::DeleteBucketEncryption
        | Op::PutPublicAccessBlock
        | Op::DeletePublicAccessBlock => Access::Write,
        Op::GetBucketVersioning
        | Op::GetBucketPolicy
        | Op::GetBucketTagging
        | Op::GetBucketEncryption
        | Op::GetPublicAccessBlock => Access::Read,
        _ => Access::Data,
    }
}

impl S3Auth {
    pub fn new(policy: Arc<AuthPolicy>) -> Self {
        Self {
            gate: Gate::with_verifier(policy, "s3", |v| v.allow_unsigned_payload(true)),
        }
    }

    /// Checks the request's signature from its head (`target`: where the request is
    /// addressed, for SigV2's canonical resource of virtual-hosted requests) and whether the
    /// caller may call `op`.
    pub fn check(&self, parts: &Parts, target: &Target, op: Operation) -> Result<Signing, S3Error> {
        if !self.gate.must_sign(parts) {
            return Ok(Signing::None);
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
        let (caller, chunks) = if parts.uri.query().is_some_and(is_s3_v2_query) {
            let request = kindling_auth::Request {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                payload: Payload::Sha256Hex(declared),
            };
            if !v2_signs_operation(op) {
                return Err(S3Error::Auth {
                    code: "AccessDenied",
                    status: 403,
                    message: format!(
                        "A presigned URL of signature version 2 does not sign the query \
                         parameter that selects {op:?}; presign it with SigV4."
                    ),
                });
            }
            let bucket = target.bucket.as_deref().filter(|_| target.virtual_hosted);
            let identity = self
                .gate
                .verifier()
                .verify_s3_v2_query(&request, bucket, SystemTime::now())
                .map_err(|e| auth_error(&e))?;
            let caller = Caller::Operator {
                access_key_id: identity.access_key_id,
            };
            (caller, None)
        } else {
            let admission = self.gate.check_head(parts).map_err(gate_error)?;
            let streaming = matches!(
                declared,
                kindling_auth::STREAMING_SIGNED | kindling_auth::STREAMING_SIGNED_TRAILER
            );
            let chunks = admission
                .chunk_chain()
                .filter(|_| streaming)
                .map(|c| Box::new(Chain(c)) as Box<dyn ChunkSignatures>);
            let caller = self
                .gate
                .finish(admission, parts, declared)
                .map_err(gate_error)?;
            (caller, chunks)
        };
        let resource = match (&target.bucket, target.key.as_str()) {
            (None, _) => "*".to_string(),
            (Some(b), "") => format!("arn:aws:s3:::{b}"),
            (Some(b), k) => format!("arn:aws:s3:::{b}/{k}"),
        };
        self.gate
            .authorize(&caller, access(op), &format!("s3:{op:?}"), &resource, false)
            .map_err(gate_error)?;
        Ok(Signing::Verified { caller, chunks })
    }
}
