//! Calling a function for API Gateway: its resource policy must allow
//! `apigateway.amazonaws.com` (for this API's source ARN when the statement names one), then a
//! normal synchronous invocation through the scheduler (concurrency, throttling, logs, alias
//! weights), awaited at most the integration's timeout (the invocation itself runs on).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use kindling_apigw::target::FunctionTarget;
use kindling_control::ControlPlane;
use kindling_scheduler::{InvokeRequest, InvokeResult, Scheduler, SchedulerError};
use serde_json::Value;

/// Source ARNs whose permission decisions are remembered at most.
const MAX_PERMISSIONS: usize = 16_384;

/// The service principal API Gateway invokes as.
pub const PRINCIPAL: &str = "apigateway.amazonaws.com";

/// Why a call did not produce a function result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No permission, no such function or version, or the function cannot run: API Gateway's
    /// configuration errors (500).
    #[error("{0}")]
    Refused(String),
    /// Concurrency exhausted.
    #[error("{0}")]
    Throttled(String),
    /// The integration timeout passed first.
    #[error("the integration timed out after {0:?}")]
    Timeout(Duration),
}

/// A decision for one function and the control-plane generation it was made at.
type Decision = (FunctionTarget, u64, Result<(), String>);

/// Invokes functions for API Gateway.
pub struct Invoker {
    control: Arc<ControlPlane>,
    scheduler: Scheduler,
    /// Permission decisions by source ARN, then function (looked up without allocating),
    /// with the control plane's generation they were made at.
    permissions: Mutex<HashMap<String, Vec<Decision>>>,
}

