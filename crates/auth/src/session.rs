//! Session credentials for functions: what Lambda gives each function through its execution
//! role (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), minted and
//! verified without server state.
//!
//! A [`SessionIssuer`] holds keys derived from one server secret (kept by the caller, e.g. in
//! a 0600 file). [`SessionIssuer::mint`] writes the session token: version, issue time, expiry,
//! the function's ARN and its role's ARN, then an HMAC-SHA256 of all that under the token key,
//! base64. The access key id is `ASIA` and 16 base32 characters of an HMAC of the token body
//! (so a key id belongs to exactly one token), and the secret access key is an HMAC of the
//! key id (40 base64 characters). [`SessionIssuer::open`] reverses this: token MAC, key id
//! binding, expiry, then the secret to check the request's signature with.
//!
//! Changing the server secret revokes every credential minted with the old one.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::error::AuthError;
use crate::time::{format_amz_date, unix_seconds};

/// Access key ids of session credentials start with this, as AWS's temporary keys do.
pub const SESSION_KEY_PREFIX: &str = "ASIA";
const TOKEN_VERSION: u8 = 1;
const MAC_LEN: usize = 32;
/// Longest ARN a token carries (IAM role ARNs are at most 2048 characters).
const MAX_FIELD: usize = 2048;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The function a session token was minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSession {
    /// The function's unqualified ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
    pub function_arn: String,
    /// The function's execution role (`arn:aws:iam::ACCOUNT:role/NAME`).
    pub role_arn: String,
    /// Unix seconds after which the credentials are refused.
    pub expires_at: i64,
}

impl FunctionSession {
    /// The function's name (the last `:`-separated part of its ARN).
    pub fn function_name(&self) -> &str {
        self.function_arn
            .rsplit_once(":function:")
            .map_or(self.function_arn.as_str(), |(_, name)| name)
    }

