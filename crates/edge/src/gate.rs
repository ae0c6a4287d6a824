//! Who may call what, for every service behind the edge: signatures checked as far as the head
//! allows before a byte of the body is read, the body read within the operation's limit, the
//! signature finished over it, and callers holding a function's session credentials held to
//! what functions may do.
//!
//! Which requests must be signed: all of them in shared mode ([`AuthPolicy::require_signature`]);
//! in local mode only those from inside execution environments ([`Origin::Environment`]), which
//! must use their environment's own session credentials. Other local requests pass unsigned.
//!
//! A service builds one [`Gate`] for its SigV4 signing name, calls [`Gate::check_head`] and
//! [`Gate::read_body`] (or [`Gate::finish`] for payloads it streams itself), then
//! [`Gate::authorize`] once it knows the operation. Failures are [`GateError`]s that the
//! service renders in its own wire format.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use kindling_auth::{
    AuthError, Credentials, FunctionSession, Payload, PendingSignature, SessionIssuer, Verifier,
};

use crate::body::{BodyError, BodyLimits, BufferedBody, read_body};
use crate::{Origin, RequestContext};

/// Bodies larger than this are hashed on the blocking pool.
const HASH_INLINE_MAX: usize = 256 * 1024;

/// What a function's own session credentials may do besides the data plane and reading its
/// own resources (`--function-api-access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FunctionAccess {
    /// The data plane; read only its own resources (the default).
    #[default]
    Invoke,
    /// Also read every control plane.
    Read,
    /// Everything an operator may do.
    Full,
}

/// Who may call an operation with a function's session credentials (operators' keys may call
/// everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The data plane (Invoke, SendMessage, Publish, PutLogEvents...): always allowed.
    Data,
    /// Reading a resource that is the calling function's own (its configuration): allowed when
    /// the service says the resource is the caller's, else like [`Access::Read`].
    OwnRead,
    /// Reading a control plane.
    Read,
    /// Changing a control plane.
    Write,
    /// Not an API call: authenticated its own way (presigned downloads).
    Public,
}

/// The server's authentication settings, shared by every service's gate.
pub struct AuthPolicy {
    /// Operators' keys (`--credentials`).
    pub operators: Credentials,
    /// Verifies functions' session credentials.
    pub server_secret: Vec<u8>,
    /// Only credential scopes for this region are accepted.
    pub region: String,
    /// Shared mode: every request must be signed.
    pub require_signature: bool,
    pub function_access: FunctionAccess,
    /// Execution roles whose functions may do everything (`--admin-role`).
    pub admin_roles: Vec<String>,
    /// Where signatures are not checked (local mode): host names, besides `localhost`,
    /// `*.localhost` and IP addresses, that requests may be addressed to (`name`, or `*.name`
    /// for its subdomains; `--allowed-host`). Requests for other names are refused (DNS
    /// rebinding, see the edge's `browser` module).
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPolicy")
            .field("operators", &self.operators)
            .field("region", &self.region)
            .field("require_signature", &self.require_signature)
            .field("function_access", &self.function_access)
            .field("admin_roles", &self.admin_roles)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl AuthPolicy {
    /// Local use: unsigned requests accepted except from execution environments.
    pub fn local(server_secret: &[u8], region: &str) -> Self {
        Self::new(Credentials::new(), false, server_secret, region)
    }

    pub fn new(
        operators: Credentials,
        require_signature: bool,
        server_secret: &[u8],
        region: &str,
    ) -> Self {
        Self {
            operators,
            server_secret: server_secret.to_vec(),
            region: region.to_string(),
            require_signature,
            function_access: FunctionAccess::default(),
            admin_roles: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }

    /// Whether a request from `origin` must be signed.
    pub fn must_sign(&self, origin: Origin) -> bool {
        self.require_signature || matches!(origin, Origin::Environment { .. })
    }
}

/// Who is calling, once the head has been checked (proven only after the body, see
/// [`Gate::read_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An unsigned local request.
    Anonymous,
    /// An operator's key.
    Operator { access_key_id: String },
    /// A function's session credentials.
    Function(FunctionSession),
}

impl Caller {
    /// The function whose credentials sign the request, if any.
    pub fn function(&self) -> Option<&FunctionSession> {
        match self {
            Self::Function(s) => Some(s),
            _ => None,
        }
    }
}

/// A request whose head passed the gate.
#[derive(Debug)]
pub struct Admission {
    caller: Caller,
    pending: Option<PendingSignature>,
    limits: BodyLimits,
}

impl Admission {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Whether the request is signed (its signature still to be finished over the body).
    pub fn is_signed(&self) -> bool {
        self.pending.is_some()
    }

