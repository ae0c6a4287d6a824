//! This node's membership: alone with SQLite, or one of the nodes sharing a PostgreSQL
//! database (heartbeats, fencing, ownership of mappings and schedules; `kindling-cluster`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kindling_cluster::{Cluster, ClusterConfig, GrantTable};
use kindling_scheduler::{Concurrency, GrantBroker, Scheduler, ScopeDemand};
use kindling_store::nodes::{Grant, GrantRequest, NodeStore};

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
    // Concurrency limits hold for the whole cluster: admission within granted slots.
    cluster.set_grant_table(Arc::new(SchedulerGrants(scheduler.grants())));
    let healthy = {
        let cluster = cluster.clone();
        Arc::new(move || cluster.healthy())
    };
    scheduler.use_grants(healthy, Arc::new(ClusterBroker(cluster.clone())));
    // The targets this node holds warm environments for, advertised to the others (which
    // forward synchronous invokes of them here).
    let scheduler = scheduler.clone();
    cluster.set_warm_source(Arc::new(move || scheduler.warm_targets()));
    Ok(cluster)
}

/// The scheduler's admission as the cluster's grant table.
struct SchedulerGrants(Arc<Concurrency>);

fn request(d: ScopeDemand) -> GrantRequest {
    GrantRequest {
        scope: d.scope,
        limit: d.limit,
        demand: d.demand,
        keep: d.keep,
    }
}

impl GrantTable for SchedulerGrants {
    fn round(&self) -> Vec<GrantRequest> {
        self.0.grant_round().into_iter().map(request).collect()
    }

    fn ask(&self, scope: &str) -> Option<GrantRequest> {
        self.0.grant_ask(scope).map(request)
    }

    fn apply(&self, grants: &[Grant], current: &dyn Fn() -> bool) {
        let grants: Vec<(String, u32, u32)> = grants
            .iter()
            .map(|g| (g.scope.clone(), g.granted, g.target))
            .collect();
        self.0.apply_grants(&grants, current);
    }

    fn revoke(&self) {
        self.0.revoke_grants();
    }
}

/// The scheduler's slow path: asks the cluster.
struct ClusterBroker(Cluster);

impl GrantBroker for ClusterBroker {
    fn ask(
        &self,
        scope: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let cluster = self.0.clone();
        Box::pin(async move { cluster.ask_grant(scope).await })
    }
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
