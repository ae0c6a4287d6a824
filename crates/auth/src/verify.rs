//! Verifying a request's SigV4 signature: `Authorization` header or presigned URL.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::canonical::{
    UriReading, canonical_headers, canonical_query, canonical_uri_as, ends_with_dot_segment,
    query_pairs,
};
use crate::credentials::Credentials;
use crate::crypto::{constant_time_eq, hex, hmac_sha256, sha256_hex, signing_key};
use crate::error::AuthError;
use crate::session::{FunctionSession, SESSION_KEY_PREFIX, SessionIssuer};
use crate::streaming::ChunkChain;
use crate::time::{format_amz_date, parse_amz_date, parse_http_date, unix_seconds};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope's last element.
const TERMINATOR: &str = "aws4_request";
/// The payload hash a client writes when it does not sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// S3 aws-chunked uploads with chunk signatures (and a signed trailer).
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// S3 aws-chunked uploads without signatures, with trailing checksums.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// How far a request's date may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;
/// The longest `X-Amz-Expires` a presigned URL may ask for (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: i64 = 7 * 24 * 3600;
/// Derived signing keys kept; past this the cache starts over.
const KEY_CACHE_CAPACITY: usize = 1024;

/// The request body, as the verifier needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The whole body; the verifier hashes it, and only once the cheap checks have passed.
    Bytes(&'a [u8]),
    /// The body's SHA-256, hex, computed by the caller (for instance while streaming the body,
    /// or the client's `X-Amz-Content-Sha256` header when the caller checks the body against
    /// it before acting on the request). The verifier trusts it.
    Sha256Hex(&'a str),
}

/// A request as received, with no HTTP framework types.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method as sent (`GET`, `POST`, ...).
    pub method: &'a str,
    /// The path as received, still percent-encoded (`/2015-03-31/functions/f%3Aprod`); never a
    /// decoded path.
    pub path: &'a str,
    /// The query string as received, without `?` (empty when there is none).
    pub query: &'a str,
    /// Every header as received, names in any case, repeated names as separate entries. Must
    /// include `host` (for HTTP/2, put the `:authority` there).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub payload: Payload<'a>,
}

/// Who signed an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub access_key_id: String,
    /// Set when the key is a function's session credentials (minted by a [`SessionIssuer`]);
    /// `None` for a key of the credentials store.
    pub session: Option<FunctionSession>,
}

/// Checks SigV4 signatures against a [`Credentials`] store. Cheap to share (`Send + Sync`);
/// derived signing keys are cached per access key, date, region and service, so a request
/// costs two SHA-256 passes over small strings plus two HMACs (and hashing the body).
pub struct Verifier {
    credentials: Credentials,
    /// Verifies functions' session credentials, when set.
    sessions: Option<SessionIssuer>,
    service: String,
    region: Option<String>,
    allow_unsigned_payload: bool,
    /// `Credential` value (`AKID/date/region/service/aws4_request`) → signing key.
    keys: Mutex<HashMap<String, [u8; 32]>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("credentials", &self.credentials)
            .field("service", &self.service)
            .field("region", &self.region)
            .field("allow_unsigned_payload", &self.allow_unsigned_payload)
            .finish_non_exhaustive()
    }
}

/// What the `Authorization` header or the presigned query parameters say.
struct Claim {
    algorithm: String,
    /// `AKID/date/region/service/terminator`.
    credential: String,
    signed_headers: String,
    signature: String,
    /// The timestamp as it enters the string to sign (`20240101T000000Z`).
    amz_date: String,
    time: i64,
    /// Presigned URLs only.
    expires: Option<i64>,
    session_token: Option<String>,
    presigned: bool,
}

fn incomplete(message: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature(message.into())
}

