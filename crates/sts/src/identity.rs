//! Who a verified signature belongs to, as `GetCallerIdentity` shows it.

use kindling_auth::VerifiedIdentity;

/// `GetCallerIdentityResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub arn: String,
    pub user_id: String,
    pub account: String,
}

impl CallerIdentity {
    /// The account's root user (local mode: signatures are not checked).
    pub fn root(account: &str) -> Self {
        Self {
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.to_string(),
            account: account.to_string(),
        }
    }

    /// The caller of a verified request: an IAM user named after the operator's key.
    pub fn of(identity: &VerifiedIdentity, account: &str) -> Self {
        Self {
            arn: format!("arn:aws:iam::{account}:user/{}", identity.access_key_id),
            user_id: identity.access_key_id.clone(),
            account: account.to_string(),
        }
    }
}
