//! Resolving a mapping's function, version or alias to what runs, from the control plane's
//! cache when it can (no blocking call on the warm path).

use std::sync::Arc;

use kindling_control::ControlError;
use kindling_model::invoke::InvokeTarget;

use crate::Inner;

pub(crate) async fn resolve(
    inner: &Inner,
    function: &str,
    qualifier: Option<&str>,
) -> Result<InvokeTarget, ControlError> {
    if let Some(t) = inner.control.cached_invoke_target(function, qualifier)? {
        return Ok(t);
    }
    let control = Arc::clone(&inner.control);
    let (name, q) = (function.to_string(), qualifier.map(str::to_string));
    match tokio::task::spawn_blocking(move || control.invoke_target(&name, q.as_deref())).await {
        Ok(r) => r,
        Err(e) => Err(ControlError::Internal(format!("resolve task failed: {e}"))),
    }
}