/// The first header named `name` (lowercase), if any.
fn header<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn header_str<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Result<Option<&'a str>, AuthError> {
    header(headers, name)
        .map(|v| {
            std::str::from_utf8(v)
                .map(str::trim)
                .map_err(|_| incomplete(format!("The {name} header is not valid UTF-8.")))
        })
        .transpose()
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Verifier {
    /// A verifier for service `lambda`, any region, signed payloads only.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            sessions: None,
            service: "lambda".to_string(),
            region: None,
            allow_unsigned_payload: false,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The service name the credential scope must name (default `lambda`).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Only accept credential scopes for this region (default: any region, since clients
    /// pointed at a self-hosted endpoint sign with whatever region they are configured for).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Whether a client may leave the body unsigned (`X-Amz-Content-Sha256: UNSIGNED-PAYLOAD`,
    /// or a presigned URL signed S3-style). Default `false`: the body is always covered.
    pub fn allow_unsigned_payload(mut self, allow: bool) -> Self {
        self.allow_unsigned_payload = allow;
        self
    }

    /// Also accept the session credentials `issuer` mints for functions (`ASIA...` keys whose
    /// secret is derived from the session token, which carries the function and its expiry).
    pub fn with_sessions(mut self, issuer: SessionIssuer) -> Self {
        self.sessions = Some(issuer);
        self
    }

    /// The store this verifier checks against.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Verifies `request` as received at server time `now`: [`Verifier::check_head`], then
    /// [`PendingSignature::finish`] with the request's payload.
    pub fn verify(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<VerifiedIdentity, AuthError> {
        self.check_head(request, now)?.finish(self, request)
    }

    /// Everything that can be checked before the body is read (steps 1-5 of the crate
    /// documentation, and that every `x-amz-*` header is signed): the claim's shape, the
    /// credential scope, the clock, the access key and its session token. `request.payload`
    /// is not looked at. The returned [`PendingSignature`] says who claims to sign; only
    /// [`PendingSignature::finish`] proves it.
    pub fn check_head(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<PendingSignature, AuthError> {
        let pairs = query_pairs(request.query, false);
        let claim = claim(request, &pairs)?;

        // Credential scope: AKID/date/region/service/aws4_request.
        let scope: Vec<&str> = claim.credential.split('/').collect();
        let &[access_key_id, date, region, service, terminator] = scope.as_slice() else {
            return Err(incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{}'",
                claim.credential
            )));
        };
        if access_key_id.is_empty() {
            return Err(incomplete(format!(
                "Credential has an empty access key id: '{}'",
                claim.credential
            )));
        }
        if claim.algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{}'",
                claim.algorithm
            )));
        }
        if terminator != TERMINATOR {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
                 '{terminator}'."
            )));
        }
        if service != self.service {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        if let Some(expected) = &self.region
            && region != expected
        {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to a valid region, not '{region}'. "
            )));
        }
        if region.is_empty() {
            return Err(AuthError::InvalidSignature(
                "Credential should be scoped to a valid region. ".to_string(),
            ));
        }
        let day = claim.amz_date.get(..8).unwrap_or_default();
        if date != day {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{date}' != '{day}', from '{}'.",
                claim.amz_date
            )));
        }

        let signed: Vec<&str> = claim.signed_headers.split(';').collect();
        if signed.iter().any(|n| n.is_empty()) {
            return Err(incomplete(format!(
                "SignedHeaders must be a ';'-separated list of header names, got '{}'.",
                claim.signed_headers
            )));
        }
        let signed_lower: Vec<String> = signed.iter().map(|n| n.to_ascii_lowercase()).collect();
        if !signed_lower.iter().any(|n| n == "host") {
            return Err(incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        check_signed_headers(request.headers, &signed_lower)?;

        check_time(&claim, unix_seconds(now))?;

        let (secret, session) =
            self.secret_for(access_key_id, claim.session_token.as_deref(), now)?;
        let key = self.signing_key(&claim.credential, &secret, date, region, service);
        Ok(PendingSignature {
            identity: VerifiedIdentity {
                access_key_id: access_key_id.to_string(),
                session,
            },
            scope: format!("{date}/{region}/{service}/{terminator}"),
            key,
            signed_lower,
            claim,
        })
    }

    /// The secret of `access_key_id`: from the credentials store (its session token must
    /// match), else, for an `ASIA...` key with a session token and a [`SessionIssuer`], derived
    /// from the token Kindling minted for a function.
    fn secret_for(
        &self,
        access_key_id: &str,
        token: Option<&str>,
        now: SystemTime,
    ) -> Result<(String, Option<FunctionSession>), AuthError> {
        if let Some(secret) = self.credentials.get(access_key_id) {
            let token_ok = match (&secret.session_token, token) {
                (None, None) => true,
                (Some(expected), Some(given)) => {
                    constant_time_eq(expected.as_bytes(), given.as_bytes())
                }
                _ => false,
            };
            if !token_ok {
                return Err(AuthError::UnrecognizedClient);
            }
            return Ok((secret.secret_access_key.clone(), None));
        }
        match (&self.sessions, token) {
            (Some(issuer), Some(token)) if access_key_id.starts_with(SESSION_KEY_PREFIX) => {
                let (session, secret) = issuer.open(access_key_id, token, now)?;
                Ok((secret, Some(session)))
            }
            _ => Err(AuthError::UnrecognizedClient),
        }
    }

    /// The canonical URIs a correct signer may have used for `path`: S3's rule (the path as
    /// sent, or encoded once from the decoded key) for service `s3`; otherwise the normalized,
    /// encoded-again path, in both readings of a final dot segment where signers disagree.
    fn uri_readings(&self, path: &str) -> Vec<UriReading> {
        if self.service == "s3" {
            return vec![UriReading::S3AsSent, UriReading::S3Reencoded];
        }
        let mut readings = vec![UriReading::Normalized {
            dot_keeps_slash: false,
        }];
        if ends_with_dot_segment(path) {
            readings.push(UriReading::Normalized {
                dot_keeps_slash: true,
            });
        }
        readings
    }

    /// The payload hashes a correct client may have signed with, in the order to try them.
    fn payload_hashes(
        &self,
        request: &Request<'_>,
        presigned: bool,
    ) -> Result<Vec<String>, AuthError> {
        let body_hash = || match request.payload {
            Payload::Bytes(body) => sha256_hex(body),
            Payload::Sha256Hex(h) => h.to_ascii_lowercase(),
        };
        match header_str(request.headers, "x-amz-content-sha256")? {
            Some(UNSIGNED_PAYLOAD) if self.allow_unsigned_payload => {
                Ok(vec![UNSIGNED_PAYLOAD.to_string()])
            }
            Some(UNSIGNED_PAYLOAD) => Err(AuthError::InvalidSignature(
                "This server requires a signed payload: 'X-Amz-Content-Sha256: \
                 UNSIGNED-PAYLOAD' is not accepted."
                    .to_string(),
            )),
            Some(declared) if is_sha256_hex(declared) => {
                if declared.eq_ignore_ascii_case(&body_hash()) {
                    // Clients sign the header's value as they sent it.
                    Ok(vec![declared.to_string()])
                } else {
                    Err(AuthError::InvalidSignature(
                        "The provided 'x-amz-content-sha256' header does not match what was \
                         computed."
                            .to_string(),
                    ))
                }
            }
            // S3's streaming uploads sign the encoding's name; the chunks carry their own
            // signatures (or, unsigned, trailing checksums).
            Some(v @ (STREAMING_SIGNED | STREAMING_SIGNED_TRAILER)) if self.service == "s3" => {
                Ok(vec![v.to_string()])
            }
            Some(STREAMING_UNSIGNED_TRAILER)
                if self.service == "s3" && self.allow_unsigned_payload =>
            {
                Ok(vec![STREAMING_UNSIGNED_TRAILER.to_string()])
            }
            Some(_) => Err(incomplete(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, or a valid sha256 value.",
            )),
            None => {
                let mut hashes = vec![body_hash()];
                if presigned && self.allow_unsigned_payload {
                    hashes.push(UNSIGNED_PAYLOAD.to_string());
                }
                Ok(hashes)
            }
        }
    }

    /// The signing key for a credential scope, derived once and then cached.
    fn signing_key(
        &self,
        credential: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(credential) {
            return *key;
        }
        let key = signing_key(secret, date, region, service);
        if keys.len() >= KEY_CACHE_CAPACITY {
            keys.clear();
        }
        keys.insert(credential.to_string(), key);
        key
    }

    #[cfg(test)]
    pub(crate) fn cached_keys(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or(0)
    }
}

