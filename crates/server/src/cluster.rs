//! This node's membership: alone with SQLite, or one of the nodes sharing a PostgreSQL
//! database (heartbeats, fencing, ownership of mappings and schedules; `kindling-cluster`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kindling_cluster::{Cluster, ClusterConfig};
use kindling_scheduler::Scheduler;
use kindling_store::nodes::NodeStore;

use crate::cli::ServeArgs;

/// Joins the cluster of `shared` (registering this node), or stands alone without one.
pub async fn join(
    args: &ServeArgs,
    node: &str,
    shared: Option<Arc<dyn NodeStore>>,
    scheduler: &Scheduler,
) -> anyhow::Result<Cluster> {
    let address = if args.listen.ip().is_unspecified() {
        format!("127.0.0.1:{}", args.listen.port())
    } else {
        args.listen.to_string()
    };
    let load: kindling_cluster::LoadFn = {
        let scheduler = scheduler.clone();
        Arc::new(move || scheduler.in_flight())
    };
    let Some(store) = shared else {
        return Ok(Cluster::single(node, &address, load));
    };
    let config = ClusterConfig::new(
        node,
        &address,
        Duration::from_secs_f64(args.node_heartbeat_interval),
        Duration::from_secs_f64(args.node_dead_after),
    );
    tracing::info!(
        heartbeat = ?config.heartbeat,
        dead_after = ?config.dead_after,
        fence_after = ?config.fence_after,
        "joining the nodes sharing the database"
    );
    let cluster = Cluster::join(store, config, load)
        .await
        .context("registering this node in the shared database")?;
    // The targets this node holds warm environments for, advertised to the others (which
    // forward synchronous invokes of them here).
    let scheduler = scheduler.clone();
    cluster.set_warm_source(Arc::new(move || scheduler.warm_targets()));
    Ok(cluster)
}

/// `--node-heartbeat-interval` and `--node-dead-after` leave room for several heartbeats
/// before a node fences itself.
pub fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.node_heartbeat_interval >= 0.05 && args.node_heartbeat_interval <= 60.0,
        "--node-heartbeat-interval must be between 0.05 and 60 seconds"
    );
    anyhow::ensure!(
        args.node_dead_after >= 4.0 * args.node_heartbeat_interval
            && args.node_dead_after <= 3600.0,
        "--node-dead-after must be at least 4 heartbeat intervals (and at most 3600 seconds): a node fences itself after half of it"
    );
    Ok(())
}
