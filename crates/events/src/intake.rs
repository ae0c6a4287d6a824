//! The intake: accepted events are written by one thread that commits everything waiting in a
//! single transaction (group commit), so durability costs one fsync per batch, not per event.

use std::sync::Arc;
use std::sync::mpsc;

use kindling_model::events::AsyncEvent;
use kindling_store::StoreError;
use tokio::sync::oneshot;

use crate::Shared;

/// Why an event could not be accepted. Cheap to clone: one store failure answers every
/// event of its batch, each keeping the same cause as its source.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    /// The store refused or failed the write.
    #[error("could not store the event")]
    Store(#[source] Arc<StoreError>),
    /// The intake thread could not be started.
    #[error("could not start the event intake thread")]
    Spawn(#[source] Arc<std::io::Error>),
    /// The intake is gone (the server is stopping).
    #[error("the event intake has stopped")]
    Stopped,
}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        Self::Store(Arc::new(e))
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
            .map_err(|e| IntakeError::Spawn(Arc::new(e)))?;
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
        let started = std::time::Instant::now();
        let result = shared
            .store
            .enqueue_events(&events)
            .map_err(IntakeError::from);
        shared.metrics.store_call("enqueue", started.elapsed());
        if let Err(e) = &result {
            tracing::error!(
                error = e as &dyn std::error::Error,
                events = events.len(),
                "could not store accepted events"
            );
        }
        for (_, done) in batch {
            let _ = done.send(result.clone());
        }
        shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use kindling_store::Entity;

    use super::*;

    #[test]
    fn a_store_failure_stays_the_source_of_every_copy() {
        let e = IntakeError::from(StoreError::NotFound(Entity::Function));
        let copy = e.clone();
        for e in [e, copy] {
            let source = e.source().expect("the store error is the source");
            let store = source.downcast_ref::<Arc<StoreError>>().map(|e| &**e);
            assert!(matches!(
                store,
                Some(StoreError::NotFound(Entity::Function))
            ));
            assert_eq!(source.to_string(), "function not found");
        }
    }
}
