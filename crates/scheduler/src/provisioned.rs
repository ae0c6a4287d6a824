//! Provisioned concurrency: environments initialized ahead for a published version (directly
//! or through an alias), kept apart from the on-demand warm pool, and served first.
//!
//! Each configuration is a [`Set`] keyed by the exact version it runs ([`PoolKey`]; Lambda
//! allows one configuration per version). A supervisor task per set keeps `desired`
//! environments alive: it starts the missing ones through the cold-start gate (with
//! `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`), drops the idle ones whose
//! runtime died, and replaces every member that is gone. Membership is a [`Ticket`] inside
//! the environment: however the environment ends (retired after a crash or a timeout, found
//! dead, released), dropping it uncounts it and wakes the supervisor.
//!
//! An invocation of the version takes an idle member first ([`Provisioned::take`]); when all
//! are busy it spills over to the on-demand pool (warm or cold). A member goes back to its
//! set after its run, never to the on-demand pool.
//!
//! Lock order: a set's `state` is a leaf (never held while taking `sets`, never held while
//! an environment is dropped: environments leave it and are retired outside the lock).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kindling_model::invoke::InvokeTarget;
use kindling_runtime_api::ShutdownReason;
use tokio::sync::Notify;

use crate::env::Env;
use crate::error::SchedulerError;
use crate::metrics::{ProvisionedLive, ProvisionedMetrics};
use crate::pool::PoolKey;
use crate::shared::Shared;
use crate::start::StartJob;

/// How often a supervisor looks for idle members whose runtime died (it is also woken by
/// every member that ends).
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// `StatusReason` of a configuration whose environments fail their Init.
pub const INIT_FAILURE_REASON: &str = "FUNCTION_ERROR_INIT_FAILURE";
/// The start of the `StatusReason` of a configuration the node's limit on environments
/// cannot hold.
pub const CAPACITY_REASON: &str = "INSUFFICIENT_CAPACITY";

/// What to keep provisioned for one configuration.
#[derive(Debug, Clone)]
pub struct ProvisionedSpec {
    /// The version number or alias name the configuration is on.
    pub qualifier: String,
    /// The version its environments run.
    pub target: InvokeTarget,
    pub count: u32,
    /// Changes with every Put of the configuration (its `LastModified`): a new Put starts a
    /// FAILED configuration over.
    pub generation: String,
}

/// A configuration's `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionedState {
    InProgress,
    Ready,
    Failed,
}

impl ProvisionedState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Ready => "READY",
            Self::Failed => "FAILED",
        }
    }
}

/// A configuration's allocation as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    /// Environments initialized for it and alive (idle or serving).
    pub allocated: u32,
    /// Of those, the idle ones (ready for an invocation now).
    pub available: u32,
    pub state: ProvisionedState,
    pub reason: Option<String>,
}

struct SetState {
    desired: u32,
    generation: String,
    idle: Vec<Env>,
    /// Initialized members alive (idle or busy): one per live [`Ticket`].
    members: u32,
    /// Starts under way (waiting for a cold-start slot, for a place, or initializing).
    starting: u32,
    /// Of those, the ones holding a place under the node's limit on environments: with
    /// `members`, what the set takes of the limit now (a start still waiting for its place
    /// takes nothing, so it never makes another configuration look as if it did not fit).
    placed: u32,
    failed: Option<String>,
    /// Reached `desired` once since the last change: an environment being replaced does not
    /// take the configuration back to IN_PROGRESS.
    ready_once: bool,
}

/// One configuration's environments.
pub(crate) struct Set {
    function: String,
    qualifier: String,
    key: PoolKey,
    target: InvokeTarget,
    state: Mutex<SetState>,
    wake: Notify,
    closed: AtomicBool,
    /// Its invocation counters (resolved once: they outlive the set, as Prometheus counters).
    metrics: Arc<ProvisionedMetrics>,
}

impl Set {
    fn state(&self) -> MutexGuard<'_, SetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Counts an invocation served by one of its members.
    pub fn served(&self) {
        self.metrics.invocations.inc();
    }
}

/// Membership of an environment in a set; dropped with the environment.
pub(crate) struct Ticket {
    set: Arc<Set>,
}

