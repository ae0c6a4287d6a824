//! The engine's handle: stacks cached in memory (loaded from the store at start and, when
//! nodes share the store, refreshed from it before every request), every change written
//! durably (a compare-and-swap on the stack's revision) before it becomes visible, events
//! and change sets read from the store, operations run on tasks.
//!
//! With a shared store, a stack with an operation in flight names its owner (the node running
//! it); another node's request to start an operation on it loses the compare-and-swap and is
//! refused as CloudFormation refuses a busy stack. Every second a node adopts the operations
//! of nodes that died (`StackStore::adopt_orphaned_stacks`) and resumes them, as it resumes
//! its own after a restart or an interrupted run: an interrupted create or update is rolled
//! back, a cleanup, rollback or delete is finished.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kindling_cluster::Cluster;
use kindling_store::{ChangeSetRow, StackRow, StackStore, StoreError};

use crate::error::{DeployError, Result};
use crate::model::{ChangeSet, Stack, StackEvent};
use crate::provider::{Provider, TemplateSource};

/// Where the engine runs.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub region: String,
    pub account_id: String,
    pub partition: String,
    /// How long ExecuteChangeSet, CreateStack, UpdateStack and DeleteStack wait for the
    /// operation to finish before answering (clients' waiters poll every 5 to 30 s; a stack
    /// that finishes within this time is complete at their first poll). Zero answers at once.
    pub linger: Duration,
    /// Stacks that may exist at once, deleted ones aside (CloudFormation's `StacksPerAccount`
    /// quota, 2000): each holds its template in memory.
    pub max_stacks: usize,
    /// Deleted stacks kept (their summary and events, without template or resource bodies),
    /// the newest first; older ones are forgotten.
    pub max_deleted_stacks: usize,
    /// How long a deleted stack stays visible (CloudFormation: 90 days).
    pub deleted_retention: Duration,
}

