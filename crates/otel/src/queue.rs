//! A bounded queue between the invoke path (many producers, never waiting) and one batching
//! task: a `VecDeque` behind a mutex held for a push (no per-item channel bookkeeping: no
//! semaphore permit, no block list, no receiver wake-up), and a `Notify` that wakes the task
//! only for the first item of a batch. The task takes a whole batch under one lock (the whole
//! queue, swapped with its own empty buffer, when it all fits).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// See the module's documentation.
pub struct BatchQueue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    /// A batch's first item was pushed, or the queue was closed.
    arrived: Notify,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> BatchQueue<T> {
    /// Holds at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                closed: false,
            }),
            capacity,
            arrived: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, or gives it back when the queue is full or closed. Never waits (beyond
    /// another push's or a take's short hold of the lock).
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut inner = self.lock();
        if inner.closed || inner.items.len() >= self.capacity {
            return Err(item);
        }
        inner.items.push_back(item);
        let first = inner.items.len() == 1;
        drop(inner);
        if first {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// Waits until an item is queued: true, or false once the queue is closed and empty.
    pub async fn wait(&self) -> bool {
        loop {
            {
                let inner = self.lock();
                if !inner.items.is_empty() {
                    return true;
                }
                if inner.closed {
                    return false;
                }
            }
            // A push between the check and here left a permit: this returns at once.
            self.arrived.notified().await;
        }
    }

    /// Moves the queue's first items into `out` (which the caller left empty), as long as
    /// `fits` says the next one still belongs to the batch (it is asked once per item, in
    /// order; the first item is always taken). Returns how many were taken.
    pub fn take(&self, out: &mut VecDeque<T>, mut fits: impl FnMut(&T) -> bool) -> usize {
        let mut inner = self.lock();
        let n = inner
            .items
            .iter()
            .enumerate()
            .take_while(|&(i, item)| fits(item) || i == 0)
            .count();
        if n == inner.items.len() && out.is_empty() {
            std::mem::swap(&mut inner.items, out);
        } else {
            out.extend(inner.items.drain(..n));
        }
        n
    }

    /// No more items are accepted; the task takes what is queued, then [`Self::wait`] says
    /// false.
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn bounded_and_in_order() {
        let q = BatchQueue::new(3);
        for n in 0..3 {
            assert!(q.push(n).is_ok());
        }
        assert_eq!(q.push(3), Err(3));
        let mut out = VecDeque::new();
        assert_eq!(q.take(&mut out, |_| true), 3);
        assert_eq!(out, [0, 1, 2]);
        assert!(q.push(4).is_ok());
    }

    #[test]
    fn a_batch_stops_where_fits_says_and_the_first_item_always_goes() {
        let q = BatchQueue::new(10);
        for n in [5, 1, 1, 4, 1] {
            q.push(n).unwrap();
        }
        let mut out = VecDeque::new();
        // At most 3 per batch by weight, but an item heavier than that still goes alone.
        let batch = |out: &mut VecDeque<u32>| {
            let mut weight = 0;
            q.take(out, |&w| {
                weight += w;
                weight <= 3
            })
        };
        assert_eq!(batch(&mut out), 1);
        assert_eq!(out.drain(..).collect::<Vec<_>>(), [5]);
        assert_eq!(batch(&mut out), 2);
        assert_eq!(out.drain(..).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(batch(&mut out), 1);
        assert_eq!(batch(&mut out), 1);
        assert_eq!(out.drain(..).collect::<Vec<_>>(), [4, 1]);
    }

    #[tokio::test]
    async fn the_task_wakes_for_a_first_item_and_ends_after_close() {
        let q = Arc::new(BatchQueue::new(10));
        let task = tokio::spawn({
            let q = Arc::clone(&q);
            async move {
                let mut got = Vec::new();
                let mut out = VecDeque::new();
                while q.wait().await {
                    q.take(&mut out, |_| true);
                    got.extend(out.drain(..));
                }
                got
            }
        });
        for n in 0..5 {
            q.push(n).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        q.push(5).unwrap();
        q.close();
        assert_eq!(q.push(6), Err(6));
        let got = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    }
}