    /// The chain that checks the chunk signatures of a signed `aws-chunked` upload (S3's
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), seeded with this request's signature.
    pub fn chunk_chain(&self) -> Option<kindling_auth::ChunkChain> {
        self.pending.as_ref().map(PendingSignature::chunk_chain)
    }
}

/// Why the gate refused a request.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The signature (AWS's 400/403 answers; see [`AuthError`]).
    #[error(transparent)]
    Auth(AuthError),
    /// A request from inside an execution environment not signed with its own session
    /// credentials.
    #[error("requests from execution environments must be signed with their own credentials")]
    EnvironmentCredentialsRequired,
    /// A function's credentials asking for more than functions may do.
    #[error("{caller} is not authorized to perform: {action} on resource: {resource}")]
    AccessDenied {
        /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION`.
        caller: String,
        /// `lambda:DeleteFunction`, `sqs:CreateQueue`...
        action: String,
        resource: String,
    },
    /// The body could not be read within the operation's bounds.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The blocking task that hashed a large body died (a bug).
    #[error("hashing the body failed")]
    Task(#[source] tokio::task::JoinError),
}

impl GateError {
    /// AWS's message for an [`GateError::AccessDenied`]:
    /// `User: <caller> is not authorized to perform: <action> on resource: <resource>`.
    pub fn access_denied_message(caller: &str, action: &str, resource: &str) -> String {
        format!("User: {caller} is not authorized to perform: {action} on resource: {resource}")
    }
}

/// One service's gate: its signing name, the shared policy.
#[derive(Clone)]
pub struct Gate {
    policy: Arc<AuthPolicy>,
    verifier: Arc<Verifier>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// Limits for requests that did not come through the edge (tests driving a router directly).
fn default_limits() -> &'static BodyLimits {
    static LIMITS: OnceLock<BodyLimits> = OnceLock::new();
    LIMITS.get_or_init(|| BodyLimits::new(Duration::from_secs(10), 512 * 1024 * 1024))
}

/// The edge's context of a request (requests that did not come through the edge count as
/// local).
pub fn context(parts: &Parts) -> (Origin, BodyLimits) {
    match parts.extensions.get::<RequestContext>() {
        Some(c) => (c.origin, c.body_limits.clone()),
        None => (Origin::Other, default_limits().clone()),
    }
}

fn headers_of(parts: &Parts) -> Vec<(&str, &[u8])> {
    parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect()
}

impl Gate {
    /// The gate of the service whose SigV4 signing name is `signing_name` (`lambda`, `sqs`...).
    pub fn new(policy: Arc<AuthPolicy>, signing_name: &str) -> Self {
        Self::with_verifier(policy, signing_name, |v| v)
    }

    /// Like [`Gate::new`], with the verifier adjusted (e.g. S3's unsigned payloads).
    pub fn with_verifier(
        policy: Arc<AuthPolicy>,
        signing_name: &str,
        adjust: impl FnOnce(Verifier) -> Verifier,
    ) -> Self {
        let verifier = Verifier::new(policy.operators.clone())
            .with_service(signing_name)
            .with_region(policy.region.clone())
            .with_sessions(SessionIssuer::new(&policy.server_secret));
        Self {
            verifier: Arc::new(adjust(verifier)),
            policy,
        }
    }

    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Whether this request must be signed.
    pub fn must_sign(&self, parts: &Parts) -> bool {
        self.policy.must_sign(context(parts).0)
    }

    /// Everything checkable before the body: for requests that must be signed, the claim's
    /// shape, scope, clock, key and session token, and that environments use their own
    /// credentials.
    pub fn check_head(&self, parts: &Parts) -> Result<Admission, GateError> {
        let (origin, limits) = context(parts);
        if !self.policy.must_sign(origin) {
            return Ok(Admission {
                caller: Caller::Anonymous,
                pending: None,
                limits,
            });
        }
        let headers = headers_of(parts);
        let request = kindling_auth::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            payload: Payload::Bytes(&[]),
        };
        let pending = self
            .verifier
            .check_head(&request, SystemTime::now())
            .map_err(GateError::Auth)?;
        let caller = match &pending.identity().session {
            Some(session) => Caller::Function(session.clone()),
            None if matches!(origin, Origin::Environment { .. }) => {
                return Err(GateError::EnvironmentCredentialsRequired);
            }
            None => Caller::Operator {
                access_key_id: pending.identity().access_key_id.clone(),
            },
        };
        Ok(Admission {
            caller,
            pending: Some(pending),
            limits,
        })
    }

    /// Reads the body (at most `limit` bytes, within the edge's idle timeout and memory
    /// budget) and finishes the signature over it. The returned body holds its share of the
    /// memory budget until dropped.
    pub async fn read_body<B>(
        &self,
        admission: Admission,
        parts: &Parts,
        body: B,
        limit: usize,
    ) -> Result<(Caller, BufferedBody), GateError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let buffered = read_body(body, declared, limit, &admission.limits).await?;
        let caller = admission.caller;
        if let Some(pending) = admission.pending {
            self.finish_bytes(pending, parts, buffered.bytes.clone())
                .await?;
        }
        Ok((caller, buffered))
    }

    /// Finishes the signature of a request whose payload the service handles itself (an
    /// `UNSIGNED-PAYLOAD` or streaming upload): `payload_sha256` is the hash the request
    /// claims (`x-amz-content-sha256`).
    pub fn finish(
        &self,
        admission: Admission,
        parts: &Parts,
        payload_sha256: &str,
    ) -> Result<Caller, GateError> {
        if let Some(pending) = admission.pending {
            let headers = headers_of(parts);
            let request = kindling_auth::Request {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                payload: Payload::Sha256Hex(payload_sha256),
            };
            pending
                .finish(&self.verifier, &request)
                .map_err(GateError::Auth)?;
        }
        Ok(admission.caller)
    }

    async fn finish_bytes(
        &self,
        pending: PendingSignature,
        parts: &Parts,
        body: Bytes,
    ) -> Result<(), GateError> {
        fn verify(
            verifier: &Verifier,
            pending: PendingSignature,
            parts: &Parts,
            body: &[u8],
        ) -> Result<(), AuthError> {
            let headers = headers_of(parts);
            let request = kindling_auth::Request {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                payload: Payload::Bytes(body),
            };
            pending.finish(verifier, &request).map(|_| ())
        }
        if body.len() <= HASH_INLINE_MAX {
            return verify(&self.verifier, pending, parts, &body).map_err(GateError::Auth);
        }
        let verifier = Arc::clone(&self.verifier);
        let head = clone_head(parts);
        tokio::task::spawn_blocking(move || verify(&verifier, pending, &head, &body))
            .await
            .map_err(GateError::Task)?
            .map_err(GateError::Auth)
    }

    /// Whether `caller` may perform `action` (`sqs:SendMessage`) of class `access` on
    /// `resource` (an ARN, or `*`); `own` says whether the resource is the calling function's
    /// own (only [`Access::OwnRead`] looks at it).
    pub fn authorize(
        &self,
        caller: &Caller,
        access: Access,
        action: &str,
        resource: &str,
        own: bool,
    ) -> Result<(), GateError> {
        let Caller::Function(session) = caller else {
            return Ok(());
        };
        if self.policy.admin_roles.contains(&session.role_arn) {
            return Ok(());
        }
        let access_level = self.policy.function_access;
        let allowed = match access {
            Access::Data | Access::Public => true,
            Access::OwnRead if own => true,
            Access::OwnRead | Access::Read => access_level != FunctionAccess::Invoke,
            Access::Write => access_level == FunctionAccess::Full,
        };
        if allowed {
            Ok(())
        } else {
            Err(GateError::AccessDenied {
                caller: session.assumed_role_arn(),
                action: action.to_string(),
                resource: resource.to_string(),
            })
        }
    }
}

/// `Parts` has no `Clone`; the head fields the signature needs are copied.
fn clone_head(parts: &Parts) -> Parts {
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version);
    if let Some(h) = builder.headers_mut() {
        *h = parts.headers.clone();
    }
    let (head, ()) = builder.body(()).unwrap_or_default().into_parts();
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const ROLE: &str = "arn:aws:iam::000000000000:role/fn-role";

    fn function_caller() -> Caller {
        Caller::Function(FunctionSession {
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            role_arn: ROLE.into(),
            expires_at: i64::MAX,
        })
    }

    fn gate(access: FunctionAccess, admin: bool) -> Gate {
        let mut policy = AuthPolicy::local(SECRET, "us-east-1");
        policy.function_access = access;
        if admin {
            policy.admin_roles.push(ROLE.into());
        }
        Gate::new(Arc::new(policy), "sqs")
    }

    #[test]
    fn functions_get_the_data_plane_and_their_own_resources_by_default() {
        let g = gate(FunctionAccess::Invoke, false);
        let f = function_caller();
        assert!(
            g.authorize(&f, Access::Data, "sqs:SendMessage", "*", false)
                .is_ok()
        );
        assert!(
            g.authorize(&f, Access::OwnRead, "lambda:GetFunction", "x", true)
                .is_ok()
        );
        let denied = g
            .authorize(&f, Access::Write, "sqs:CreateQueue", "arn:q", false)
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "arn:aws:sts::000000000000:assumed-role/fn-role/f is not authorized to perform: \
             sqs:CreateQueue on resource: arn:q"
        );
        assert!(
            g.authorize(&f, Access::Read, "sqs:ListQueues", "*", false)
                .is_err()
        );
        assert!(
            g.authorize(&Caller::Anonymous, Access::Write, "a", "*", false)
                .is_ok()
        );
    }

    #[test]
    fn opt_ins_widen_what_functions_may_do() {
        let f = function_caller();
        let read = gate(FunctionAccess::Read, false);
        assert!(read.authorize(&f, Access::Read, "a", "*", false).is_ok());
        assert!(read.authorize(&f, Access::Write, "a", "*", false).is_err());
        let full = gate(FunctionAccess::Full, false);
        assert!(full.authorize(&f, Access::Write, "a", "*", false).is_ok());
        let admin = gate(FunctionAccess::Invoke, true);
        assert!(admin.authorize(&f, Access::Write, "a", "*", false).is_ok());
    }

    #[test]
    fn unsigned_local_requests_pass_and_environments_must_sign() {
        let g = gate(FunctionAccess::Invoke, false);
        let (mut parts, ()) = http::Request::builder()
            .uri("/")
            .body(())
            .unwrap()
            .into_parts();
        let admission = g.check_head(&parts).unwrap();
        assert_eq!(admission.caller(), &Caller::Anonymous);
        assert!(!admission.is_signed());
        parts.extensions.insert(RequestContext {
            origin: Origin::Environment { uid: 100_001 },
            peer: None,
            body_limits: default_limits().clone(),
        });
        assert!(matches!(
            g.check_head(&parts),
            Err(GateError::Auth(AuthError::MissingAuthenticationToken))
        ));
    }
}
