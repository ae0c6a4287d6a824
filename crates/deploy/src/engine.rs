//! The engine's handle: stacks, events and change sets in memory (loaded from the store at
//! start), every change written durably before it becomes visible, operations run on tasks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kindling_store::{ChangeSetRow, StackRow, StackStore};

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
}

impl DeployConfig {
    pub fn new(region: &str, account_id: &str) -> Self {
        Self {
            region: region.to_string(),
            account_id: account_id.to_string(),
            partition: "aws".to_string(),
            linger: Duration::ZERO,
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// Every stack, deleted ones included, oldest first.
    pub stacks: Vec<Stack>,
    pub events: HashMap<String, Vec<StackEvent>>,
    pub change_sets: Vec<ChangeSet>,
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
}

pub(crate) struct Inner {
    pub config: DeployConfig,
    pub store: Arc<dyn StackStore>,
    pub provider: Arc<dyn Provider>,
    pub templates: Arc<dyn TemplateSource>,
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

async fn blocking<T: Send + 'static>(
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

impl Deployer {
    /// Loads every stack, event and change set, and resumes (rolls back, or finishes
    /// deleting) operations a crash interrupted.
    pub async fn open(
        config: DeployConfig,
        store: Arc<dyn StackStore>,
        provider: Arc<dyn Provider>,
        templates: Arc<dyn TemplateSource>,
    ) -> Result<Self> {
        let s = Arc::clone(&store);
        let (rows, change_sets) = blocking(move || Ok((s.stacks()?, s.change_sets()?))).await?;
        let mut state = State::default();
        for row in rows {
            let stack: Stack = serde_json::from_str(&row.document).map_err(|e| {
                DeployError::Internal(format!("stack record {} unreadable: {e}", row.stack_id))
            })?;
            let s = Arc::clone(&store);
            let id = row.stack_id.clone();
            let events = blocking(move || s.stack_events(&id)).await?;
            let events = events
                .iter()
                .filter_map(|e| serde_json::from_str::<StackEvent>(e).ok())
                .collect();
            state.events.insert(row.stack_id.clone(), events);
            state.stacks.push(stack);
        }
        for row in change_sets {
            if let Ok(cs) = serde_json::from_str::<ChangeSet>(&row.document) {
                state.change_sets.push(cs);
            }
        }
        let interrupted: Vec<Stack> = state
            .stacks
            .iter()
            .filter(|s| s.operation.is_some())
            .cloned()
            .collect();
        let deployer = Self {
            inner: Arc::new(Inner {
                config,
                store,
                provider,
                templates,
                state: Mutex::new(state),
                finished: tokio::sync::Notify::new(),
            }),
        };
        for stack in interrupted {
            tracing::warn!(stack = %stack.stack_name, status = %stack.status, "resuming an interrupted stack operation");
            deployer.spawn(stack, true);
        }
        Ok(deployer)
    }

    pub fn config(&self) -> &DeployConfig {
        &self.inner.config
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        match self.inner.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Writes a stack with new events durably, then makes both visible.
    pub(crate) async fn save(&self, stack: &Stack, events: Vec<StackEvent>) -> Result<()> {
        let row = StackRow {
            stack_id: stack.stack_id.clone(),
            name: stack.stack_name.clone(),
            status: stack.status.clone(),
            updated_ms: now_ms(),
            document: to_json(stack)?,
        };
        let docs = events.iter().map(to_json).collect::<Result<Vec<_>>>()?;
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.save_stack(&row, &docs)).await?;
        let mut state = self.state();
        match state
            .stacks
            .iter_mut()
            .find(|s| s.stack_id == stack.stack_id)
        {
            Some(slot) => *slot = stack.clone(),
            None => state.stacks.push(stack.clone()),
        }
        state
            .events
            .entry(stack.stack_id.clone())
            .or_default()
            .extend(events);
        Ok(())
    }

    pub(crate) async fn save_change_set(&self, cs: &ChangeSet) -> Result<()> {
        let row = ChangeSetRow {
            change_set_id: cs.change_set_id.clone(),
            stack_id: cs.stack_id.clone(),
            created_ms: cs.creation_ms,
            document: to_json(cs)?,
        };
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.save_change_set(&row)).await?;
        let mut state = self.state();
        match state
            .change_sets
            .iter_mut()
            .find(|c| c.change_set_id == cs.change_set_id)
        {
            Some(slot) => *slot = cs.clone(),
            None => state.change_sets.push(cs.clone()),
        }
        Ok(())
    }

    pub(crate) async fn forget_change_set(&self, id: &str) -> Result<()> {
        let store = Arc::clone(&self.inner.store);
        let owned = id.to_string();
        blocking(move || store.delete_change_set(&owned)).await?;
        self.state().change_sets.retain(|c| c.change_set_id != id);
        Ok(())
    }

    /// Runs the stack's operation on a task of its own (`resumed`: after a restart).
    pub(crate) fn spawn(&self, stack: Stack, resumed: bool) {
        let id = stack.stack_id.clone();
        self.state().running.insert(id.clone());
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::run::run(&me, stack, resumed).await {
                tracing::error!(stack = %id, error = %e, "stack operation stopped: the store failed");
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
