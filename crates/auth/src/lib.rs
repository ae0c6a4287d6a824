//! Optional AWS Signature Version 4 verification of API requests.
//!
//! Knows no HTTP framework: the caller hands over a [`Request`] (method, raw path and query as
//! received, headers, body or its hash) with the server's current time, and gets back the
//! [`VerifiedIdentity`] or an [`AuthError`] that says what AWS would answer
//! ([`AuthError::status`], [`AuthError::error_type`], [`AuthError::message`]).
//!
//! Canonicalization is what AWS SDKs compute for a non-S3 service such as Lambda: the path as
//! received, normalized and percent-encoded once more (`my-fn%3Aprod` → `my-fn%253Aprod`);
//! query pairs decoded, re-encoded and sorted; signed headers lowercased, trimmed and
//! whitespace-collapsed. Both the `Authorization: AWS4-HMAC-SHA256 Credential=...,
//! SignedHeaders=..., Signature=...` header form and presigned URLs (`X-Amz-Algorithm`,
//! `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
//! `X-Amz-Signature`) are accepted.
//!
//! # Wiring it into a server
//!
//! * Pass the path and query exactly as received (`uri.path()`, `uri.query()`), never decoded
//!   or re-encoded forms, and every header including `host` (behind a proxy that rewrites
//!   `Host`, the signature will not match).
//! * Build one [`Verifier`] per credentials file ([`Credentials::from_file`]) and share it
//!   (`Arc<Verifier>`); it caches derived signing keys.
//! * Map an [`AuthError`] to the response with `status()`, `error_type()` (the
//!   `x-amzn-ErrorType` header and body `Type`) and `message()`.
//!
//! # Checks, in order
//!
//! 1. `Authorization` header or presigned query present, not both
//!    (`MissingAuthenticationTokenException`, `IncompleteSignatureException`).
//! 2. Parameters and date well formed: `Credential`, `SignedHeaders` (must include `host`),
//!    `Signature`, `X-Amz-Date` (or an HTTP `Date` header), `X-Amz-Expires` up to 7 days
//!    (`IncompleteSignatureException`).
//! 3. Credential scope: `aws4_request`, the verifier's service (`lambda`), its region if one
//!    is set, the date of `X-Amz-Date` (`InvalidSignatureException`).
//! 4. Clock: within 5 minutes of the server, or within `X-Amz-Expires` for presigned URLs
//!    (`InvalidSignatureException`, "Signature expired: ..." / "Signature not yet current:
//!    ...").
//! 5. Every `x-amz-*` header the request carries is signed (`InvalidSignatureException`),
//!    and no signed header is sent twice (`IncompleteSignatureException`: its values would be
//!    signed joined with `,` while the services read the first).
//! 6. Access key known, and the request's `X-Amz-Security-Token` equal to the key's session
//!    token, or both absent; or, with a [`SessionIssuer`], an `ASIA...` key whose session
//!    token that issuer minted (`UnrecognizedClientException`), not yet expired
//!    (`ExpiredTokenException`).
//! 7. `X-Amz-Content-Sha256`, when sent, matches the body (`InvalidSignatureException`).
//! 8. The signature (`InvalidSignatureException`).
//!
//! Steps 1-6 need only the request head: [`Verifier::check_head`] runs them, so a server can
//! refuse a request before reading its body, and [`PendingSignature::finish`] runs 7 and 8
//! ([`Verifier::verify`] does both).
//!
//! For service `s3` the canonical URI is S3's (the path as sent, not normalized or encoded
//! again; also accepted: encoded once from the decoded key), the `STREAMING-*` payload
//! hashes of aws-chunked uploads are signed as they are, and
//! [`PendingSignature::chunk_chain`] is the [`ChunkChain`] that checks a signed upload's chunk
//! signatures.
//! [`Verifier::verify_s3_v2_query`] checks S3's legacy presigned URLs (signature version 2,
//! what boto3 and the aws CLI presign S3 URLs with by default).
//!
//! Step 8 accepts the readings on which real signers differ, each still requiring the secret:
//! a `+` in the query as a literal plus (SDKs) or as a space (HTML-form encoders such as
//! Python's `urlencode`), and a path ending in `/.` or `/..` with or without a trailing slash
//! (botocore and AWS JS SDK v3 versus the AWS Rust SDK).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use kindling_auth::{Credentials, Payload, Request, Verifier};
//!
//! let verifier = Verifier::new(Credentials::new().with_key("AKIDEXAMPLE", "secret"));
//! let request = Request {
//!     method: "GET",
//!     path: "/2015-03-31/functions/",
//!     query: "",
//!     headers: &[("host", b"localhost:9001")],
//!     payload: Payload::Bytes(b""),
//! };
//! let now = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
//! let error = verifier.verify(&request, now).unwrap_err();
//! assert_eq!(error.error_type(), "MissingAuthenticationTokenException");
//! assert_eq!(error.status(), 403);
//! ```

mod canonical;
pub mod credentials;
mod crypto;
mod error;
pub mod session;
mod sign;
mod sigv2;
mod streaming;
mod time;
mod verify;

pub use credentials::{Credentials, CredentialsError};
pub use error::AuthError;
pub use session::{FunctionSession, SessionCredentials, SessionIssuer};
pub use sign::{SigningParams, amz_date, authorization_header, presigned_query};
pub use sigv2::is_s3_v2_query;
pub use streaming::ChunkChain;
pub use verify::{
    ALGORITHM, MAX_CLOCK_SKEW_SECS, MAX_PRESIGNED_EXPIRES_SECS, Payload, PendingSignature, Request,
    STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD,
    VerifiedIdentity, Verifier,
};

#[cfg(test)]
mod tests;
