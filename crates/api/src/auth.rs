//! Who may call what: the server's verifier (operators' keys and functions' session
//! credentials), the rules for functions' credentials, and presigned code download URLs.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use kindling_auth::{AuthError, Credentials, SessionIssuer, SigningParams, Verifier};
use kindling_model::{ArnContext, FunctionRef};

use crate::error::ApiError;
use crate::operation::{Access, Operation};

/// What a function's own session credentials may do besides the data plane and reading its own
/// configuration (`--function-api-access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FunctionAccess {
    /// Invoke any function; read only its own configuration (the default).
    #[default]
    Invoke,
    /// Also read the whole control plane.
    Read,
    /// Everything an operator may do.
    Full,
}

/// The API's authentication settings.
#[derive(Debug)]
pub struct ApiAuth {
    /// Verifies operators' keys and functions' session credentials.
    pub verifier: Verifier,
    /// Shared mode: every request must be signed (else only those from execution environments).
    pub require_signature: bool,
    pub function_access: FunctionAccess,
    /// Execution roles whose functions may do everything (`--admin-role`).
    pub admin_roles: Vec<String>,
    pub code_urls: CodeUrls,
}

impl ApiAuth {
    /// Local use: unsigned requests accepted (except from execution environments, which sign
    /// with the session credentials `issuer` mints), code URLs signed with `server_secret`.
    pub fn local(server_secret: &[u8], region: &str) -> Self {
        Self::new(Credentials::new(), false, server_secret, region)
    }

    /// `operators`' keys plus functions' session credentials; `require_signature` for shared
    /// mode.
    pub fn new(
        operators: Credentials,
        require_signature: bool,
        server_secret: &[u8],
        region: &str,
    ) -> Self {
        Self {
            verifier: Verifier::new(operators)
                .with_region(region)
                .with_sessions(SessionIssuer::new(server_secret)),
            require_signature,
            function_access: FunctionAccess::default(),
            admin_roles: Vec::new(),
            code_urls: CodeUrls::new(server_secret, region),
        }
    }

    /// Whether `identity` may call `op` on `target` (the `{name}`/`{layer}`/`{resource}` path
    /// parameter, decoded): `Ok` or Lambda's `AccessDeniedException`.
    pub(crate) fn authorize(
        &self,
        ctx: &ArnContext,
        op: Operation,
        identity: &kindling_auth::VerifiedIdentity,
        target: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(session) = &identity.session else {
            return Ok(());
        };
        if self.admin_roles.contains(&session.role_arn) {
            return Ok(());
        }
        let own = || {
            target
                .and_then(|t| FunctionRef::parse(t, true).ok())
                .is_some_and(|r| r.name == session.function_name() && !r.is_foreign(ctx))
        };
        let allowed = match op.access() {
            Access::Data | Access::Public => true,
            Access::OwnFunctionRead if own() => true,
            Access::OwnFunctionRead | Access::Read => {
                self.function_access != FunctionAccess::Invoke
            }
            Access::Write => self.function_access == FunctionAccess::Full,
        };
        if allowed {
            return Ok(());
        }
        Err(ApiError::AccessDenied {
            caller: session.assumed_role_arn(),
            action: op.iam_action(),
            resource: resource_arn(ctx, op, target),
        })
    }
}

/// The resource AWS names in an `AccessDeniedException`.
fn resource_arn(ctx: &ArnContext, op: Operation, target: Option<&str>) -> String {
    let Some(target) = target else {
        return "*".to_string();
    };
    match op {
        Operation::PublishLayerVersion
        | Operation::ListLayerVersions
        | Operation::GetLayerVersion
        | Operation::DeleteLayerVersion => ctx.layer_arn(target),
        Operation::TagResource | Operation::ListTags | Operation::UntagResource => {
            target.to_string()
        }
        _ => match FunctionRef::parse(target, true) {
            Ok(r) => match &r.qualifier {
                Some(q) => ctx.qualified_arn(&r.name, q),
                None => ctx.function_arn(&r.name),
            },
            Err(_) => ctx.function_arn(target),
        },
    }
}

/// How long a code download URL stays valid (Lambda's presigned S3 URLs: 10 minutes).
pub const CODE_URL_LIFETIME: Duration = Duration::from_secs(600);
/// The key id of code download URLs (its secret comes from the server secret).
const CODE_URL_KEY_ID: &str = "KINDLINGCODEURLS0001";
/// Code URLs are presigned the way S3 presigns them.
const CODE_URL_SERVICE: &str = "s3";

/// Presigned, expiring URLs for code packages (`Code.Location`, `Content.Location`), signed
/// and verified with a key derived from the server secret.
pub struct CodeUrls {
    secret: String,
    region: String,
    verifier: Verifier,
}

impl std::fmt::Debug for CodeUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeUrls")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl CodeUrls {
    pub fn new(server_secret: &[u8], region: &str) -> Self {
        let secret = kindling_auth::session::derive_secret(server_secret, "code download urls");
        Self {
            verifier: Verifier::new(Credentials::new().with_key(CODE_URL_KEY_ID, secret.clone()))
                .with_service(CODE_URL_SERVICE)
                .with_region(region)
                .allow_unsigned_payload(true),
            secret,
            region: region.to_string(),
        }
    }

    /// The URL of package `blob`, as reached through `headers`' `Host`, valid for
    /// [`CODE_URL_LIFETIME`] from `now`.
    pub fn location(&self, headers: &HeaderMap, blob: &str, now: SystemTime) -> String {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let path = format!("/_kindling/code/{blob}");
        let query = kindling_auth::presigned_query(
            "GET",
            host,
            &path,
            &SigningParams {
                access_key_id: CODE_URL_KEY_ID,
                secret_access_key: &self.secret,
                region: &self.region,
                service: CODE_URL_SERVICE,
                time: now,
            },
            CODE_URL_LIFETIME.as_secs(),
        );
        format!("http://{host}{path}?{query}")
    }

    /// Checks a download request's presigned signature.
    pub(crate) fn verify(
        &self,
        request: &kindling_auth::Request<'_>,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        self.verifier.verify(request, now).map(|_| ())
    }
}
