//! Who may call what in Lambda's API: the operations' access classes on the shared gate
//! (`kindling_edge::gate`), the resources AWS names in its refusals, and presigned code
//! download URLs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use kindling_auth::{AuthError, Credentials, SigningParams, Verifier};
use kindling_edge::gate::{Access as GateAccess, AuthPolicy, Caller, Gate};
use kindling_model::{ArnContext, FunctionRef};

use crate::error::ApiError;
use crate::operation::{Access, Operation};

/// The API's authentication settings: the Lambda gate over the server's [`AuthPolicy`]
/// (operators' keys, functions' session credentials, what functions may do) and presigned
/// code download URLs.
#[derive(Debug)]
pub struct ApiAuth {
    pub gate: Gate,
    pub code_urls: CodeUrls,
}

impl ApiAuth {
    /// Local use: unsigned requests accepted (except from execution environments, which sign
    /// with their session credentials), code URLs signed with `server_secret`.
    pub fn local(server_secret: &[u8], region: &str) -> Self {
        Self::with_policy(Arc::new(AuthPolicy::local(server_secret, region)))
    }

    /// `operators`' keys plus functions' session credentials; `require_signature` for shared
    /// mode.
    pub fn new(
        operators: Credentials,
        require_signature: bool,
        server_secret: &[u8],
        region: &str,
    ) -> Self {
        Self::with_policy(Arc::new(AuthPolicy::new(
            operators,
            require_signature,
            server_secret,
            region,
        )))
    }

    /// Lambda's gate over a policy shared with the other services.
    pub fn with_policy(policy: Arc<AuthPolicy>) -> Self {
        Self {
            code_urls: CodeUrls::new(&policy.server_secret, &policy.region),
            gate: Gate::new(policy, "lambda"),
        }
    }

    /// Whether `caller` may call `op` on `target` (the `{name}`/`{layer}`/`{resource}` path
    /// parameter, decoded): `Ok` or Lambda's `AccessDeniedException`.
    pub(crate) fn authorize(
        &self,
        ctx: &ArnContext,
        op: Operation,
        caller: &Caller,
        target: Option<&str>,
    ) -> Result<(), ApiError> {
        let own = caller.function().is_some_and(|session| {
            target
                .and_then(|t| FunctionRef::parse(t, true).ok())
                .is_some_and(|r| r.name == session.function_name() && !r.is_foreign(ctx))
        });
        let access = match op.access() {
            Access::Data => GateAccess::Data,
            Access::OwnFunctionRead => GateAccess::OwnRead,
            Access::Read => GateAccess::Read,
            Access::Write => GateAccess::Write,
            Access::Public => GateAccess::Public,
        };
        self.gate
            .authorize(
                caller,
                access,
                &op.iam_action(),
                &resource_arn(ctx, op, target),
                own,
            )
            .map_err(ApiError::from)
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
