//! Freezing an idle environment where it sits in the warm pool.
//!
//! The reaper freezes environments idle for a while without taking them out of the pool, so an
//! invocation arriving meanwhile still finds them. Whoever takes an environment marks it busy
//! (synchronously, under the pool's lock) and thaws it before use; a freeze already under way
//! finishes first (the two are serialized by an async lock), and a freeze that starts after the
//! environment was taken does nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What can be frozen: an environment's process tree (the sandbox's cgroup freezer).
pub(crate) trait Freeze: Send + Sync + 'static {
    fn freeze(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    fn thaw(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

impl Freeze for kindling_sandbox::Environment {
    fn freeze(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            if !self.can_freeze() {
                return Err("no freezer".into());
            }
            kindling_sandbox::Environment::freeze(self)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn thaw(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            kindling_sandbox::Environment::thaw(self)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// One environment's freeze state, shared by the environment and the reaper.
pub(crate) struct Freezer {
    target: Arc<dyn Freeze>,
    /// Serializes freeze and thaw.
    busy: tokio::sync::Mutex<()>,
    frozen: AtomicBool,
    /// In the pool, not taken by an invocation.
    idle: AtomicBool,
    /// Times it was taken: a freeze decided before the latest use is called off.
    uses: AtomicU64,
    /// Freezing is not possible (Process mode, no freezer): the reaper stops trying.
    unsupported: AtomicBool,
}

impl Freezer {
    pub fn new(target: Arc<dyn Freeze>) -> Self {
        Self {
            target,
            busy: tokio::sync::Mutex::new(()),
            frozen: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            uses: AtomicU64::new(0),
            unsupported: AtomicBool::new(false),
        }
    }

    /// Marks the environment idle in the pool (true) or taken (false). Called under the pool's
    /// lock, so a freeze that starts after `set_idle(false)` sees it.
    pub fn set_idle(&self, idle: bool) {
        if !idle {
            self.uses.fetch_add(1, Ordering::AcqRel);
        }
        self.idle.store(idle, Ordering::Release);
    }

    /// Identifies the current idle period, for [`freeze_if_idle`](Self::freeze_if_idle).
    pub fn idle_period(&self) -> u64 {
        self.uses.load(Ordering::Acquire)
    }

    /// Whether the reaper should try to freeze it.
    pub fn wants_freeze(&self) -> bool {
        !self.frozen.load(Ordering::Acquire) && !self.unsupported.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Freezes the environment if it is still in the idle period `period` (not taken since)
    /// and not frozen.
    pub async fn freeze_if_idle(&self, period: u64) {
        let _guard = self.busy.lock().await;
        if !self.idle.load(Ordering::Acquire)
            || self.uses.load(Ordering::Acquire) != period
            || !self.wants_freeze()
        {
            return;
        }
        match self.target.freeze().await {
            Ok(()) => self.frozen.store(true, Ordering::Release),
            Err(e) => {
                // No freezer, or a freeze that did not complete: leave it running for good
                // (a half-done freeze would hold the runtime until the next thaw).
                self.unsupported.store(true, Ordering::Release);
                tracing::debug!(error = %e, "environment not frozen");
                let _ = self.target.thaw().await;
            }
        }
    }

    /// Resumes the environment if frozen (waiting for a freeze under way to finish first).
    pub async fn thaw(&self) {
        let _guard = self.busy.lock().await;
        if !self.frozen.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.target.thaw().await {
            tracing::warn!(error = %e, "could not thaw an environment");
        }
        self.frozen.store(false, Ordering::Release);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use tokio::sync::Notify;

    use super::*;

    /// A freezable stand-in: records calls; `gate` (when set) holds a freeze until notified.
    #[derive(Default)]
    pub struct Fake {
        pub log: Mutex<Vec<&'static str>>,
        pub gate: Option<Arc<Notify>>,
        pub started: Notify,
    }

    impl Freeze for Fake {
        fn freeze(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            Box::pin(async move {
                self.log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push("freeze-start");
                self.started.notify_one();
                if let Some(gate) = &self.gate {
                    gate.notified().await;
                }
                self.log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push("frozen");
                Ok(())
            })
        }

        fn thaw(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            Box::pin(async move {
                self.log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push("thawed");
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn taking_during_a_freeze_waits_for_it_then_thaws() {
        let gate = Arc::new(Notify::new());
        let fake = Arc::new(Fake {
            gate: Some(Arc::clone(&gate)),
            ..Fake::default()
        });
        let freezer = Arc::new(Freezer::new(fake.clone()));
        freezer.set_idle(true);
        let period = freezer.idle_period();
        let reaper = tokio::spawn({
            let f = Arc::clone(&freezer);
            async move { f.freeze_if_idle(period).await }
        });
        fake.started.notified().await;
        // An invocation takes it mid-freeze.
        freezer.set_idle(false);
        let thaw = tokio::spawn({
            let f = Arc::clone(&freezer);
            async move { f.thaw().await }
        });
        tokio::task::yield_now().await;
        assert!(!thaw.is_finished(), "thaw waits for the freeze under way");
        gate.notify_one();
        reaper.await.unwrap();
        thaw.await.unwrap();
        assert!(!freezer.is_frozen());
        assert_eq!(
            *fake.log.lock().unwrap(),
            ["freeze-start", "frozen", "thawed"]
        );
    }

    #[tokio::test]
    async fn a_taken_environment_is_not_frozen() {
        let fake = Arc::new(Fake::default());
        let freezer = Freezer::new(fake.clone());
        freezer.set_idle(true);
        let period = freezer.idle_period();
        freezer.set_idle(false);
        freezer.freeze_if_idle(period).await;
        freezer.thaw().await;
        assert!(fake.log.lock().unwrap().is_empty());
        // Taken and returned since the reaper chose it: not frozen either.
        freezer.set_idle(true);
        freezer.freeze_if_idle(period).await;
        assert!(fake.log.lock().unwrap().is_empty());
        freezer.freeze_if_idle(freezer.idle_period()).await;
        assert!(freezer.is_frozen() && !freezer.wants_freeze());
        freezer.thaw().await;
        assert_eq!(
            *fake.log.lock().unwrap(),
            ["freeze-start", "frozen", "thawed"]
        );
    }
}
