//! The intake: accepted events are written by one thread that commits everything waiting in a
//! single transaction (group commit), so durability costs one fsync per batch, not per event.

use std::sync::Arc;
use std::sync::mpsc;

use kindling_model::events::AsyncEvent;
use kindling_store::StoreError;
use tokio::sync::oneshot;

use crate::Shared;

/// Why an event could not be accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    #[error("could not store the event: {0}")]
    Store(String),
    #[error("the event intake has stopped")]
    Stopped,
}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

type Job = (AsyncEvent, oneshot::Sender<Result<(), IntakeError>>);

/// Handle to the intake thread.
#[derive(Clone)]
pub(crate) struct Intake {
    tx: mpsc::Sender<Job>,
}

impl Intake {
    pub fn start(shared: Arc<Shared>) -> Result<Self, IntakeError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kindling-intake".into())
            .spawn(move || run(&shared, &rx))
            .map_err(|e| IntakeError::Store(e.to_string()))?;
        Ok(Self { tx })
    }

    /// Queues one event and waits until it is committed.
    pub async fn submit(&self, event: AsyncEvent) -> Result<(), IntakeError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((event, done))
            .map_err(|_| IntakeError::Stopped)?;
        wait.await.map_err(|_| IntakeError::Stopped)?
    }
}

/// Writes batches until every sender is gone.
fn run(shared: &Shared, rx: &mpsc::Receiver<Job>) {
    let max = shared.config.batch_max.max(1);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let events: Vec<AsyncEvent> = batch.iter().map(|(e, _)| e.clone()).collect();
        let result = shared
            .store
            .enqueue_events(&events)
            .map_err(IntakeError::from);
        if let Err(e) = &result {
            tracing::error!(error = %e, events = events.len(), "could not store accepted events");
        }
        for (_, done) in batch {
            let _ = done.send(result.clone());
        }
        shared.wake.notify_one();
    }
}
