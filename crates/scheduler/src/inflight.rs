//! Counts the scheduler's detached work (invocations, environments being retired), so that a
//! shutdown can wait for it.

use std::sync::Arc;

use tokio::sync::watch;

/// A counter of running tasks.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

/// One counted task; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct Entered {
    count: Arc<watch::Sender<usize>>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            count: Arc::new(watch::channel(0).0),
        }
    }
}

impl InFlight {
    pub fn enter(&self) -> Entered {
        self.count.send_modify(|c| *c += 1);
        Entered {
            count: Arc::clone(&self.count),
        }
    }

    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Resolves once no task is counted.
    pub async fn idle(&self) {
        let mut rx = self.count.subscribe();
        let _ = rx.wait_for(|c| *c == 0).await;
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.count.send_modify(|c| *c = c.saturating_sub(1));
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
