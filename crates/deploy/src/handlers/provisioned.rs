//! `ProvisionedConcurrencyConfig` of `AWS::Lambda::Alias` and `AWS::Lambda::Version` (and so
//! of a SAM function with `AutoPublishAlias`): the configuration is put (or deleted when the
//! template drops it), the data plane told, and the resource completes once its status is
//! READY, as CloudFormation waits; FAILED fails the resource with Lambda's reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::props::number;
use super::{Kindling, blocking};
use crate::provider::{BoxFuture, ProvisionError};

/// How long a configuration may take to become READY (a provisioned Init may take up to
/// 15 minutes in Lambda).
const READY_WITHIN: Duration = Duration::from_secs(15 * 60);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The data plane's provisioned concurrency as the handlers need it.
pub trait ProvisionedConcurrency: Send + Sync {
    /// Makes the data plane keep what `function`'s configurations now say.
    fn apply<'a>(&'a self, function: &'a str) -> BoxFuture<'a, ()>;
    /// `Status` and `StatusReason` of the configuration on `qualifier`; `None` while the data
    /// plane keeps nothing for it.
    fn status(&self, function: &str, qualifier: &str) -> Option<(&'static str, Option<String>)>;
}

/// `ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions` of a resource's properties.
fn requested(config: &Value) -> Result<i64, ProvisionError> {
    config
        .get("ProvisionedConcurrentExecutions")
        .and_then(number)
        .ok_or_else(|| {
            ProvisionError::new(
                "ProvisionedConcurrencyConfig requires an integer ProvisionedConcurrentExecutions",
            )
        })
}

/// Applies `config` (a resource's `ProvisionedConcurrencyConfig`, `None`: none) to
/// `function:qualifier`; `had` says whether the resource had one before (then `None` deletes
/// it). Returns once the configuration is READY.
pub async fn apply(
    k: &Kindling,
    function: &str,
    qualifier: &str,
    config: Option<&Value>,
    had: bool,
) -> Result<(), ProvisionError> {
    let value = match config {
        Some(c) => Some(requested(c)?),
        None if had => None,
        None => return Ok(()),
    };
    let control = Arc::clone(&k.control);
    let (f, q) = (function.to_string(), qualifier.to_string());
    blocking(move || {
        match value {
            Some(v) => control.put_provisioned(&f, Some(&q), Some(v)).map(|_| ()),
            None => control.delete_provisioned(&f, Some(&q)),
        }
        .map_err(|e| ProvisionError::new(e.to_string()))
    })
    .await?;
    let Some(data_plane) = &k.provisioned else {
        return Ok(());
    };
    data_plane.apply(function).await;
    if value.is_none() {
        return Ok(());
    }
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        match data_plane.status(function, qualifier) {
            Some(("READY", _)) => return Ok(()),
            Some(("FAILED", reason)) => {
                return Err(ProvisionError::new(format!(
                    "Provisioned Concurrency configuration failed to be applied. Reason: {}",
                    reason.unwrap_or_default()
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(ProvisionError::new(format!(
                "Provisioned Concurrency configuration of {function}:{qualifier} did not become READY within {} s",
                READY_WITHIN.as_secs()
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Tells the data plane after a deletion (the control plane deleted the configuration with
/// its alias or version).
pub async fn released(k: &Kindling, function: &str) {
    if let Some(data_plane) = &k.provisioned {
        data_plane.apply(function).await;
    }
}
