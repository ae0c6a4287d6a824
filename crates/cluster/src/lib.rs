//! Kindling nodes sharing one database ([`NodeStore`], PostgreSQL): membership with
//! heartbeats, fencing, and ownership of resources (event source mappings, schedules).
//!
//! - **Heartbeats** (every `heartbeat`): the node's row records the database's clock. Any node
//!   declares dead a node whose last heartbeat is older than `dead_after` on that clock, and
//!   frees what it held (its asynchronous events' leases, its resources) in the same
//!   transaction.
//! - **Fencing**: a node may take work only until `fence_after` (< `dead_after`) past the
//!   moment it *sent* its last successful heartbeat, measured on its own monotonic clock. The
//!   database stamped that heartbeat after it was sent, so the others declare the node dead no
//!   sooner than `dead_after` after the send: a node cut from the database stops leasing,
//!   polling and firing `dead_after - fence_after` before anyone else may take its work over.
//! - **Ownership**: a resource is owned by one live node at a time, with an epoch that grows
//!   at every change of owner; a node claims free resources up to its fair share (resources
//!   divided by live nodes) and keeps them until it dies or leaves. Writes on behalf of a
//!   resource carry the epoch and are refused once another node took it over.
//!
//! - **Concurrency grants** ([`grants`]): the account's unreserved pool and each function's
//!   reserved concurrency hold for the whole cluster: each node admits against the slots it
//!   was granted, and the grants follow the demand at every heartbeat.
//! - **Routing of synchronous invokes** ([`warm`]): each node advertises the invoke targets it
//!   holds warm environments for; the others keep a copy refreshed with their heartbeats and
//!   forward an invoke that finds no idle environment locally to a live node advertising its
//!   target ([`Cluster::route`]).
//!
//! Invariant: a node that is not [`Cluster::healthy`] starts no work that ownership or a lease
//! authorizes. Without a shared database ([`Cluster::single`]) the node is always healthy and
//! owns everything: one node's behaviour is unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

mod grants;

pub use grants::GrantTable;
use kindling_store::StoreError;
use kindling_store::nodes::{NodeRecord, NodeStore, ResourceLease};
use serde::{Deserialize, Serialize};

pub mod warm;

pub use warm::{Directory, Peer, RouteStats, WarmFn};

/// Timing of a node's membership.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_id: String,
    /// Where this node serves Kindling's API (`host:port`), shown to the others.
    pub address: String,
    /// How often the node renews its heartbeat (and looks for dead nodes).
    pub heartbeat: Duration,
    /// How old a heartbeat must be for its node to be declared dead.
    pub dead_after: Duration,
    /// How long after sending its last successful heartbeat the node keeps taking work.
    /// Must leave a margin below `dead_after` (half of it by default).
    pub fence_after: Duration,
}

impl ClusterConfig {
    /// Timing derived from the heartbeat interval and the dead-after bound: fencing at half
    /// the bound.
    pub fn new(node_id: &str, address: &str, heartbeat: Duration, dead_after: Duration) -> Self {
        Self {
            node_id: node_id.to_string(),
            address: address.to_string(),
            heartbeat,
            dead_after,
            fence_after: dead_after / 2,
        }
    }
}

/// The in-flight load a node reports with its heartbeats.
pub type LoadFn = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One node as `kindling nodes` and `/metrics` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    pub node_id: String,
    pub address: String,
    pub incarnation: i64,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub load: u64,
    pub alive: bool,
    /// Mappings and schedules it owns.
    pub owned: u64,
    /// Asynchronous events it has leased.
    pub leased_events: u64,
}

impl From<NodeRecord> for NodeView {
    fn from(n: NodeRecord) -> Self {
        Self {
            node_id: n.node_id,
            address: n.address,
            incarnation: n.incarnation,
            started_ms: n.started_ms,
            heartbeat_ms: n.heartbeat_ms,
            load: n.load,
            alive: n.alive,
            owned: n.owned,
            leased_events: n.leased_events,
        }
    }
}

