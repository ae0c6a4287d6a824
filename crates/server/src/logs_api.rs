//! CloudWatch Logs in the server: the group registry (shared with the log retention sweeps,
//! whose per-group age limits are its retention policies) and the Logs router.

use std::sync::Arc;

use anyhow::Context;
use kindling_edge::gate::{AuthPolicy, Gate};
use kindling_logs::search::Searches;
use kindling_logs::{Logs, LogsState, Registry};
use kindling_scheduler::LogStore;

use crate::cli::ServeArgs;

/// Reads the registry of log groups under the log root.
pub fn registry(logs: &LogStore) -> anyhow::Result<Arc<Registry>> {
    let path = logs.root().join(".registry.json");
    Ok(Arc::new(Registry::open(path.clone()).with_context(
        || format!("reading the log group registry {}", path.display()),
    )?))
}

/// The CloudWatch Logs API (signing name `logs`).
pub fn router(
    args: &ServeArgs,
    store: LogStore,
    registry: Arc<Registry>,
    policy: &Arc<AuthPolicy>,
) -> axum::Router {
    kindling_logs::router(LogsState {
        logs: Logs {
            store,
            registry,
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            searches: Arc::new(Searches::with_budget(args.logs_search_budget)),
        },
        gate: Gate::new(Arc::clone(policy), "logs"),
        live: Arc::default(),
    })
}