/// A request whose head passed [`Verifier::check_head`]: the claimed identity and the signing
/// key, waiting for the payload.
pub struct PendingSignature {
    identity: VerifiedIdentity,
    /// `date/region/service/aws4_request`.
    scope: String,
    key: [u8; 32],
    signed_lower: Vec<String>,
    claim: Claim,
}

impl fmt::Debug for PendingSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignature")
            .field("identity", &self.identity)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl PendingSignature {
    /// The chain checking the chunk signatures of a signed aws-chunked body, seeded with this
    /// request's signature.
    pub fn chunk_chain(&self) -> ChunkChain {
        ChunkChain::new(
            self.key,
            self.claim.amz_date.clone(),
            self.scope.clone(),
            self.claim.signature.clone(),
        )
    }

    /// Who claims to have signed (not yet proven).
    pub fn identity(&self) -> &VerifiedIdentity {
        &self.identity
    }

    /// Checks the signature over `request` (the same request given to
    /// [`Verifier::check_head`], now with its payload), hashing the body if needed.
    pub fn finish(
        self,
        verifier: &Verifier,
        request: &Request<'_>,
    ) -> Result<VerifiedIdentity, AuthError> {
        let claim = &self.claim;
        let payload_hashes = verifier.payload_hashes(request, claim.presigned)?;
        let provided = claim.signature.to_ascii_lowercase();
        let signed_refs: Vec<&str> = self.signed_lower.iter().map(String::as_str).collect();
        let skip: Option<&[u8]> = claim.presigned.then_some(b"X-Amz-Signature");

        // A `+` in the query is a literal plus to SigV4 clients (which send spaces as %20),
        // but HTML-form encoders (Python's urlencode, for one) send spaces as `+`.
        let mut query_readings = vec![query_pairs(request.query, false)];
        if request.query.contains('+') {
            query_readings.push(query_pairs(request.query, true));
        }
        let uri_readings = verifier.uri_readings(request.path);
        for (reading, &uri) in query_readings
            .iter()
            .flat_map(|q| uri_readings.iter().map(move |u| (q, u)))
        {
            let mut canonical = canonical_prefix_as(
                request,
                uri,
                reading,
                skip,
                &signed_refs,
                &claim.signed_headers,
            );
            let prefix_len = canonical.len();
            for payload_hash in &payload_hashes {
                canonical.truncate(prefix_len);
                canonical.extend_from_slice(payload_hash.as_bytes());
                let string_to_sign = format!(
                    "{ALGORITHM}\n{}\n{}\n{}",
                    claim.amz_date,
                    self.scope,
                    sha256_hex(&canonical)
                );
                let expected = hex(&hmac_sha256(&self.key, string_to_sign.as_bytes()));
                if constant_time_eq(expected.as_bytes(), provided.as_bytes()) {
                    return Ok(self.identity);
                }
            }
        }
        Err(AuthError::SignatureDoesNotMatch)
    }
}

