//! The message writer: one thread that takes every message operation waiting and commits
//! them in ONE transaction (group commit). A batch holding a send or a delivery is fsync'd
//! (durable writer) before any of its callers is answered; a batch of claims, deletes and
//! visibility changes only reaches the WAL (relaxed writer), which survives a crash of the
//! process.

use std::sync::Arc;
use std::sync::mpsc;

use kindling_store::QueueStore;
use kindling_store::messaging::{QueueOp, QueueOpOutput};
use tokio::sync::oneshot;

use crate::error::QueueError;

type Reply = oneshot::Sender<Result<QueueOpOutput, QueueError>>;
type Job = (QueueOp, Reply);

/// Called after each commit with the operations and their outputs (wake-ups).
pub(crate) type AfterCommit =
    Arc<dyn Fn(&[QueueOp], &[Result<QueueOpOutput, QueueError>]) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    pub fn start(
        store: Arc<dyn QueueStore>,
        batch_max: usize,
        after: AfterCommit,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kindling-queues".into())
            .spawn(move || run(&*store, &rx, batch_max.max(1), &after))?;
        Ok(Self { tx })
    }

    /// Commits one operation (with whatever else is waiting) and returns its output.
    pub async fn submit(&self, op: QueueOp) -> Result<QueueOpOutput, QueueError> {
        let (done, wait) = oneshot::channel();
        self.tx.send((op, done)).map_err(|_| QueueError::Stopped)?;
        wait.await.map_err(|_| QueueError::Stopped)?
    }

    /// Commits one operation from a plain thread (blocking).
    pub fn submit_blocking(&self, op: QueueOp) -> Result<QueueOpOutput, QueueError> {
        let (done, wait) = oneshot::channel();
        self.tx.send((op, done)).map_err(|_| QueueError::Stopped)?;
        wait.blocking_recv().map_err(|_| QueueError::Stopped)?
    }
}

fn run(store: &dyn QueueStore, rx: &mpsc::Receiver<Job>, batch_max: usize, after: &AfterCommit) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first.0];
        let mut replies = vec![first.1];
        while ops.len() < batch_max {
            match rx.try_recv() {
                Ok((op, reply)) => {
                    ops.push(op);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let durable = ops.iter().any(QueueOp::needs_durability);
        let results: Vec<Result<QueueOpOutput, QueueError>> =
            match store.apply_queue_ops(&ops, durable) {
                Ok(outs) => outs
                    .into_iter()
                    .map(|r| r.map_err(QueueError::from))
                    .collect(),
                Err(e) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        operations = ops.len(),
                        "could not commit queue operations"
                    );
                    let e = QueueError::from(e);
                    ops.iter().map(|_| Err(e.clone())).collect()
                }
            };
        after(&ops, &results);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