    /// The caller identity AWS names in its errors:
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE_NAME/FUNCTION_NAME`.
    pub fn assumed_role_arn(&self) -> String {
        let account = self.function_arn.split(':').nth(4).unwrap_or_default();
        let role_name = self
            .role_arn
            .rsplit_once('/')
            .map_or(self.role_arn.as_str(), |(_, name)| name);
        format!(
            "arn:aws:sts::{account}:assumed-role/{role_name}/{}",
            self.function_name()
        )
    }
}

/// One function's credentials, as they go into its environment.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &format_amz_date(self.expires_at))
            .finish_non_exhaustive()
    }
}

/// Mints and verifies functions' session credentials; see the [module documentation](self).
#[derive(Clone)]
pub struct SessionIssuer {
    token_key: [u8; 32],
    key_id_key: [u8; 32],
    secret_key: [u8; 32],
}

impl std::fmt::Debug for SessionIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionIssuer { .. }")
    }
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("cannot mint session credentials: {0}")]
pub struct MintError(&'static str);

impl SessionIssuer {
    /// Keys derived from `server_secret` (at least 32 random bytes).
    pub fn new(server_secret: &[u8]) -> Self {
        Self {
            token_key: hmac_sha256(server_secret, b"kindling session token v1"),
            key_id_key: hmac_sha256(server_secret, b"kindling session key id v1"),
            secret_key: hmac_sha256(server_secret, b"kindling session secret v1"),
        }
    }

    /// Credentials for `function_arn` running as `role_arn`, valid from `now` for `lifetime`.
    pub fn mint(
        &self,
        function_arn: &str,
        role_arn: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<SessionCredentials, MintError> {
        if function_arn.len() > MAX_FIELD || role_arn.len() > MAX_FIELD {
            return Err(MintError("an ARN is too long"));
        }
        let issued = unix_seconds(now);
        let expires_at =
            issued.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        let mut body = Vec::with_capacity(24 + function_arn.len() + role_arn.len() + MAC_LEN);
        body.push(TOKEN_VERSION);
        body.extend_from_slice(&issued.to_be_bytes());
        body.extend_from_slice(&expires_at.to_be_bytes());
        for field in [function_arn, role_arn] {
            // Both fit in u16 (checked above).
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field.as_bytes());
        }
        let mac = hmac_sha256(&self.token_key, &body);
        let access_key_id = self.key_id(&body);
        body.extend_from_slice(&mac);
        Ok(SessionCredentials {
            secret_access_key: self.secret(&access_key_id),
            access_key_id,
            session_token: B64.encode(&body),
            expires_at,
        })
    }

    fn key_id(&self, token_body: &[u8]) -> String {
        let digest = hmac_sha256(&self.key_id_key, token_body);
        let mut id = String::with_capacity(20);
        id.push_str(SESSION_KEY_PREFIX);
        // 16 base32 characters = 80 bits = the first 10 bytes.
        let mut bits: u128 = 0;
        for &b in &digest[..10] {
            bits = (bits << 8) | u128::from(b);
        }
        for i in (0..16).rev() {
            id.push(BASE32[((bits >> (i * 5)) & 31) as usize] as char);
        }
        id
    }

    fn secret(&self, access_key_id: &str) -> String {
        let digest = hmac_sha256(&self.secret_key, access_key_id.as_bytes());
        let mut text = B64.encode(digest);
        text.truncate(40);
        text
    }

    /// The function and secret of session credentials presented at `now`:
    /// `UnrecognizedClientException` for a token this issuer did not mint (or one that does
    /// not belong to `access_key_id`), `ExpiredTokenException` past its expiry.
    pub fn open(
        &self,
        access_key_id: &str,
        session_token: &str,
        now: SystemTime,
    ) -> Result<(FunctionSession, String), AuthError> {
        let raw = B64
            .decode(session_token.trim())
            .map_err(|_| AuthError::UnrecognizedClient)?;
        let split = raw
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(AuthError::UnrecognizedClient)?;
        let (body, mac) = raw.split_at(split);
        if !constant_time_eq(&hmac_sha256(&self.token_key, body), mac) {
            return Err(AuthError::UnrecognizedClient);
        }
        if !constant_time_eq(self.key_id(body).as_bytes(), access_key_id.as_bytes()) {
            return Err(AuthError::UnrecognizedClient);
        }
        let session = parse_body(body).ok_or(AuthError::UnrecognizedClient)?;
        if unix_seconds(now) >= session.expires_at {
            return Err(AuthError::ExpiredToken);
        }
        Ok((session, self.secret(access_key_id)))
    }
}

/// A secret for `purpose` derived from `server_secret` (64 hex characters), for keys a server
/// signs and verifies itself (presigned URLs, say).
pub fn derive_secret(server_secret: &[u8], purpose: &str) -> String {
    let mut label = b"kindling derived secret v1: ".to_vec();
    label.extend_from_slice(purpose.as_bytes());
    crate::crypto::hex(&hmac_sha256(server_secret, &label))
}

/// Reads a MAC-checked token body.
fn parse_body(body: &[u8]) -> Option<FunctionSession> {
    let (&version, rest) = body.split_first()?;
    if version != TOKEN_VERSION {
        return None;
    }
    let (_issued, rest) = rest.split_at_checked(8)?;
    let (expires, mut rest) = rest.split_at_checked(8)?;
    let expires_at = i64::from_be_bytes(expires.try_into().ok()?);
    let mut fields = Vec::with_capacity(2);
    for _ in 0..2 {
        let (len, tail) = rest.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes(len.try_into().ok()?));
        let (field, tail) = tail.split_at_checked(len)?;
        fields.push(String::from_utf8(field.to_vec()).ok()?);
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    let role_arn = fields.pop()?;
    let function_arn = fields.pop()?;
    Some(FunctionSession {
        function_arn,
        role_arn,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:worker";
    const ROLE: &str = "arn:aws:iam::000000000000:role/service/worker-role";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_067_200 + secs)
    }

    fn issuer() -> SessionIssuer {
        SessionIssuer::new(&[7u8; 32])
    }

    #[test]
    fn minted_credentials_open_until_they_expire() {
        let creds = issuer()
            .mint(FN, ROLE, at(0), Duration::from_secs(3600))
            .unwrap();
        assert!(creds.access_key_id.starts_with("ASIA"));
        assert_eq!(creds.access_key_id.len(), 20);
        assert!(
            creds.access_key_id[4..]
                .bytes()
                .all(|b| BASE32.contains(&b))
        );
        assert_eq!(creds.secret_access_key.len(), 40);
        assert_eq!(creds.expires_at, 1_704_067_200 + 3600);

        let (session, secret) = issuer()
            .open(&creds.access_key_id, &creds.session_token, at(3599))
            .unwrap();
        assert_eq!(secret, creds.secret_access_key);
        assert_eq!(session.function_arn, FN);
        assert_eq!(session.role_arn, ROLE);
        assert_eq!(session.function_name(), "worker");
        assert_eq!(
            session.assumed_role_arn(),
            "arn:aws:sts::000000000000:assumed-role/worker-role/worker"
        );
        assert_eq!(
            issuer().open(&creds.access_key_id, &creds.session_token, at(3600)),
            Err(AuthError::ExpiredToken)
        );
    }

    #[test]
    fn every_mint_is_distinct_and_bound_to_its_key_id() {
        let a = issuer()
            .mint(FN, ROLE, at(0), Duration::from_secs(60))
            .unwrap();
        let b = issuer()
            .mint(FN, ROLE, at(1), Duration::from_secs(60))
            .unwrap();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        // One token with another's key id.
        assert_eq!(
            issuer().open(&b.access_key_id, &a.session_token, at(2)),
            Err(AuthError::UnrecognizedClient)
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let creds = issuer()
            .mint(FN, ROLE, at(0), Duration::from_secs(60))
            .unwrap();
        let raw = B64.decode(&creds.session_token).unwrap();
        // Every single-bit flip of the token (expiry, names, MAC) is caught.
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = raw.clone();
                t[i] ^= bit;
                assert_eq!(
                    issuer().open(&creds.access_key_id, &B64.encode(&t), at(1)),
                    Err(AuthError::UnrecognizedClient),
                    "byte {i}"
                );
            }
        }
        // Truncated, garbage, empty.
        for bad in [&creds.session_token[..20], "not base64!", ""] {
            assert_eq!(
                issuer().open(&creds.access_key_id, bad, at(1)),
                Err(AuthError::UnrecognizedClient)
            );
        }
        // Another server's secret.
        assert_eq!(
            SessionIssuer::new(&[8u8; 32]).open(&creds.access_key_id, &creds.session_token, at(1)),
            Err(AuthError::UnrecognizedClient)
        );
    }

    #[test]
    fn overlong_arns_are_not_minted() {
        let long = "x".repeat(MAX_FIELD + 1);
        assert!(
            issuer()
                .mint(&long, ROLE, at(0), Duration::from_secs(1))
                .is_err()
        );
    }
}