/// Refuses a request carrying an `x-amz-*` header that its signature does not cover, as AWS
/// does: an unsigned header could otherwise be added to a captured request (an
/// `X-Amz-Invocation-Type: Event` turning a signed synchronous invoke into an asynchronous one).
/// Signers sign every `x-amz-*` header (botocore leaves out only `expect`,
/// `transfer-encoding`, `user-agent` and `x-amzn-trace-id`); other headers may stay unsigned.
///
/// Also refuses a signed header sent more than once (400 `IncompleteSignature`): SigV4 signs
/// repeated headers as one, values joined with `,`, while the services read the first value, so
/// a request signed with `X: a,b` could be replayed as `X: a` and `X: b` and act on `a`. No
/// SDK sends a header twice.
fn check_signed_headers(
    headers: &[(&str, &[u8])],
    signed_lower: &[String],
) -> Result<(), AuthError> {
    let mut unsigned: Vec<String> = Vec::new();
    for (i, (name, _)) in headers.iter().enumerate() {
        let is_signed = signed_lower.iter().any(|s| s.eq_ignore_ascii_case(name));
        if is_signed
            && headers[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(incomplete(format!(
                "The header '{}' appears more than once; a signed header must be sent once \
                 (its values joined with ',').",
                name.to_ascii_lowercase()
            )));
        }
        let is_amz = name
            .as_bytes()
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"x-amz-"));
        if !is_amz {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if !signed_lower.contains(&lower) && !unsigned.contains(&lower) {
            unsigned.push(lower);
        }
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(AuthError::InvalidSignature(format!(
        "There were headers present in the request which were not signed: {}. Every x-amz-* \
         header a request carries must be listed in SignedHeaders.",
        unsigned.join(", ")
    )))
}

