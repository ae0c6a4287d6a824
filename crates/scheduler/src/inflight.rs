//! Counts the scheduler's detached work (invocations, environments being retired), so that a
//! shutdown can wait for it.
//!
//! Every invocation enters and leaves once, so the count is one atomic add each way; the
//! shutdown's waiter is woken only when the count drops to zero (a `watch` channel woke its
//! eight waiter lists on every change).

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Counter {
    count: AtomicUsize,
    /// Tasks ever entered (never decreases): how much work started.
    entered: AtomicU64,
    /// Notified each time `count` drops to zero.
    idle: Notify,
}

/// A counter of running tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    inner: Arc<Counter>,
}

/// One counted task; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct Entered {
    inner: Arc<Counter>,
}

impl InFlight {
    pub fn enter(&self) -> Entered {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        self.inner.entered.fetch_add(1, Ordering::Relaxed);
        Entered {
            inner: Arc::clone(&self.inner),
        }
    }

    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// How many tasks were ever entered.
    pub fn entered(&self) -> u64 {
        self.inner.entered.load(Ordering::Relaxed)
    }

    /// Resolves once no task is counted.
    pub async fn idle(&self) {
        loop {
            let mut notified = pin!(self.inner.idle.notified());
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_every_task() {
        let tasks = InFlight::default();
        tasks.idle().await;
        let a = tasks.enter();
        let b = tasks.enter();
        assert_eq!(tasks.count(), 2);
        let waiter = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        waiter.await.unwrap();
        assert_eq!(tasks.count(), 0);
    }
}