impl Ticket {
    pub fn set(&self) -> &Arc<Set> {
        &self.set
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut st = self.set.state();
            st.members = st.members.saturating_sub(1);
        }
        self.set.wake.notify_one();
    }
}

/// Every provisioned set, by version key and by configuration.
#[derive(Default)]
pub(crate) struct Provisioned {
    sets: Mutex<HashMap<PoolKey, Arc<Set>>>,
    /// Whether any set exists: invocations skip the lock otherwise.
    any: AtomicBool,
}

impl Provisioned {
    fn sets(&self) -> MutexGuard<'_, HashMap<PoolKey, Arc<Set>>> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle provisioned environment of `key`, if its set has one; `None` also when the
    /// set has none idle, counted then as a spill-over.
    pub fn take(&self, key: &PoolKey) -> Option<Env> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let set = self.sets().get(key).cloned()?;
        let env = set.state().idle.pop();
        if env.is_none() {
            set.metrics.spillover.inc();
        }
        env
    }

    /// Every set's environments now, for `/metrics`.
    pub fn live(&self) -> Vec<ProvisionedLive> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        let sets: Vec<Arc<Set>> = self.sets().values().cloned().collect();
        sets.iter()
            .map(|set| {
                let st = set.state();
                let idle = st.idle.len() as u32;
                ProvisionedLive {
                    key: (
                        set.function.clone(),
                        format!("{}:{}", set.function, set.qualifier),
                        set.key.version.clone(),
                    ),
                    busy: st.members.saturating_sub(idle),
                    allocated: st.members,
                }
            })
            .collect()
    }

    /// Whether `key`'s set has an idle member now.
    pub fn has_idle(&self, key: &PoolKey) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .sets()
                .get(key)
                .is_some_and(|set| !set.state().idle.is_empty())
    }

    /// The keys of sets with an idle member now.
    pub fn idle_keys(&self) -> Vec<PoolKey> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.sets()
            .iter()
            .filter(|(_, set)| !set.state().idle.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Takes back a member after a run; returns it when it must end instead (its set was
    /// released or shrank).
    pub fn put_back(&self, env: Env) -> Option<Env> {
        let Some(set) = env.provisioned_set().cloned() else {
            return Some(env);
        };
        if set.closed() {
            return Some(env);
        }
        let mut st = set.state();
        if st.members > st.desired {
            drop(st);
            return Some(env);
        }
        st.idle.push(env);
        None
    }

    pub fn status(&self, function: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        let set = self
            .sets()
            .values()
            .find(|s| s.function == function && s.qualifier == qualifier)
            .cloned()?;
        let st = set.state();
        let state = if st.failed.is_some() {
            ProvisionedState::Failed
        } else if st.ready_once || st.members >= st.desired {
            ProvisionedState::Ready
        } else {
            ProvisionedState::InProgress
        };
        Some(ProvisionedStatus {
            allocated: st.members,
            available: st.idle.len() as u32,
            state,
            reason: st.failed.clone(),
        })
    }

    /// Places under the node's limit the other sets than `set` hold: their initialized
    /// members and their starts that reserved a place (not those still waiting for one).
    pub fn members_except(&self, set: &Arc<Set>) -> usize {
        let sets: Vec<Arc<Set>> = self.sets().values().cloned().collect();
        sets.iter()
            .filter(|s| !Arc::ptr_eq(s, set))
            .map(|s| {
                let st = s.state();
                (st.members + st.placed) as usize
            })
            .sum()
    }

    /// Every idle member of every set, the sets closed (the server is stopping).
    pub fn drain(&self) -> Vec<Env> {
        let sets: Vec<Arc<Set>> = self.sets().drain().map(|(_, s)| s).collect();
        self.any.store(false, Ordering::Release);
        let mut out = Vec::new();
        for set in sets {
            set.closed.store(true, Ordering::Release);
            out.append(&mut set.state().idle);
            set.wake.notify_one();
        }
        out
    }
}

/// Why a configuration of `desired` environments cannot be allocated on a node that keeps at
/// most `max` environments, `others` of which other configurations hold; `None` when it fits
/// once on-demand environments give way.
fn capacity_failure(max: usize, others: usize, desired: u32) -> Option<String> {
    let desired = desired as usize;
    (others + desired > max).then(|| {
        format!(
            "{CAPACITY_REASON}: the node keeps at most {max} execution environments \
             (--max-environments), {others} of them provisioned for other configurations; \
             {desired} more do not fit"
        )
    })
}

/// Makes `function`'s provisioned sets match `specs`: new ones are started, changed counts
/// applied, and sets no longer wanted (or whose alias moved to another version) released.
pub(crate) fn apply(shared: &Arc<Shared>, function: &str, specs: Vec<ProvisionedSpec>) {
    let mut released = Vec::new();
    let mut created = Vec::new();
    {
        let mut sets = shared.provisioned.sets();
        let wanted: HashMap<PoolKey, &ProvisionedSpec> = specs
            .iter()
            .map(|s| (PoolKey::of(&s.target.record), s))
            .collect();
        sets.retain(|key, set| {
            let keep = set.function != function
                || wanted
                    .get(key)
                    .is_some_and(|s| s.qualifier == set.qualifier);
            if !keep {
                released.push(Arc::clone(set));
            }
            keep
        });
        for (key, spec) in wanted {
            match sets.get(&key) {
                Some(set) => {
                    let mut st = set.state();
                    if st.desired != spec.count || st.generation != spec.generation {
                        st.desired = spec.count;
                        st.generation = spec.generation.clone();
                        st.ready_once = false;
                        st.failed = None;
                    }
                    drop(st);
                    set.wake.notify_one();
                }
                None => {
                    let metrics = shared.starter.metrics.provisioned.get(&(
                        function.to_string(),
                        format!("{function}:{}", spec.qualifier),
                        key.version.clone(),
                    ));
                    let set = Arc::new(Set {
                        function: function.to_string(),
                        qualifier: spec.qualifier.clone(),
                        key: key.clone(),
                        target: spec.target.clone(),
                        state: Mutex::new(SetState {
                            desired: spec.count,
                            generation: spec.generation.clone(),
                            idle: Vec::new(),
                            members: 0,
                            starting: 0,
                            placed: 0,
                            failed: None,
                            ready_once: false,
                        }),
                        wake: Notify::new(),
                        closed: AtomicBool::new(false),
                        metrics,
                    });
                    sets.insert(key, Arc::clone(&set));
                    created.push(set);
                }
            }
        }
        shared
            .provisioned
            .any
            .store(!sets.is_empty(), Ordering::Release);
    }
    for set in released {
        set.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut set.state().idle);
        tracing::info!(function = %set.function, qualifier = %set.qualifier, environments = idle.len(), "provisioned concurrency released");
        for env in idle {
            shared.retire(env, ShutdownReason::Spindown);
        }
        set.wake.notify_one();
    }
    for set in created {
        tracing::info!(function = %set.function, qualifier = %set.qualifier, version = %set.key.version, "provisioning environments");
        let entered = shared.tasks.enter();
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            supervise(shared, set).await;
            drop(entered);
        });
    }
}