/// A resource and who owns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseView {
    pub resource: String,
    pub owner: Option<String>,
    pub epoch: i64,
}

impl From<ResourceLease> for LeaseView {
    fn from(l: ResourceLease) -> Self {
        Self {
            resource: l.resource,
            owner: l.owner,
            epoch: l.epoch,
        }
    }
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterView {
    /// `single` (SQLite: this node alone) or `shared` (PostgreSQL).
    pub mode: String,
    pub node_id: String,
    /// Whether this node may take work now (not fenced).
    pub healthy: bool,
    pub nodes: Vec<NodeView>,
    pub leases: Vec<LeaseView>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the node store failed")]
    Store(#[from] StoreError),
    #[error("the node store task failed")]
    Task,
}

struct Inner {
    config: ClusterConfig,
    /// `None`: a single node (SQLite).
    store: Option<Arc<dyn NodeStore>>,
    load: LoadFn,
    base: Instant,
    started_ms: i64,
    incarnation: AtomicI64,
    /// Nanoseconds after `base` until which this node may take work.
    valid_until: AtomicU64,
    /// Set when the store said this node was declared dead: register again.
    lost: AtomicBool,
    /// Live nodes at the last look (for fair shares).
    alive_nodes: AtomicUsize,
    /// Resources owned at the last successful claim, by resource, with their epochs.
    owned: Mutex<HashMap<String, i64>>,
    /// Concurrency grants (with a shared database and a grant table only).
    grants: grants::Grants,
    /// The other nodes' warm targets and the routing decision.
    directory: Directory,
    /// This node's warm targets (the scheduler's), advertised when set.
    warm_source: OnceLock<WarmFn>,
    /// The hop header's value of forwarded invokes (read when joining).
    route_token: OnceLock<String>,
    /// Set when the node left: its background tasks stop.
    left: AtomicBool,
}

/// This node's membership. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> kindling_store::Result<T> + Send + 'static,
) -> Result<T, ClusterError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ClusterError::Task),
    }
}

impl Cluster {
    /// A node alone (no shared database): always healthy, owns every resource.
    pub fn single(node_id: &str, address: &str, load: LoadFn) -> Self {
        Self::build(
            ClusterConfig::new(
                node_id,
                address,
                Duration::from_secs(1),
                Duration::from_secs(10),
            ),
            None,
            load,
        )
    }

    fn build(config: ClusterConfig, store: Option<Arc<dyn NodeStore>>, load: LoadFn) -> Self {
        let directory = Directory::new(&config.node_id, config.heartbeat, config.dead_after);
        Self {
            inner: Arc::new(Inner {
                directory,
                warm_source: OnceLock::new(),
                route_token: OnceLock::new(),
                left: AtomicBool::new(false),
                config,
                store,
                load,
                base: Instant::now(),
                started_ms: now_ms(),
                incarnation: AtomicI64::new(0),
                valid_until: AtomicU64::new(0),
                lost: AtomicBool::new(false),
                alive_nodes: AtomicUsize::new(1),
                owned: Mutex::new(HashMap::new()),
                grants: grants::Grants::default(),
            }),
        }
    }

    /// Joins the cluster of `store`: registers this node (a new incarnation; what an earlier
    /// one held is freed). Heartbeats start with [`Self::start`].
    pub async fn join(
        store: Arc<dyn NodeStore>,
        config: ClusterConfig,
        load: LoadFn,
    ) -> Result<Self, ClusterError> {
        let me = Self::build(config, Some(Arc::clone(&store)), load);
        me.register().await?;
        let token = blocking(move || store.route_token()).await?;
        let _ = me.inner.route_token.set(token);
        Ok(me)
    }

    /// Whether nodes share a database.
    pub fn is_shared(&self) -> bool {
        self.inner.store.is_some()
    }

    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.inner.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether this node may take work now: alone, always; in a cluster, until `fence_after`
    /// past its last successful heartbeat's send.
    pub fn healthy(&self) -> bool {
        self.inner.store.is_none()
            || self.elapsed_ns() < self.inner.valid_until.load(Ordering::Acquire)
    }

