//! An invocation runs on its caller's task, and is detached into a task of its own only if the
//! caller goes away first.
//!
//! Spawning every invocation (and awaiting its `JoinHandle`) cost a task allocation, a
//! scheduling round and a wake-up of the caller per warm invoke, and let the two halves run on
//! different worker threads. Polling the invocation in place keeps the hand-over to the
//! runtime's `/next` and the answer's way back on the caller's thread; the promise that a
//! dropped caller does not cancel the invocation is kept by [`Detachable`]'s `Drop`, which
//! spawns what is left of it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The invocation panicked (the panic hook has logged it); the caller answers 500.
#[derive(Debug, thiserror::Error)]
#[error("the invocation panicked")]
pub(crate) struct Panicked;

/// `fut`, polled by whoever awaits this; if this is dropped before `fut` finished, `fut` goes
/// on in a spawned task (its output is dropped).
pub(crate) struct Detachable<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    fut: Option<Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> Detachable<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(fut: F) -> Self {
        Self {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F: Future + Send + 'static> Future for Detachable<F>
where
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.fut.as_mut() else {
            // Polled again after it finished: a caller bug, answered rather than panicked on.
            return Poll::Ready(Err(Panicked));
        };
        // As a spawned task did, a panic ends this invocation only (its environment is
        // dropped, which kills it), not the caller's connection.
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                self.fut = None;
                Poll::Ready(Ok(out))
            }
            Err(_) => {
                self.fut = None;
                Poll::Ready(Err(Panicked))
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for Detachable<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(fut);
            }
            // No runtime left to run it on (the process is ending): it is dropped, as a
            // spawned task would have been.
            Err(_) => tracing::debug!("invocation dropped with its runtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{Notify, oneshot};

    use super::*;

    #[tokio::test]
    async fn runs_in_place_and_gives_the_output() {
        let out = Detachable::new(async { 41 + 1 }).await;
        assert_eq!(out.ok(), Some(42));
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_cancel_it() {
        let (done_tx, done_rx) = oneshot::channel();
        let go = Arc::new(Notify::new());
        let go2 = Arc::clone(&go);
        let detachable = Detachable::new(async move {
            go2.notified().await;
            let _ = done_tx.send("finished");
        });
        // Polled once (waiting on `go`), then dropped by a caller that gives up.
        let timed_out = tokio::time::timeout(Duration::from_millis(10), detachable).await;
        assert!(timed_out.is_err());
        go.notify_one();
        let done = tokio::time::timeout(Duration::from_secs(10), done_rx).await;
        assert_eq!(done.ok().and_then(Result::ok), Some("finished"));
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_an_unwind() {
        let out = Detachable::new(async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            1
        })
        .await;
        assert!(out.is_err());
    }
}