/// Keeps a set at its desired size until it is released or the server stops.
async fn supervise(shared: Arc<Shared>, set: Arc<Set>) {
    let mut cancel = shared.cancel.subscribe();
    loop {
        if set.closed() || shared.shutting_down() {
            let idle = std::mem::take(&mut set.state().idle);
            for env in idle {
                shared.retire(env, ShutdownReason::Spindown);
            }
            return;
        }
        // Idle members whose runtime died, and those beyond a smaller count.
        let gone = {
            let mut st = set.state();
            let (dead, alive): (Vec<Env>, Vec<Env>) = std::mem::take(&mut st.idle)
                .into_iter()
                .partition(|e| !e.alive());
            st.idle = alive;
            let excess =
                (st.members.saturating_sub(dead.len() as u32)).saturating_sub(st.desired) as usize;
            let keep = st.idle.len().saturating_sub(excess);
            let extra = st.idle.split_off(keep);
            (dead, extra)
        };
        for env in gone.0 {
            tracing::info!(function = %set.function, stream = %env.stream_name, "a provisioned environment died; replacing it");
            shared.retire(env, ShutdownReason::Failure);
        }
        for env in gone.1 {
            shared.retire(env, ShutdownReason::Spindown);
        }
        let missing = {
            let mut st = set.state();
            let have = st.members + st.starting;
            let n = if st.failed.is_some() {
                0
            } else {
                st.desired.saturating_sub(have)
            };
            st.starting += n;
            n
        };
        for _ in 0..missing {
            let entered = shared.tasks.enter();
            let (shared, set) = (Arc::clone(&shared), Arc::clone(&set));
            tokio::spawn(async move {
                start_one(&shared, &set).await;
                drop(entered);
            });
        }
        tokio::select! {
            () = set.wake.notified() => {}
            () = tokio::time::sleep(CHECK_EVERY) => {}
            _ = cancel.wait_for(|stop| *stop) => {}
        }
    }
}