impl DeployConfig {
    pub fn new(region: &str, account_id: &str) -> Self {
        Self {
            region: region.to_string(),
            account_id: account_id.to_string(),
            partition: "aws".to_string(),
            linger: Duration::ZERO,
            max_stacks: 2000,
            max_deleted_stacks: 1000,
            deleted_retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// Every stack, deleted ones included, oldest first.
    pub stacks: Vec<Stack>,
    /// Stacks with an operation task running on this node.
    pub running: HashSet<String>,
}

impl State {
    /// The live stack of that name or id (a deleted one only by id).
    pub fn find(&self, name_or_id: &str) -> Option<&Stack> {
        if name_or_id.starts_with("arn:") {
            self.stacks.iter().find(|s| s.stack_id == name_or_id)
        } else {
            self.stacks
                .iter()
                .find(|s| s.stack_name == name_or_id && !s.is_deleted())
        }
    }

    /// The deleted stacks past the retention: all but the newest `keep`, and any deleted
    /// before `oldest_ms`.
    fn expired(&self, keep: usize, oldest_ms: i64) -> Vec<String> {
        let mut deleted: Vec<&Stack> = self.stacks.iter().filter(|s| s.is_deleted()).collect();
        deleted.sort_by_key(|s| std::cmp::Reverse(s.deleted_at_ms()));
        deleted
            .iter()
            .enumerate()
            .filter(|(i, s)| *i >= keep || s.deleted_at_ms() < oldest_ms)
            .map(|(_, s)| s.stack_id.clone())
            .collect()
    }

    /// Installs a stack read or written at its revision, unless a newer one is cached.
    fn install(&mut self, stack: Stack) {
        match self
            .stacks
            .iter_mut()
            .find(|s| s.stack_id == stack.stack_id)
        {
            Some(slot) if slot.revision <= stack.revision => *slot = stack,
            Some(_) => {}
            None => self.stacks.push(stack),
        }
    }
}

pub(crate) struct Inner {
    pub config: DeployConfig,
    pub store: Arc<dyn StackStore>,
    pub provider: Arc<dyn Provider>,
    pub templates: Arc<dyn TemplateSource>,
    /// This node's membership (alone: always healthy).
    pub cluster: Cluster,
    pub state: Mutex<State>,
    /// Woken whenever an operation ends.
    pub finished: tokio::sync::Notify,
}

/// The CloudFormation engine.
#[derive(Clone)]
pub struct Deployer {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> kindling_store::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(DeployError::from),
        Err(e) => Err(DeployError::Internal(format!("store task failed: {e}"))),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DeployError::Internal(e.to_string()))
}

fn from_row(row: StackRow) -> Result<Stack> {
    let mut stack: Stack = serde_json::from_str(&row.document).map_err(|e| {
        DeployError::Internal(format!("stack record {} unreadable: {e}", row.stack_id))
    })?;
    stack.revision = row.revision;
    stack.owner = row.owner;
    if stack.is_deleted() {
        // (Records written before deleted stacks were shed still hold everything.) In
        // memory, a deleted stack keeps no template either: GetTemplate reads the store.
        stack.shed_deleted();
        stack.template_body = String::new();
    }
    Ok(stack)
}

/// How often a node sharing the store looks for operations to adopt or resume.
const WATCH_EVERY: Duration = Duration::from_secs(1);

impl Deployer {
    /// Loads every stack and resumes (rolls back, or finishes) the operations a crash of this
    /// node interrupted. With a shared store (`cluster`), also starts adopting the operations
    /// of nodes that die.
    pub async fn open(
        config: DeployConfig,
        store: Arc<dyn StackStore>,
        provider: Arc<dyn Provider>,
        templates: Arc<dyn TemplateSource>,
        cluster: Cluster,
    ) -> Result<Self> {
        let s = Arc::clone(&store);
        let rows = blocking(move || s.stacks()).await?;
        let mut state = State::default();
        for row in rows {
            state.stacks.push(from_row(row)?);
        }
        let deployer = Self {
            inner: Arc::new(Inner {
                config,
                store,
                provider,
                templates,
                cluster,
                state: Mutex::new(state),
                finished: tokio::sync::Notify::new(),
            }),
        };
        deployer.forget_expired().await;
        deployer.resume_own(INTERRUPTED);
        if deployer.inner.cluster.is_shared() {
            let me = deployer.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(WATCH_EVERY).await;
                    if let Err(e) = me.watch().await {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "looking for stack operations to adopt failed"
                        );
                    }
                }
            });
        }
        Ok(deployer)
    }

    pub fn config(&self) -> &DeployConfig {
        &self.inner.config
    }

    fn node_id(&self) -> &str {
        self.inner.cluster.node_id()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        match self.inner.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Brings the cache up to date with the store when nodes share it (stacks another node
    /// created or changed); nothing to do alone. Called before every request.
    pub async fn sync(&self) -> Result<()> {
        if !self.inner.cluster.is_shared() {
            return Ok(());
        }
        let store = Arc::clone(&self.inner.store);
        let revisions = blocking(move || store.stack_revisions()).await?;
        let stale: Vec<String> = {
            let mut state = self.state();
            // Deleted stacks another node forgot leave this cache too.
            let stored: HashSet<&str> = revisions.iter().map(|(id, _)| id.as_str()).collect();
            state
                .stacks
                .retain(|s| !s.is_deleted() || stored.contains(s.stack_id.as_str()));
            revisions
                .into_iter()
                .filter(|(id, rev)| {
                    state
                        .stacks
                        .iter()
                        .find(|s| &s.stack_id == id)
                        .is_none_or(|s| s.revision < *rev)
                })
                .map(|(id, _)| id)
                .collect()
        };
        if stale.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.inner.store);
        let rows = blocking(move || store.stacks_by_id(&stale)).await?;
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            fresh.push(from_row(row)?);
        }
        let mut state = self.state();
        for stack in fresh {
            state.install(stack);
        }
        Ok(())
    }

    /// Resumes the operations this node owns that no task of it runs (after a restart, or a
    /// run that stopped because the store failed or the node was fenced).
    fn resume_own(&self, reason: &str) {
        let me = self.node_id().to_string();
        let shared = self.inner.cluster.is_shared();
        let orphans: Vec<Stack> = {
            let mut state = self.state();
            let found: Vec<Stack> = state
                .stacks
                .iter()
                .filter(|s| s.operation.is_some() && !state.running.contains(&s.stack_id))
                .filter(|s| !shared || s.owner.as_deref().is_none_or(|o| o == me))
                .cloned()
                .collect();
            for s in &found {
                state.running.insert(s.stack_id.clone());
            }
            found
        };
        for stack in orphans {
            tracing::warn!(stack = %stack.stack_name, status = %stack.status, "resuming an interrupted stack operation");
            self.spawn(stack, Some(reason.to_string()));
        }
    }

    /// One round of a node sharing the store: adopt the operations of dead nodes, then
    /// resume every operation this node owns and does not run.
    async fn watch(&self) -> Result<()> {
        if !self.inner.cluster.healthy() {
            return Ok(());
        }
        let store = Arc::clone(&self.inner.store);
        let me = self.node_id().to_string();
        let adopted = blocking(move || store.adopt_orphaned_stacks(&me)).await?;
        for id in &adopted {
            tracing::warn!(stack = %id, "adopted the stack operation of a node that stopped");
        }
        self.sync().await?;
        if !self.inner.cluster.healthy() {
            return Ok(());
        }
        self.resume_own(ADOPTED);
        Ok(())
    }

    /// Writes a stack (a compare-and-swap on the revision it was read at) with new events
    /// durably, then makes it visible; the stack carries its new revision afterwards.
    pub(crate) async fn save(&self, stack: &mut Stack, events: Vec<StackEvent>) -> Result<()> {
        if !self.inner.cluster.healthy() {
            return Err(DeployError::Internal(
                "this node cannot reach the shared store; it takes no stack operation".into(),
            ));
        }
        if stack.is_deleted() {
            stack.shed_deleted();
        }
        let owner = stack.operation.as_ref().map(|_| self.node_id().to_string());
        let row = StackRow {
            stack_id: stack.stack_id.clone(),
            name: stack.stack_name.clone(),
            status: stack.status.clone(),
            updated_ms: now_ms(),
            document: to_json(&*stack)?,
            revision: stack.revision,
            owner: owner.clone(),
        };
        let docs = events.iter().map(to_json).collect::<Result<Vec<_>>>()?;
        let store = Arc::clone(&self.inner.store);
        let revision =
            match tokio::task::spawn_blocking(move || store.save_stack(&row, &docs)).await {
                Ok(Ok(r)) => r,
                Ok(Err(StoreError::AlreadyExists(_))) => {
                    return Err(DeployError::AlreadyExists(format!(
                        "Stack [{}] already exists",
                        stack.stack_name
                    )));
                }
                Ok(Err(e)) => return Err(DeployError::from(e)),
                Err(e) => return Err(DeployError::Internal(format!("store task failed: {e}"))),
            };
        stack.revision = revision;
        stack.owner = owner;
        if stack.is_deleted() {
            // The original template stays in the store only (GetTemplate reads it there).
            stack.template_body = String::new();
        }
        self.state().install(stack.clone());
        if stack.is_deleted() {
            self.forget_expired().await;
        }
        Ok(())
    }

    /// Forgets the deleted stacks past the retention ([`DeployConfig::max_deleted_stacks`],
    /// [`DeployConfig::deleted_retention`]): from this cache, and from the store with their
    /// events and change sets. A store failure is logged (they go at the next delete).
    async fn forget_expired(&self) {
        let config = &self.inner.config;
        let retention = i64::try_from(config.deleted_retention.as_millis()).unwrap_or(i64::MAX);
        let expired = {
            let mut state = self.state();
            let expired = state.expired(
                config.max_deleted_stacks,
                now_ms().saturating_sub(retention),
            );
            if !expired.is_empty() {
                let gone: HashSet<&str> = expired.iter().map(String::as_str).collect();
                state.stacks.retain(|s| !gone.contains(s.stack_id.as_str()));
            }
            expired
        };
        if expired.is_empty() {
            return;
        }
        let store = Arc::clone(&self.inner.store);
        if let Err(e) = blocking(move || store.forget_deleted_stacks(&expired)).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "forgetting expired deleted stacks failed"
            );
        }
    }

    /// Reads one stack again from the store into the cache (after a lost compare-and-swap).
    pub(crate) async fn reload(&self, stack_id: &str) -> Result<Option<Stack>> {
        let store = Arc::clone(&self.inner.store);
        let ids = vec![stack_id.to_string()];
        let rows = blocking(move || store.stacks_by_id(&ids)).await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let stack = from_row(row)?;
        self.state().install(stack.clone());
        Ok(Some(stack))
    }

    /// A stack's events, oldest first.
    pub(crate) async fn events_of(&self, stack_id: &str) -> Result<Vec<StackEvent>> {
        let store = Arc::clone(&self.inner.store);
        let id = stack_id.to_string();
        let docs = blocking(move || store.stack_events(&id)).await?;
        Ok(docs
            .iter()
            .filter_map(|e| serde_json::from_str::<StackEvent>(e).ok())
            .collect())
    }

    /// A stack's change sets, oldest first.
    pub(crate) async fn change_sets_of(&self, stack_id: &str) -> Result<Vec<ChangeSet>> {
        let store = Arc::clone(&self.inner.store);
        let id = stack_id.to_string();
        let rows = blocking(move || store.change_sets_of(&id)).await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str::<ChangeSet>(&r.document).ok())
            .collect())
    }

    /// One change set by id.
    pub(crate) async fn change_set_by_id(&self, id: &str) -> Result<Option<ChangeSet>> {
        let store = Arc::clone(&self.inner.store);
        let id = id.to_string();
        let row = blocking(move || store.change_set(&id)).await?;
        Ok(row.and_then(|r| serde_json::from_str::<ChangeSet>(&r.document).ok()))
    }

    pub(crate) async fn save_change_set(&self, cs: &ChangeSet) -> Result<()> {
        let row = ChangeSetRow {
            change_set_id: cs.change_set_id.clone(),
            stack_id: cs.stack_id.clone(),
            created_ms: cs.creation_ms,
            document: to_json(cs)?,
        };
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.save_change_set(&row)).await
    }

    pub(crate) async fn forget_change_set(&self, id: &str) -> Result<()> {
        let store = Arc::clone(&self.inner.store);
        let owned = id.to_string();
        blocking(move || store.delete_change_set(&owned)).await
    }

    /// Runs the stack's operation on a task of its own (`resumed`: after its run was
    /// interrupted, with the reason). The caller reserved the stack in `running`.
    pub(crate) fn spawn(&self, stack: Stack, resumed: Option<String>) {
        let id = stack.stack_id.clone();
        self.state().running.insert(id.clone());
        let me = self.clone();
        tokio::spawn(async move {
            match crate::run::run(&me, stack, resumed).await {
                Ok(()) => {}
                Err(DeployError::Store(StoreError::RevisionMismatch)) => {
                    tracing::warn!(stack = %id, "stack operation stopped: another node took the stack over");
                }
                Err(e) => {
                    tracing::error!(stack = %id, error = %e, "stack operation stopped: the store failed");
                }
            }
            me.state().running.remove(&id);
            me.inner.finished.notify_waiters();
        });
    }

    /// Waits up to the configured linger for the stack's operation to end.
    pub(crate) async fn linger(&self, stack_id: &str) {
        let deadline = tokio::time::Instant::now() + self.inner.config.linger;
        loop {
            let notified = self.inner.finished.notified();
            if !self.state().running.contains(stack_id) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

/// Why an operation that was interrupted on this node is rolled back.
const INTERRUPTED: &str = "Kindling stopped while the operation ran; it is rolled back on restart";
/// Why an operation whose run stopped (its node died or lost the shared store) is rolled back.
const ADOPTED: &str = "The Kindling node running the operation stopped or lost the database; the operation is rolled back";