/// The canonical request up to (not including) the payload hash: method, URI, query, headers
/// and the `SignedHeaders` list, each followed by a newline.
pub(crate) fn canonical_prefix(
    request: &Request<'_>,
    dot_keeps_slash: bool,
    query: &[(Vec<u8>, Vec<u8>)],
    skip: Option<&[u8]>,
    signed_lowercase: &[&str],
    signed_headers: &str,
) -> Vec<u8> {
    canonical_prefix_as(
        request,
        UriReading::Normalized { dot_keeps_slash },
        query,
        skip,
        signed_lowercase,
        signed_headers,
    )
}

/// [`canonical_prefix`] with the URI read as `uri` says.
pub(crate) fn canonical_prefix_as(
    request: &Request<'_>,
    uri: UriReading,
    query: &[(Vec<u8>, Vec<u8>)],
    skip: Option<&[u8]>,
    signed_lowercase: &[&str],
    signed_headers: &str,
) -> Vec<u8> {
    let mut canonical = Vec::with_capacity(512);
    canonical.extend_from_slice(request.method.as_bytes());
    canonical.push(b'\n');
    canonical_uri_as(&mut canonical, request.path, uri);
    canonical.push(b'\n');
    canonical_query(&mut canonical, query, skip);
    canonical.push(b'\n');
    canonical_headers(&mut canonical, signed_lowercase, request.headers);
    canonical.push(b'\n');
    canonical.extend_from_slice(signed_headers.as_bytes());
    canonical.push(b'\n');
    canonical
}

