//! The state every invocation shares: the cold-start context, admission, the warm pool, the
//! cold-start gate and the shutdown signals.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kindling_runtime_api::ShutdownReason;
use tokio::sync::{Semaphore, watch};

use crate::activity::Activity;
use crate::concurrency::Concurrency;
use crate::config::SchedulerConfig;
use crate::env::Env;
use crate::inflight::InFlight;
use crate::pool::{Pool, Pooled};
use crate::provisioned::Provisioned;
use crate::start::Starter;

/// How long a start waits for a retired environment's place to be free.
const ROOM_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) struct Shared {
    pub starter: Arc<Starter>,
    pub concurrency: Arc<Concurrency>,
    pool: Mutex<Pool<Env>>,
    /// The cold-start gate: one permit per environment being started.
    pub cold_starts: Semaphore,
    shutting_down: AtomicBool,
    /// Set when in-flight invocations must be abandoned (the server's shutdown grace ran out).
    pub cancel: watch::Sender<bool>,
    /// Detached invocations and retirements, for the shutdown to wait on.
    pub tasks: InFlight,
    /// Provisioned concurrency's environments, served before the pool's.
    pub provisioned: Provisioned,
    /// Recent invocations and per-function charts for the console.
    pub activity: Activity,
}

impl Shared {
    pub fn new(starter: Starter) -> Self {
        let gate = starter.config.max_concurrent_cold_starts.max(1);
        Self {
            starter: Arc::new(starter),
            concurrency: Arc::new(Concurrency::default()),
            pool: Mutex::new(Pool::default()),
            cold_starts: Semaphore::new(gate),
            shutting_down: AtomicBool::new(false),
            cancel: watch::channel(false).0,
            tasks: InFlight::default(),
            provisioned: Provisioned::default(),
            activity: Activity::default(),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.starter.config
    }

    pub fn pool(&self) -> MutexGuard<'_, Pool<Env>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn pool_mutex(&self) -> &Mutex<Pool<Env>> {
        &self.pool
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Ends an environment in a task of its own (counted, so a shutdown waits for it).
    pub fn retire(&self, env: Env, reason: ShutdownReason) {
        let entered = self.tasks.enter();
        tokio::spawn(async move {
            env.retire(reason).await;
            drop(entered);
        });
    }

    /// Makes room for one more environment (the node is at its limit on environments, or out
    /// of descriptors, memory or processes): retires the on-demand environment idle the
    /// longest (any function's), as Lambda reclaims idle environments, or else one of the
    /// pre-initialized environments waiting for a function, and waits (briefly) until its
    /// place is free, so that the next try does not retire another one for nothing. False
    /// when none is idle. (Provisioned environments are never taken: they are capacity
    /// guaranteed to their version.)
    pub async fn make_room(&self, function: &str, why: &str) -> bool {
        let sandbox = &self.starter.sandbox;
        let before = sandbox.live_environments();
        let oldest = self.pool().take_least_recent();
        if let Some(env) = oldest {
            tracing::info!(function, retired = %env.key().function, why, "the environment idle the longest is retired to make room");
            env.retire(ShutdownReason::Spindown).await;
        } else if self.starter.prewarm.retire_one().await {
            tracing::info!(
                function,
                why,
                "a pre-initialized environment is retired to make room"
            );
        } else {
            return false;
        }
        // Its descriptors and its place are free once its state is dropped (the monitor lets
        // go just after the tree's end).
        sandbox.wait_fewer_than(before, ROOM_WAIT).await;
        true
    }

    /// Returns an environment after an invocation: to a waiting invocation or the warm pool,
    /// or, when the server is stopping, to its end.
    pub fn give_back(&self, env: Env) {
        if self.shutting_down() {
            self.retire(env, ShutdownReason::Spindown);
        } else if env.provisioned_set().is_some() {
            // A provisioned environment goes back to its set, or ends (never to the pool).
            if let Some(env) = self.provisioned.put_back(env) {
                self.retire(env, ShutdownReason::Spindown);
            }
        } else {
            self.pool().put(env);
        }
    }
}
