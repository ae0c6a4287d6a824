//! The message writer: one thread that takes every message operation waiting and commits
//! them in ONE transaction (group commit), and a syncer thread behind it.
//!
//! Every batch is committed to the WAL (relaxed writer: it survives a crash of the process) and
//! its receivers are woken at once. A batch holding a send or a delivery then goes to the syncer,
//! which fsyncs the WAL (one fsync for every batch waiting) before any of its callers is
//! answered; meanwhile the writer goes on with the next batch, so a long-polling receiver claims
//! a new message while the fsync that acknowledges its send is still under way. A batch of
//! claims, deletes and visibility changes is answered without an fsync.
//!
//! Durability is that of a durable commit: a sender hears 200 only after the fsync; a power loss
//! before it can drop the send (never acknowledged) together with anything committed after it
//! (the WAL keeps a prefix of its commits).

use std::sync::Arc;
use std::sync::mpsc;

use kindling_store::messaging::{QueueOp, QueueOpOutput};
use kindling_store::{QueueStore, StoreError};
use tokio::sync::oneshot;

use crate::error::QueueError;

type Reply = oneshot::Sender<Result<QueueOpOutput, QueueError>>;
type Job = (QueueOp, Reply);
/// A committed batch waiting for its fsync: its callers and their results.
type Pending = (Vec<Reply>, Vec<Result<QueueOpOutput, QueueError>>);

/// Called after each commit with the operations and their outputs (wake-ups).
pub(crate) type AfterCommit =
    Arc<dyn Fn(&[QueueOp], &[Result<QueueOpOutput, QueueError>]) + Send + Sync>;

/// What the writer needs of the store.
pub(crate) trait Log: Send + Sync + 'static {
    /// Commits `ops` in one transaction, without waiting for the disk.
    fn apply(
        &self,
        ops: &[QueueOp],
    ) -> kindling_store::Result<Vec<Result<QueueOpOutput, StoreError>>>;
    /// Makes every commit so far durable.
    fn sync(&self) -> kindling_store::Result<()>;
}

struct StoreLog(Arc<dyn QueueStore>);

impl Log for StoreLog {
    fn apply(
        &self,
        ops: &[QueueOp],
    ) -> kindling_store::Result<Vec<Result<QueueOpOutput, StoreError>>> {
        self.0.apply_queue_ops(ops, false)
    }

    fn sync(&self) -> kindling_store::Result<()> {
        self.0.sync_queue_ops()
    }
}

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
        Self::start_with(Arc::new(StoreLog(store)), batch_max, after)
    }

    fn start_with(
        store: Arc<dyn Log>,
        batch_max: usize,
        after: AfterCommit,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (sync_tx, sync_rx) = mpsc::channel::<Pending>();
        let syncing = Arc::clone(&store);
        std::thread::Builder::new()
            .name("kindling-qsync".into())
            .spawn(move || sync(&*syncing, &sync_rx))?;
        std::thread::Builder::new()
            .name("kindling-queues".into())
            .spawn(move || run(&*store, &rx, batch_max.max(1), &after, &sync_tx))?;
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

fn run(
    store: &dyn Log,
    rx: &mpsc::Receiver<Job>,
    batch_max: usize,
    after: &AfterCommit,
    syncer: &mpsc::Sender<Pending>,
) {
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
        let results: Vec<Result<QueueOpOutput, QueueError>> = match store.apply(&ops) {
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
        if durable {
            if let Err(mpsc::SendError((replies, _))) = syncer.send((replies, results)) {
                for reply in replies {
                    let _ = reply.send(Err(QueueError::Stopped));
                }
            }
        } else {
            answer(replies, results);
        }
    }
}

fn answer(replies: Vec<Reply>, results: Vec<Result<QueueOpOutput, QueueError>>) {
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

/// The syncer: one fsync for every committed batch waiting, then their answers.
fn sync(store: &dyn Log, rx: &mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        match store.sync() {
            Ok(()) => {
                for (replies, results) in batches {
                    answer(replies, results);
                }
            }
            Err(e) => {
                // Committed but maybe not on disk: the senders hear an error (and may send
                // again: at-least-once).
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "could not fsync queue operations"
                );
                let e = QueueError::from(e);
                for (replies, _) in batches {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Answers every operation at once; `sync` waits until the test lets it go.
    struct Gated {
        gate: Mutex<mpsc::Receiver<()>>,
        syncs: Mutex<usize>,
    }

    impl Log for Gated {
        fn apply(
            &self,
            ops: &[QueueOp],
        ) -> kindling_store::Result<Vec<Result<QueueOpOutput, StoreError>>> {
            Ok(ops
                .iter()
                .map(|op| {
                    Ok(match op {
                        QueueOp::Send { .. } => QueueOpOutput::Sent(Vec::new()),
                        _ => QueueOpOutput::Deleted(Vec::new()),
                    })
                })
                .collect())
        }

        fn sync(&self) -> kindling_store::Result<()> {
            let _ = self.gate.lock().expect("gate").recv();
            *self.syncs.lock().expect("syncs") += 1;
            Ok(())
        }
    }

    fn send() -> QueueOp {
        QueueOp::Send {
            queue_id: 1,
            messages: Vec::new(),
        }
    }

    #[tokio::test]
    async fn sends_wake_receivers_before_their_fsync_and_are_answered_after_it() {
        let (open, gate) = mpsc::channel();
        let log = Arc::new(Gated {
            gate: Mutex::new(gate),
            syncs: Mutex::new(0),
        });
        let (woken_tx, mut woken) = tokio::sync::mpsc::unbounded_channel();
        let after: AfterCommit = Arc::new(move |ops: &[QueueOp], _: &[_]| {
            if ops.iter().any(QueueOp::needs_durability) {
                let _ = woken_tx.send(());
            }
        });
        let c =
            Committer::start_with(Arc::clone(&log) as Arc<dyn Log>, 8, after).expect("committer");
        let sender = {
            let c = c.clone();
            tokio::spawn(async move { c.submit(send()).await })
        };
        // Committed: receivers are woken while the fsync has not happened.
        tokio::time::timeout(Duration::from_secs(10), woken.recv())
            .await
            .expect("receivers woken before the fsync");
        // A claim or delete meanwhile is answered without waiting for that fsync.
        let delete = tokio::time::timeout(
            Duration::from_secs(10),
            c.submit(QueueOp::Delete {
                queue_id: 1,
                entries: Vec::new(),
            }),
        )
        .await
        .expect("a delete is not held behind the fsync");
        assert!(matches!(delete, Ok(QueueOpOutput::Deleted(_))));
        // The sender hears nothing before the fsync.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !sender.is_finished(),
            "a send was answered before its fsync"
        );
        assert_eq!(*log.syncs.lock().expect("syncs"), 0);
        open.send(()).expect("open the gate");
        let sent = tokio::time::timeout(Duration::from_secs(10), sender)
            .await
            .expect("answered after the fsync")
            .expect("task");
        assert!(matches!(sent, Ok(QueueOpOutput::Sent(_))));
        assert_eq!(*log.syncs.lock().expect("syncs"), 1);
    }
}
