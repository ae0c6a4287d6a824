//! Cluster-wide concurrency limits: this node's grants of slots per scope, exchanged with the
//! database off the invocation path.
//!
//! - **Rounds** (every heartbeat): the node gives back, locally first, what it holds beyond
//!   its last fair share (never below its invocations in flight), then tells the database its
//!   demand and kept grants; the database grows each grant towards the node's new fair share
//!   from the slots no live node holds ([`NodeStore::sync_grants`]), and the node applies it.
//! - **Asks** (the slow path): an invocation refused only for want of granted slots asks for
//!   more at once, waiting at most [`Cluster::ask_wait`]. A scope whose ask got nothing is not
//!   asked again before the next round: under saturation, refusals cost no round trip.
//! - Rounds and asks of a node never overlap (one lock), so what a round keeps is what the
//!   node applies locally.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kindling_store::nodes::{Grant, GrantRequest, NodeStore};

use crate::{Cluster, ClusterError, blocking, lock};

/// This node's grant table (the scheduler's admission), as the cluster exchanges it.
pub trait GrantTable: Send + Sync + 'static {
    /// Starts a round: gives back what is beyond the last fair shares, and says what to ask.
    fn round(&self) -> Vec<GrantRequest>;
    /// What to ask for `scope` on the slow path (`None`: the scope is unknown).
    fn ask(&self, scope: &str) -> Option<GrantRequest>;
    /// Applies what the database granted, if `current()` still holds once the table is
    /// locked (a revocation meanwhile wins).
    fn apply(&self, grants: &[Grant], current: &dyn Fn() -> bool);
    /// Drops every grant (declared dead, or leaving: the database freed them).
    fn revoke(&self);
}

/// Per node: the table, the lock that keeps rounds and asks apart, and the scopes whose ask
/// got nothing since the last round.
#[derive(Default)]
pub(crate) struct Grants {
    pub(crate) table: std::sync::OnceLock<Arc<dyn GrantTable>>,
    exchange: tokio::sync::Mutex<()>,
    refused: std::sync::Mutex<HashSet<String>>,
    /// Bumped before every revocation: an answer sent under an older epoch is not applied.
    epoch: AtomicU64,
}

impl Grants {
    /// Drops this node's grants (the database freed them, or is about to).
    pub(crate) fn revoke(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(table) = self.table.get() {
            table.revoke();
        }
    }
}

impl Cluster {
    /// Limits this node's admission to the slots the cluster grants it: rounds run with the
    /// heartbeats from now on. Without a shared database nothing is granted (the node admits
    /// against the limits themselves).
    pub fn set_grant_table(&self, table: Arc<dyn GrantTable>) {
        let _ = self.inner.grants.table.set(table);
    }

    /// How long an invocation waits on the slow path for more slots: one heartbeat interval,
    /// at most a second.
    pub fn ask_wait(&self) -> Duration {
        self.inner.config.heartbeat.min(Duration::from_secs(1))
    }

    fn grant_store(&self) -> Option<(Arc<dyn NodeStore>, Arc<dyn GrantTable>)> {
        let store = self.inner.store.clone()?;
        let table = self.inner.grants.table.get()?;
        Some((store, Arc::clone(table)))
    }

    /// One round of the rebalancer (after a successful heartbeat).
    pub(crate) async fn rebalance(&self) -> Result<(), ClusterError> {
        let Some((store, table)) = self.grant_store() else {
            return Ok(());
        };
        let _exchange = self.inner.grants.exchange.lock().await;
        if !self.healthy() {
            return Ok(());
        }
        lock(&self.inner.grants.refused).clear();
        let requests = table.round();
        if requests.is_empty() {
            return Ok(());
        }
        self.exchange(store, table, requests).await.map(|_| ())
    }

    /// Sends `requests` and applies the answer; `None` when the node was declared dead.
    async fn exchange(
        &self,
        store: Arc<dyn NodeStore>,
        table: Arc<dyn GrantTable>,
        requests: Vec<GrantRequest>,
    ) -> Result<Option<Vec<Grant>>, ClusterError> {
        let id = self.inner.config.node_id.clone();
        let epoch = self.inner.grants.epoch.load(Ordering::Acquire);
        let incarnation = self.inner.incarnation.load(Ordering::Acquire);
        let answer = blocking(move || store.sync_grants(&id, incarnation, &requests)).await?;
        match &answer {
            Some(grants) => {
                let current = || self.inner.grants.epoch.load(Ordering::Acquire) == epoch;
                table.apply(grants, &current);
            }
            None => {
                tracing::warn!("this node was declared dead: it gives up its concurrency grants");
                self.fence();
                self.inner.lost.store(true, Ordering::Release);
            }
        }
        Ok(answer)
    }

    /// The slow path: asks for more of `scope`'s slots for this node, waiting at most
    /// [`Self::ask_wait`]. Whatever is granted is applied before this returns (or later, if the
    /// wait ran out first).
    pub async fn ask_grant(&self, scope: String) {
        let Some((store, table)) = self.grant_store() else {
            return;
        };
        if !self.healthy() || lock(&self.inner.grants.refused).contains(&scope) {
            return;
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            let _exchange = me.inner.grants.exchange.lock().await;
            if !me.healthy() || lock(&me.inner.grants.refused).contains(&scope) {
                return;
            }
            let Some(request) = table.ask(&scope) else {
                return;
            };
            let keep = request.keep;
            match me.exchange(store, table, vec![request]).await {
                Ok(Some(grants)) if grants.iter().all(|g| g.granted <= keep) => {
                    lock(&me.inner.grants.refused).insert(scope);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(
                        error = &e as &dyn std::error::Error,
                        scope,
                        "could not ask for concurrency slots"
                    );
                    lock(&me.inner.grants.refused).insert(scope);
                }
            }
        });
        let _ = tokio::time::timeout(self.ask_wait(), task).await;
    }
}
