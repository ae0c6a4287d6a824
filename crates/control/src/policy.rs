//! Resource-based policies (AddPermission, GetPolicy, RemovePermission).

use kindling_model::policy::{self, PermissionInput};
use kindling_model::validate::{self, Violations};
use kindling_model::{FunctionRef, Qualifier, limits};
use kindling_store::{Entity, PolicyRecord, StoreError};
use serde_json::Value;

use crate::error::{ControlError, Result, revision_mismatch, stale_revision};
use crate::input::AddPermission;
use crate::resolve::parse_ref;
use crate::{ControlPlane, new_revision};

/// GetPolicy's result.
#[derive(Debug, Clone)]
pub struct PolicyView {
    pub document: Value,
    pub revision_id: String,
}

fn no_policy() -> ControlError {
    ControlError::NotFound("The resource you requested does not exist.".into())
}

impl ControlPlane {
    /// The function and policy key ('' or the qualifier) a policy operation targets.
    fn policy_target(&self, raw: &str, qualifier: Option<&str>) -> Result<(FunctionRef, String)> {
        let r = parse_ref(self, raw, qualifier, true)?;
        match &r.qualifier {
            Some(Qualifier::Latest) => Err(ControlError::InvalidParameter(
                "We currently do not support adding policies for $LATEST.".into(),
            )),
            Some(q) => {
                if let Qualifier::Alias(a) = q
                    && self.store().function(&r.name)?.is_some()
                    && self.store().alias(&r.name, a)?.is_none()
                {
                    return Err(ControlError::NotFound(format!(
                        "Cannot find alias arn: {}",
                        self.arn().qualified_arn(&r.name, q)
                    )));
                }
                self.load(&r)?;
                Ok((r.clone(), q.to_string()))
            }
            None => {
                if self.store().function(&r.name)?.is_none() {
                    return Err(self.not_found(&r));
                }
                Ok((r, String::new()))
            }
        }
    }

    /// AddPermission: returns the new statement.
    pub fn add_permission(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        req: AddPermission,
    ) -> Result<Value> {
        let mut v = Violations::new();
        let sid = req.statement_id.clone().unwrap_or_default();
        let action = req.action.clone().unwrap_or_default();
        let principal = req.principal.clone().unwrap_or_default();
        match &req.statement_id {
            None => v.add("null", "statementId", "Member must not be null"),
            Some(s) => v.string(
                s,
                "statementId",
                1,
                100,
                Some(("([a-zA-Z0-9-_]+)", validate::is_statement_id)),
            ),
        }
        match &req.action {
            None => v.add("null", "action", "Member must not be null"),
            Some(a) => v.string(
                a,
                "action",
                1,
                256,
                Some(("(lambda:[*]|lambda:[a-zA-Z]+|[*])", validate::is_action)),
            ),
        }
        if req.principal.is_none() {
            v.add("null", "principal", "Member must not be null");
        }
        if let Some(acct) = &req.source_account
            && !(acct.len() == 12 && validate::is_digits(acct))
        {
            v.add(
                acct,
                "sourceAccount",
                "Member must satisfy regular expression pattern: \\d{12}",
            );
        }
        if let Some(t) = &req.function_url_auth_type {
            v.one_of(t, "functionUrlAuthType", &["NONE", "AWS_IAM"]);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        let _guard = self.lock();
        let (r, key) = self.policy_target(raw, qualifier)?;
        let current = self.store().policy(&r.name, &key)?;
        if let Some(rev) = &req.revision_id {
            // Lambda's RevisionId here is the function version's; the policy's own is accepted too.
            let version_revision = self.load(&r)?.record.revision_id;
            let matches_policy = current.as_ref().is_some_and(|c| c.revision_id == *rev);
            if *rev != version_revision && !matches_policy {
                return Err(revision_mismatch());
            }
        }
        let mut statements = current
            .as_ref()
            .map(|p| p.statements.clone())
            .unwrap_or_default();
        if statements.iter().any(|s| s["Sid"] == sid.as_str()) {
            return Err(ControlError::Conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        let resource = match &r.qualifier {
            Some(q) => self.arn().qualified_arn(&r.name, q),
            None => self.arn().function_arn(&r.name),
        };
        let input = PermissionInput {
            statement_id: sid,
            action,
            principal,
            source_arn: req.source_arn,
            source_account: req.source_account,
            event_source_token: req.event_source_token,
            principal_org_id: req.principal_org_id,
            function_url_auth_type: req.function_url_auth_type,
            invoked_via_function_url: req.invoked_via_function_url,
        };
        let statement = policy::statement(&input, &resource, &self.arn().partition);
        statements.push(statement.clone());
        let doc = policy::document(&statements).to_string();
        if doc.len() > limits::POLICY_MAX {
            return Err(ControlError::PolicyLengthExceeded(format!(
                "The final policy size ({}) is bigger than the limit ({}).",
                doc.len(),
                limits::POLICY_MAX
            )));
        }
        let next = PolicyRecord {
            revision_id: new_revision(),
            statements,
        };
        let expected = current.as_ref().map(|p| p.revision_id.as_str());
        self.commit_policy(&r, &key, &next, expected, req.revision_id.is_some())?;
        Ok(statement)
    }

    /// GetPolicy.
    pub fn get_policy(&self, raw: &str, qualifier: Option<&str>) -> Result<PolicyView> {
        let (r, key) = self.policy_target(raw, qualifier)?;
        let p = self.store().policy(&r.name, &key)?.ok_or_else(no_policy)?;
        Ok(PolicyView {
            document: policy::document(&p.statements),
            revision_id: p.revision_id,
        })
    }

    /// RemovePermission.
    pub fn remove_permission(
        &self,
        raw: &str,
        statement_id: &str,
        qualifier: Option<&str>,
        revision_id: Option<&str>,
    ) -> Result<()> {
        let _guard = self.lock();
        let (r, key) = self.policy_target(raw, qualifier)?;
        let current = self.store().policy(&r.name, &key)?.ok_or_else(no_policy)?;
        if revision_id.is_some_and(|rev| rev != current.revision_id) {
            return Err(revision_mismatch());
        }
        let before = current.statements.len();
        let statements: Vec<Value> = current
            .statements
            .iter()
            .filter(|s| s["Sid"] != statement_id)
            .cloned()
            .collect();
        if statements.len() == before {
            return Err(ControlError::NotFound(format!(
                "Statement {statement_id} is not found in resource policy."
            )));
        }
        let next = PolicyRecord {
            revision_id: new_revision(),
            statements,
        };
        self.commit_policy(
            &r,
            &key,
            &next,
            Some(&current.revision_id),
            revision_id.is_some(),
        )
    }

    /// Stores a policy if it is still at `expected` (read under the write lock; another node
    /// may have changed it since).
    fn commit_policy(
        &self,
        r: &FunctionRef,
        key: &str,
        next: &PolicyRecord,
        expected: Option<&str>,
        client_revision: bool,
    ) -> Result<()> {
        match self.store().put_policy(&r.name, key, next, expected) {
            Err(StoreError::RevisionMismatch) => Err(stale_revision(
                client_revision,
                &self.arn().function_arn(&r.name),
            )),
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            })),
            other => Ok(other?),
        }
    }
}