/// Rejects a request dated too far from `now` (or a presigned URL past its expiry).
fn check_time(claim: &Claim, now: i64) -> Result<(), AuthError> {
    if claim.time > now + MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::SignatureExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            claim.amz_date,
            format_amz_date(now + MAX_CLOCK_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    let (window, shown) = match claim.expires {
        Some(secs) => (secs, format!("{secs} sec.")),
        None => (MAX_CLOCK_SKEW_SECS, "5 min.".to_string()),
    };
    if claim.time < now - window {
        return Err(AuthError::SignatureExpired(format!(
            "Signature expired: {} is now earlier than {} ({} - {shown})",
            claim.amz_date,
            format_amz_date(now - window),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// Reads the signature claim from the `Authorization` header or the presigned query.
fn claim(request: &Request<'_>, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Claim, AuthError> {
    let authorizations: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| *v)
        .collect();
    let presigned = pairs.iter().any(|(name, _)| {
        matches!(
            name.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    });
    match (authorizations.as_slice(), presigned) {
        ([], false) => Err(AuthError::MissingAuthenticationToken),
        ([_, ..], true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )),
        ([value], false) => header_claim(request, value),
        ([], true) => query_claim(request, pairs),
        (_, false) => Err(incomplete("Only one Authorization header is allowed.")),
    }
}

fn header_claim(request: &Request<'_>, value: &[u8]) -> Result<Claim, AuthError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| incomplete("The Authorization header is not valid UTF-8."))?
        .trim();
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((name, v)) = part.split_once('=') else {
            continue;
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        slot.get_or_insert_with(|| v.trim().to_string());
    }
    let date = match header_str(request.headers, "x-amz-date")? {
        Some(d) => Some((
            d.to_string(),
            parse_amz_date(d).ok_or_else(|| {
                incomplete(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{d}'."
                ))
            })?,
        )),
        None => match header_str(request.headers, "date")? {
            Some(d) => {
                let time = parse_http_date(d).ok_or_else(|| {
                    incomplete(format!(
                        "Date must be an RFC 7231 date ('Mon, 01 Jan 2024 00:00:00 GMT'). Got \
                         '{d}'."
                    ))
                })?;
                Some((format_amz_date(time), time))
            }
            None => None,
        },
    };
    let mut missing = String::new();
    for (present, name) in [
        (credential.is_some(), "Credential"),
        (signature.is_some(), "Signature"),
        (signed_headers.is_some(), "SignedHeaders"),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. ",
        );
    }
    match (credential, signed_headers, signature, date) {
        (Some(credential), Some(signed_headers), Some(signature), Some((amz_date, time)))
            if missing.is_empty() =>
        {
            Ok(Claim {
                algorithm: algorithm.to_string(),
                credential,
                signed_headers,
                signature,
                amz_date,
                time,
                expires: None,
                session_token: header_str(request.headers, "x-amz-security-token")?
                    .map(str::to_string),
                presigned: false,
            })
        }
        _ => Err(incomplete(format!("{missing}Authorization={value}"))),
    }
}

fn query_claim(request: &Request<'_>, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Claim, AuthError> {
    let param = |name: &str| -> Result<Option<String>, AuthError> {
        pairs
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| {
                String::from_utf8(v.clone())
                    .map_err(|_| incomplete(format!("The {name} parameter is not valid UTF-8.")))
            })
            .transpose()
    };
    let algorithm = param("X-Amz-Algorithm")?;
    let credential = param("X-Amz-Credential")?;
    let signature = param("X-Amz-Signature")?;
    let amz_date = param("X-Amz-Date")?;
    let signed_headers = param("X-Amz-SignedHeaders")?;
    let (Some(algorithm), Some(credential), Some(signature), Some(amz_date), Some(signed_headers)) =
        (algorithm, credential, signature, amz_date, signed_headers)
    else {
        return Err(incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the \
             query-string parameters.",
        ));
    };
    let time = parse_amz_date(&amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    let expires = match param("X-Amz-Expires")? {
        None => None,
        Some(e) => match e.parse::<i64>() {
            Ok(secs) if (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&secs) => Some(secs),
            _ => {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be a number of seconds from 1 to \
                     {MAX_PRESIGNED_EXPIRES_SECS}, got '{e}'."
                )));
            }
        },
    };
    let session_token = match param("X-Amz-Security-Token")? {
        Some(t) => Some(t),
        None => header_str(request.headers, "x-amz-security-token")?.map(str::to_string),
    };
    Ok(Claim {
        algorithm,
        credential,
        signed_headers,
        signature,
        amz_date,
        time,
        expires,
        session_token,
        presigned: true,
    })
}