    /// Extends the work window to `fence_after` past `sent` (never shortens it).
    fn renew(&self, sent: Instant) {
        let until = sent.saturating_duration_since(self.inner.base) + self.inner.config.fence_after;
        let until = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.inner.valid_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Stops taking work at once (declared dead): ownerships and grants are gone.
    fn fence(&self) {
        self.inner.valid_until.store(0, Ordering::Release);
        lock(&self.inner.owned).clear();
        self.inner.grants.revoke();
    }

    async fn register(&self) -> Result<(), ClusterError> {
        let Some(store) = self.inner.store.clone() else {
            return Ok(());
        };
        let (id, address) = (
            self.inner.config.node_id.clone(),
            self.inner.config.address.clone(),
        );
        let load = (self.inner.load)();
        let sent = Instant::now();
        let reg = blocking(move || store.register_node(&id, &address, load)).await?;
        self.inner
            .incarnation
            .store(reg.incarnation, Ordering::Release);
        self.inner.lost.store(false, Ordering::Release);
        lock(&self.inner.owned).clear();
        // An earlier incarnation's grants were freed with its registration.
        self.inner.grants.revoke();
        self.renew(sent);
        tracing::info!(
            node = %self.inner.config.node_id,
            incarnation = reg.incarnation,
            "joined the cluster"
        );
        Ok(())
    }

    /// One heartbeat round: renew (or register again after being declared dead), declare
    /// dead nodes, count the live ones, then a round of concurrency grants.
    async fn beat(&self) -> Result<(), ClusterError> {
        let Some(store) = self.inner.store.clone() else {
            return Ok(());
        };
        if self.inner.lost.load(Ordering::Acquire) {
            self.register().await?;
        } else {
            let (s, id) = (Arc::clone(&store), self.inner.config.node_id.clone());
            let incarnation = self.inner.incarnation.load(Ordering::Acquire);
            let load = (self.inner.load)();
            let sent = Instant::now();
            if blocking(move || s.heartbeat(&id, incarnation, load)).await? {
                self.renew(sent);
            } else {
                tracing::warn!(
                    node = %self.inner.config.node_id,
                    "this node was declared dead (its heartbeats stopped reaching the database): it stopped its owned work and registers again"
                );
                self.fence();
                self.register().await?;
            }
        }
        let s = Arc::clone(&store);
        let dead_after =
            i64::try_from(self.inner.config.dead_after.as_millis()).unwrap_or(i64::MAX);
        let dead = blocking(move || s.reap_dead_nodes(dead_after)).await?;
        for node in dead {
            tracing::warn!(dead = %node, "declared a node dead (no heartbeat): its leases and resources are free");
        }
        let s = Arc::clone(&store);
        let nodes = blocking(move || s.nodes()).await?;
        let alive = nodes.iter().filter(|n| n.alive).count().max(1);
        self.inner.alive_nodes.store(alive, Ordering::Release);
        let warm = blocking(move || store.warm_nodes()).await?;
        self.inner.directory.refresh(warm);
        self.rebalance().await
    }

    /// Heartbeats until `shutdown` resolves, then leaves the cluster (freeing what this node
    /// held at once). Nothing to do for a single node.
    pub fn start(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        if me.is_shared() {
            tokio::spawn(me.clone().publish_warm());
        }
        tokio::spawn(async move {
            if !me.is_shared() {
                return;
            }
            tokio::pin!(shutdown);
            let mut failing = false;
            loop {
                match me.beat().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("heartbeats reach the database again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "heartbeat failed; this node stops taking work {:?} after its last heartbeat",
                            me.inner.config.fence_after
                        );
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(me.inner.config.heartbeat) => {}
                }
            }
            me.leave().await;
        })
    }

