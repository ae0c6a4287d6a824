//! Who a verified signature belongs to, as `GetCallerIdentity` shows it.

use kindling_edge::gate::Caller;

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

    /// The caller: a function's execution-role session (`assumed-role/<role>/<function>`,
    /// user id `AROA…:<function>`), an IAM user named after an operator's key, or the
    /// account's root for an unchecked request.
    pub fn of(caller: &Caller, account: &str) -> Self {
        match caller {
            Caller::Anonymous => Self::root(account),
            Caller::Function(session) => Self {
                arn: session.assumed_role_arn(),
                user_id: format!("{}:{}", role_id(&session.role_arn), session.function_name()),
                account: session
                    .function_arn
                    .split(':')
                    .nth(4)
                    .filter(|a| !a.is_empty())
                    .unwrap_or(account)
                    .to_string(),
            },
            Caller::Operator { access_key_id } => Self {
                arn: format!("arn:aws:iam::{account}:user/{access_key_id}"),
                user_id: access_key_id.clone(),
                account: account.to_string(),
            },
        }
    }
}

/// A stable role id in AWS's shape (`AROA` and 17 characters) derived from the role's ARN.
fn role_id(role_arn: &str) -> String {
    // FNV-1a: stable across runs and nodes, no secret involved.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in role_arn.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("AROA");
    for i in 0..17 {
        id.push(ALPHABET[((h >> ((i * 5) % 60)) & 31) as usize] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use kindling_auth::FunctionSession;

    use super::*;

    #[test]
    fn function_sessions_are_assumed_roles_and_keys_are_users() {
        let session = Caller::Function(FunctionSession {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:orders".into(),
            role_arn: "arn:aws:iam::123456789012:role/orders-role".into(),
            expires_at: i64::MAX,
        });
        let who = CallerIdentity::of(&session, "000000000000");
        assert_eq!(
            who.arn,
            "arn:aws:sts::123456789012:assumed-role/orders-role/orders"
        );
        assert_eq!(who.account, "123456789012");
        let (role_id, function) = who.user_id.split_once(':').unwrap();
        assert!(
            role_id.starts_with("AROA") && role_id.len() == 21,
            "{role_id}"
        );
        assert_eq!(function, "orders");
        assert_eq!(
            CallerIdentity::of(&session, "x").user_id,
            who.user_id,
            "stable"
        );

        let key = Caller::Operator {
            access_key_id: "AKIDOPERATOR".into(),
        };
        let who = CallerIdentity::of(&key, "000000000000");
        assert_eq!(who.arn, "arn:aws:iam::000000000000:user/AKIDOPERATOR");
        assert_eq!(who.user_id, "AKIDOPERATOR");
        let root = CallerIdentity::of(&Caller::Anonymous, "000000000000");
        assert_eq!(root.arn, "arn:aws:iam::000000000000:root");
    }
}