/// Starts one member through the cold-start gate and adds it to the set (or records why
/// it could not be).
async fn start_one(shared: &Arc<Shared>, set: &Arc<Set>) {
    // Ends the start: `placed` when it held a place, `failed` the configuration's new reason.
    let finish = |placed: bool, failed: Option<String>| {
        let mut st = set.state();
        st.starting = st.starting.saturating_sub(1);
        if placed {
            st.placed = st.placed.saturating_sub(1);
        }
        if failed.is_some() {
            st.failed = failed;
        }
    };
    let Ok(_slot) = shared.cold_starts.acquire().await else {
        finish(false, None);
        return;
    };
    let target = &set.target;
    let job = StartJob {
        rec: Arc::clone(&target.record),
        code_zip: target.code_zip.clone(),
        layers: target.layers.clone(),
        image_layers: target.image_layers.clone(),
        request_id: uuid::Uuid::new_v4().to_string(),
        tail: false,
        provisioned: true,
    };
    let mut cancel = shared.cancel.subscribe();
    // Provisioned environments are capacity guaranteed to their version: at the node's limit
    // on environments, or with the host out of descriptors, memory or processes, idle
    // on-demand (or pre-initialized) ones make room for them. With none idle the start is
    // tried again at the supervisor's next check, unless the limit cannot hold this
    // configuration next to the places the provisioned environments of others hold: then it
    // is FAILED, with the reason, until a new Put.
    let mut evicted = 0;
    let result = loop {
        if set.closed() || shared.shutting_down() {
            finish(false, None);
            return;
        }
        // A ready pre-initialized environment has its place already: none is reserved for
        // it (nor anything retired to make room), unless none fits after all.
        let why = if let Some(place) = shared.starter.place_for(&job.rec) {
            // Counted as holding a place from here (a claim takes over the place of the
            // pre-initialized environment).
            set.state().placed += 1;
            match shared.starter.start(job.clone(), place, &mut cancel).await {
                Err(SchedulerError::NoPlace) => {
                    let mut st = set.state();
                    st.placed = st.placed.saturating_sub(1);
                    None
                }
                Err(e) if e.is_host_exhausted() && !shared.shutting_down() => {
                    // The place is free again (the start failed).
                    let mut st = set.state();
                    st.placed = st.placed.saturating_sub(1);
                    drop(st);
                    Some(e.to_string())
                }
                other => break other,
            }
        } else {
            None
        };
        let need = why
            .as_deref()
            .unwrap_or("a provisioned environment needs its place");
        if evicted < crate::invocation::MAX_EVICTIONS_PER_START
            && shared.make_room(&set.function, need).await
        {
            evicted += 1;
            continue;
        }
        if let Some(why) = why {
            // Not the function's fault nor a lack of capacity of the configuration: the host
            // is short now, and the start is tried again at the next check.
            tracing::debug!(function = %set.function, qualifier = %set.qualifier, why, "the host cannot start a provisioned environment now: tried again later");
            finish(false, None);
            return;
        }
        let desired = set.state().desired;
        let reason = shared
            .config()
            .max_environments
            .and_then(|max| capacity_failure(max, shared.provisioned.members_except(set), desired));
        match &reason {
            Some(r) => {
                tracing::warn!(function = %set.function, qualifier = %set.qualifier, reason = %r, "provisioned concurrency cannot be allocated")
            }
            None => {
                tracing::debug!(function = %set.function, qualifier = %set.qualifier, "no room for a provisioned environment yet: tried again later")
            }
        }
        finish(false, reason);
        return;
    };
    match result {
        Ok(Ok(mut env)) => {
            let mut st = set.state();
            st.starting = st.starting.saturating_sub(1);
            st.placed = st.placed.saturating_sub(1);
            if set.closed() || st.members >= st.desired {
                drop(st);
                shared.retire(env, ShutdownReason::Spindown);
                return;
            }
            st.members += 1;
            env.make_provisioned(Ticket {
                set: Arc::clone(set),
            });
            st.idle.push(env);
            if st.members >= st.desired {
                st.ready_once = true;
            }
        }
        Ok(Err(failure)) => {
            failure.log.line(&format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {}",
                failure.duration.as_secs_f64() * 1000.0,
                failure.error.as_str()
            ));
            failure.log.flush();
            tracing::warn!(function = %set.function, qualifier = %set.qualifier, error = failure.error.as_str(), "a provisioned environment failed its Init");
            finish(true, Some(INIT_FAILURE_REASON.to_string()));
        }
        Err(e) => {
            if !shared.shutting_down() {
                tracing::warn!(function = %set.function, error = %e, "could not start a provisioned environment");
                finish(true, Some(INIT_FAILURE_REASON.to_string()));
            } else {
                finish(true, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_fails_only_when_the_limit_cannot_hold_it() {
        // Room once on-demand environments give way: tried again, not failed.
        assert_eq!(capacity_failure(4, 0, 4), None);
        assert_eq!(capacity_failure(10, 6, 4), None);
        // Other configurations' environments are not taken from them.
        let reason = capacity_failure(10, 7, 4).expect("does not fit");
        assert!(reason.starts_with(CAPACITY_REASON), "{reason}");
        assert!(reason.contains("at most 10"), "{reason}");
        assert!(capacity_failure(2, 0, 3).is_some());
    }

    fn set(function: &str, desired: u32, members: u32, starting: u32, placed: u32) -> Arc<Set> {
        use kindling_model::function::{CodeInfo, FunctionSpec, VersionRecord};
        let record = Arc::new(VersionRecord {
            function_name: function.into(),
            version: Some(1),
            spec: FunctionSpec::lambda_defaults(function),
            code: CodeInfo {
                sha256: String::new(),
                size: 0,
                unzipped_size: 0,
                blob: String::new(),
                image: None,
            },
            revision_id: "r".into(),
            last_modified_ms: 0,
        });
        Arc::new(Set {
            function: function.into(),
            qualifier: "1".into(),
            key: PoolKey::of(&record),
            target: InvokeTarget {
                record,
                invoked_arn: String::new(),
                qualifier: None,
                code_zip: Default::default(),
                layers: Vec::new(),
                image_layers: Vec::new(),
                reserved_concurrency: None,
                unreserved_pool: 0,
            },
            state: Mutex::new(SetState {
                desired,
                generation: String::new(),
                idle: Vec::new(),
                members,
                starting,
                placed,
                failed: None,
                ready_once: false,
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            metrics: Arc::default(),
        })
    }

    #[test]
    fn starts_waiting_for_a_place_do_not_count_against_other_configurations() {
        // --max-environments 4, A=2 and B=3 put at once: B holds 2 places and its third start
        // waits for one, as does A's second start (A holds 1). A's start that lost the race
        // must see the 2 places B holds, not B's 3 wanted: 2 + 2 fit in 4.
        let provisioned = Provisioned::default();
        let a = set("a", 2, 0, 2, 1);
        let b = set("b", 3, 1, 2, 1);
        {
            let mut sets = provisioned.sets();
            sets.insert(a.key.clone(), Arc::clone(&a));
            sets.insert(b.key.clone(), Arc::clone(&b));
        }
        assert_eq!(provisioned.members_except(&a), 2);
        assert_eq!(capacity_failure(4, provisioned.members_except(&a), 2), None);
        // B's last start, at the same limit, sees A's 1 place and its own 3 do fit too.
        assert_eq!(provisioned.members_except(&b), 1);
        assert_eq!(capacity_failure(4, provisioned.members_except(&b), 3), None);
        // Once A holds its 2, B's third truly does not fit.
        a.state().placed = 2;
        assert!(capacity_failure(4, provisioned.members_except(&b), 3).is_some());
    }
}