    async fn leave(&self) {
        let Some(store) = self.inner.store.clone() else {
            return;
        };
        self.inner.left.store(true, Ordering::Release);
        self.inner.directory.clear();
        self.fence();
        let id = self.inner.config.node_id.clone();
        let incarnation = self.inner.incarnation.load(Ordering::Acquire);
        match blocking(move || store.leave_node(&id, incarnation)).await {
            Ok(()) => tracing::info!("left the cluster"),
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not leave the cluster; the others will declare this node dead"
            ),
        }
    }

    /// Advertises this node's warm targets: every [`warm::PUBLISH_EVERY`], the set is
    /// written when it differs from the last one written (or this node registered again
    /// since). Runs until the node leaves.
    async fn publish_warm(self) {
        let Some(store) = self.inner.store.clone() else {
            return;
        };
        let mut written: Option<(i64, Vec<String>)> = None;
        let mut tick = tokio::time::interval(warm::PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.inner.left.load(Ordering::Acquire) {
            tick.tick().await;
            let Some(source) = self.inner.warm_source.get() else {
                continue;
            };
            if !self.healthy() {
                continue;
            }
            let targets = warm::normalize(source());
            let incarnation = self.inner.incarnation.load(Ordering::Acquire);
            if written
                .as_ref()
                .is_some_and(|(i, t)| *i == incarnation && *t == targets)
            {
                continue;
            }
            let (s, id, list) = (
                Arc::clone(&store),
                self.inner.config.node_id.clone(),
                targets.clone(),
            );
            match blocking(move || s.advertise_warm(&id, incarnation, &list)).await {
                Ok(true) => written = Some((incarnation, targets)),
                // Declared dead meanwhile: the heartbeat registers again, then this writes.
                Ok(false) => written = None,
                Err(e) => tracing::debug!(
                    error = &e as &dyn std::error::Error,
                    "could not advertise this node's warm targets; trying again"
                ),
            }
        }
    }

    /// Where this node's warm targets come from (the scheduler); advertised from now on.
    pub fn set_warm_source(&self, source: WarmFn) {
        let _ = self.inner.warm_source.set(source);
    }

    /// The live peer to forward a synchronous invoke of `target` to (it advertises warm
    /// environments for it), or `None` to run it here: alone, fenced (this node's copy may be
    /// stale), or no live peer advertises the target. No database round trip.
    pub fn route(&self, target: &str) -> Option<Arc<Peer>> {
        if !self.is_shared() || !self.healthy() {
            return None;
        }
        self.inner.directory.pick(target)
    }

    /// The copy of the other nodes' warm targets (to report declines and unreachable peers)
    /// and the routing counters.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The hop header's value of invokes forwarded between nodes (`None` alone).
    pub fn route_token(&self) -> Option<&str> {
        self.inner.route_token.get().map(String::as_str)
    }

    /// The resources among `ids` (of one `kind`, e.g. `esm`) this node owns now, with their
    /// epochs, after claiming free ones up to its fair share. A fenced node owns nothing; when
    /// the database cannot be reached, the last known ownership holds while the node is
    /// healthy (no new claim is made).
    pub async fn owned(&self, kind: &str, ids: &[String]) -> BTreeMap<String, i64> {
        let Some(store) = self.inner.store.clone() else {
            return ids.iter().map(|id| (id.clone(), 0)).collect();
        };
        if !self.healthy() {
            return BTreeMap::new();
        }
        let prefix = format!("{kind}:");
        let resources: Vec<String> = ids.iter().map(|id| format!("{prefix}{id}")).collect();
        let alive = self.inner.alive_nodes.load(Ordering::Acquire).max(1);
        let share = resources.len().div_ceil(alive);
        let id = self.inner.config.node_id.clone();
        let incarnation = self.inner.incarnation.load(Ordering::Acquire);
        let claimed = {
            let resources = resources.clone();
            blocking(move || store.claim_resources(&id, incarnation, &resources, share)).await
        };
        let mut owned = lock(&self.inner.owned);
        match claimed {
            Ok(Some(now)) => {
                owned.retain(|r, _| !r.starts_with(&prefix));
                owned.extend(now);
            }
            Ok(None) => {
                drop(owned);
                tracing::warn!("this node was declared dead: it stops its owned work");
                self.fence();
                self.inner.lost.store(true, Ordering::Release);
                return BTreeMap::new();
            }
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                kind,
                "could not claim resources; keeping those already owned"
            ),
        }
        if !self.healthy() {
            return BTreeMap::new();
        }
        resources
            .iter()
            .filter_map(|r| {
                owned
                    .get(r)
                    .map(|epoch| (r[prefix.len()..].to_string(), *epoch))
            })
            .collect()
    }

    /// Whether this node still owns `kind:id` at `epoch` as far as it knows (no round trip).
    pub fn still_owns(&self, kind: &str, id: &str, epoch: i64) -> bool {
        if !self.is_shared() {
            return true;
        }
        self.healthy() && lock(&self.inner.owned).get(&format!("{kind}:{id}")) == Some(&epoch)
    }

    /// Stores a schedule's document if this node still owns `schedule:<id>` at `epoch`
    /// (`false`: another node took it over, nothing written). Alone: always written.
    pub async fn put_owned_schedule(
        &self,
        id: &str,
        document: &str,
        epoch: i64,
        fallback: impl FnOnce() -> kindling_store::Result<()> + Send + 'static,
    ) -> Result<bool, ClusterError> {
        let (id, document) = (id.to_string(), document.to_string());
        self.write_owned(fallback, move |store, node| {
            store.put_schedule_owned(&id, &document, &format!("schedule:{id}"), node, epoch)
        })
        .await
    }

    /// Records a stream position of event source mapping `uuid` if this node still owns
    /// `esm:<uuid>` at `epoch` (`false`: another node took it over, nothing written). Alone:
    /// always written (by `fallback`).
    pub async fn set_owned_source_position(
        &self,
        uuid: &str,
        source: &str,
        position: i64,
        epoch: i64,
        fallback: impl FnOnce() -> kindling_store::Result<()> + Send + 'static,
    ) -> Result<bool, ClusterError> {
        let (uuid, source) = (uuid.to_string(), source.to_string());
        self.write_owned(fallback, move |store, node| {
            let resource = format!("esm:{uuid}");
            store.set_source_position_owned(&uuid, &source, position, &resource, node, epoch)
        })
        .await
    }

    /// A write fenced by a lease of this node: `write` with the shared store and this node's
    /// id on the blocking pool (its `false`: the lease is another node's now). Alone:
    /// `fallback`, always written.
    async fn write_owned(
        &self,
        fallback: impl FnOnce() -> kindling_store::Result<()> + Send + 'static,
        write: impl FnOnce(&dyn NodeStore, &str) -> kindling_store::Result<bool> + Send + 'static,
    ) -> Result<bool, ClusterError> {
        let Some(store) = self.inner.store.clone() else {
            blocking(fallback).await?;
            return Ok(true);
        };
        let node = self.inner.config.node_id.clone();
        blocking(move || write(store.as_ref(), &node)).await
    }

    /// The cluster as this node sees it: every node and every owned resource (alone: this
    /// node and its load).
    pub async fn view(&self) -> Result<ClusterView, ClusterError> {
        let healthy = self.healthy();
        let Some(store) = self.inner.store.clone() else {
            return Ok(ClusterView {
                mode: "single".into(),
                node_id: self.inner.config.node_id.clone(),
                healthy,
                nodes: vec![NodeView {
                    node_id: self.inner.config.node_id.clone(),
                    address: self.inner.config.address.clone(),
                    incarnation: 1,
                    started_ms: self.inner.started_ms,
                    heartbeat_ms: now_ms(),
                    load: (self.inner.load)(),
                    alive: true,
                    owned: 0,
                    leased_events: 0,
                }],
                leases: Vec::new(),
            });
        };
        let s = Arc::clone(&store);
        let nodes = blocking(move || s.nodes()).await?;
        let leases = blocking(move || store.resource_leases()).await?;
        Ok(ClusterView {
            mode: "shared".into(),
            node_id: self.inner.config.node_id.clone(),
            healthy,
            nodes: nodes.into_iter().map(NodeView::from).collect(),
            leases: leases.into_iter().map(LeaseView::from).collect(),
        })
    }
}

#[cfg(test)]
mod tests;