impl Invoker {
    pub fn new(control: Arc<ControlPlane>, scheduler: Scheduler) -> Self {
        Self {
            control,
            scheduler,
            permissions: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `target` with `payload` for the API call named by `source_arn`.
    pub async fn call(
        &self,
        target: &FunctionTarget,
        source_arn: &str,
        payload: Bytes,
        timeout: Duration,
        trace_id: Option<String>,
    ) -> Result<InvokeResult, CallError> {
        self.permitted(target, source_arn).await?;
        let resolved = match self
            .control
            .cached_invoke_target(&target.name, target.qualifier.as_deref())
        {
            Ok(Some(t)) => Ok(t),
            Ok(None) => {
                let control = Arc::clone(&self.control);
                let (name, q) = (target.name.clone(), target.qualifier.clone());
                tokio::task::spawn_blocking(move || control.invoke_target(&name, q.as_deref()))
                    .await
                    .map_err(|e| CallError::Refused(format!("resolving the function: {e}")))?
            }
            Err(e) => Err(e),
        };
        let resolved = resolved
            .map_err(|e| CallError::Refused(format!("the function cannot be invoked: {e}")))?;
        let req = InvokeRequest {
            target: resolved,
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            client_context: None,
            trace_id,
            tail: false,
            enqueued_ms: None,
        };
        match tokio::time::timeout(timeout, self.scheduler.invoke(req)).await {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(SchedulerError::Throttled(reason))) => Err(CallError::Throttled(format!(
                "Lambda throttled the invocation ({reason:?})"
            ))),
            Ok(Err(e)) => Err(CallError::Refused(format!("the invocation failed: {e}"))),
        }
    }

    async fn permitted(&self, target: &FunctionTarget, source_arn: &str) -> Result<(), CallError> {
        let generation = self.control.generation();
        if let Some((_, _, decision)) = self
            .permissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(source_arn)
            .and_then(|d| d.iter().find(|(t, g, _)| *g == generation && t == target))
        {
            return decision.clone().map_err(CallError::Refused);
        }
        let control = Arc::clone(&self.control);
        let (name, qualifier, arn) = (
            target.name.clone(),
            target.qualifier.clone(),
            source_arn.to_string(),
        );
        let decision = tokio::task::spawn_blocking(move || {
            let policy = control
                .store()
                .policy(&name, qualifier.as_deref().unwrap_or(""))
                .map_err(|e| format!("reading the function's policy failed: {e}"))?;
            let account = control.arn().account_id.clone();
            let statements = policy.map(|p| p.statements).unwrap_or_default();
            if permits(&statements, &arn, &account) {
                Ok(())
            } else {
                let on = match &qualifier {
                    Some(q) => format!("{name}:{q}"),
                    None => name.clone(),
                };
                Err(format!(
                    "Execution failed due to configuration error: Invalid permissions on Lambda function {on}: \
                     its resource policy has no statement allowing {PRINCIPAL} to call lambda:InvokeFunction \
                     from {arn} (aws lambda add-permission --function-name {on} --principal {PRINCIPAL} \
                     --action lambda:InvokeFunction --statement-id apigateway --source-arn '<api ARN pattern>')"
                ))
            }
        })
        .await
        .map_err(|e| CallError::Refused(format!("checking permissions: {e}")))?;
        {
            let mut permissions = self
                .permissions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Bounded like the APIs it serves: decisions of older generations go first.
            if permissions.len() >= MAX_PERMISSIONS {
                permissions.retain(|_, d| {
                    d.retain(|(_, g, _)| *g == generation);
                    !d.is_empty()
                });
                if permissions.len() >= MAX_PERMISSIONS {
                    permissions.clear();
                }
            }
            let decisions = permissions.entry(source_arn.to_string()).or_default();
            decisions.retain(|(t, g, _)| *g == generation && *t != *target);
            decisions.push((target.clone(), generation, decision.clone()));
        }
        decision.map_err(CallError::Refused)
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a statement list lets API Gateway invoke the function for `source_arn`.
pub fn permits(statements: &[Value], source_arn: &str, account: &str) -> bool {
    statements.iter().any(|st| {
        if st["Effect"] != "Allow" {
            return false;
        }
        let principal_ok = match &st["Principal"] {
            Value::String(s) => s == "*",
            Value::Object(p) => {
                p.get("Service")
                    .is_some_and(|s| strings(s).contains(&PRINCIPAL))
                    || p.get("AWS").is_some_and(|s| strings(s).contains(&"*"))
            }
            _ => false,
        };
        let action_ok = strings(&st["Action"])
            .iter()
            .any(|a| matches!(*a, "lambda:InvokeFunction" | "lambda:*" | "*"));
        principal_ok && action_ok && conditions_hold(&st["Condition"], source_arn, account)
    })
}

fn conditions_hold(conditions: &Value, source_arn: &str, account: &str) -> bool {
    let Some(conditions) = conditions.as_object() else {
        return conditions.is_null();
    };
    conditions.iter().all(|(operator, keys)| {
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, expected)| {
            let actual = match key.to_ascii_lowercase().as_str() {
                "aws:sourcearn" => source_arn,
                "aws:sourceaccount" => account,
                // A condition on a key API Gateway does not present cannot hold.
                _ => return false,
            };
            let expected = strings(expected);
            match operator.as_str() {
                "ArnLike" | "StringLike" => expected.iter().any(|p| glob(p, actual)),
                "ArnEquals" | "StringEquals" => expected.contains(&actual),
                "ArnNotLike" | "StringNotLike" => !expected.iter().any(|p| glob(p, actual)),
                "ArnNotEquals" | "StringNotEquals" => !expected.contains(&actual),
                _ => false,
            }
        })
    })
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc123/$default/GET/pets/{id}";

    #[test]
    fn globs() {
        assert!(glob("arn:*:abc123/*/*", ARN));
        assert!(glob(
            "arn:aws:execute-api:us-east-1:000000000000:abc123/*/GET/pets/*",
            ARN
        ));
        assert!(!glob(
            "arn:aws:execute-api:us-east-1:000000000000:other/*",
            ARN
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
    }

    #[test]
    fn statements() {
        let allow = |cond: Value| {
            json!({"Sid": "s", "Effect": "Allow", "Principal": {"Service": PRINCIPAL},
                   "Action": "lambda:InvokeFunction", "Resource": "f", "Condition": cond})
        };
        assert!(permits(&[allow(Value::Null)], ARN, "000000000000"));
        assert!(permits(
            &[allow(
                json!({"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:000000000000:abc123/*/*/pets/*"}})
            )],
            ARN,
            "000000000000"
        ));
        assert!(!permits(
            &[allow(
                json!({"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:000000000000:zzz/*"}})
            )],
            ARN,
            "000000000000"
        ));
        assert!(!permits(
            &[allow(
                json!({"StringEquals": {"AWS:SourceAccount": "111111111111"}})
            )],
            ARN,
            "000000000000"
        ));
        let other = json!({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "lambda:InvokeFunction"});
        assert!(!permits(&[other], ARN, "000000000000"));
        assert!(!permits(&[], ARN, "000000000000"));
    }
}
