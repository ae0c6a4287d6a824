//! The warm pool: idle environments by exact function version and revision.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kindling_model::function::VersionRecord;

use crate::env::Env;

/// Environments are shared only by invocations of the same version at the same revision, so an
/// update of `$LATEST` never reaches an environment started with the old code or configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub function: String,
    pub version: String,
    pub revision: String,
}

impl PoolKey {
    pub fn of(rec: &VersionRecord) -> Self {
        Self {
            function: rec.function_name.clone(),
            version: rec.version_label(),
            revision: rec.revision_id.clone(),
        }
    }
}

/// Idle environments, most recently used last (taken first: hot environments stay hot).
#[derive(Default)]
pub(crate) struct Pool {
    idle: HashMap<PoolKey, Vec<Env>>,
}

impl Pool {
    pub fn take(&mut self, key: &PoolKey) -> Option<Env> {
        let list = self.idle.get_mut(key)?;
        let env = list.pop();
        if list.is_empty() {
            self.idle.remove(key);
        }
        env
    }

    pub fn put(&mut self, env: Env) {
        self.idle.entry(env.key.clone()).or_default().push(env);
    }

    /// Removes environments idle for `max_idle` or longer, and those whose runtime died.
    pub fn expired(&mut self, max_idle: Duration, now: Instant) -> Vec<Env> {
        let mut out = Vec::new();
        for list in self.idle.values_mut() {
            let (old, fresh): (Vec<Env>, Vec<Env>) = std::mem::take(list)
                .into_iter()
                .partition(|e| now.duration_since(e.last_used) >= max_idle || !e.alive());
            *list = fresh;
            out.extend(old);
        }
        self.idle.retain(|_, l| !l.is_empty());
        out
    }

    /// Removes idle environments not yet frozen that have been idle for `after` or longer.
    pub fn take_unfrozen_idle(&mut self, after: Duration, now: Instant) -> Vec<Env> {
        let mut out = Vec::new();
        for list in self.idle.values_mut() {
            let (take, keep): (Vec<Env>, Vec<Env>) = std::mem::take(list)
                .into_iter()
                .partition(|e| !e.frozen && now.duration_since(e.last_used) >= after);
            *list = keep;
            out.extend(take);
        }
        self.idle.retain(|_, l| !l.is_empty());
        out
    }

    /// Removes the idle environments of a function's versions other than the current revisions.
    pub fn stale(&mut self, key: &PoolKey) -> Vec<Env> {
        let stale: Vec<PoolKey> = self
            .idle
            .keys()
            .filter(|k| {
                k.function == key.function && k.version == key.version && k.revision != key.revision
            })
            .cloned()
            .collect();
        stale
            .into_iter()
            .flat_map(|k| self.idle.remove(&k).unwrap_or_default())
            .collect()
    }

    pub fn drain(&mut self) -> Vec<Env> {
        self.idle.drain().flat_map(|(_, l)| l).collect()
    }

    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}
