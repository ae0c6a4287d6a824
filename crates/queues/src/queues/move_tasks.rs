//! Message move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask):
//! messages back out of a dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_model::messaging::QueueRecord;
use kindling_store::messaging::MoveMessage;
use serde_json::{Value, json};

use crate::error::QueueError;

use super::{QueueService, blocking, lock, now_ms};

impl QueueService {
    /// StartMessageMoveTask: moves messages out of a dead-letter queue, back to the queues
    /// they came from (or to `destination_arn`), at most `rate` per second.
    pub async fn start_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        rate: Option<i64>,
    ) -> Result<String, QueueError> {
        let source = self.queue_by_arn(source_arn).await.map_err(|_| {
            QueueError::ResourceNotFound(
                "The resource that you specified for the SourceArn parameter doesn't exist.".into(),
            )
        })?;
        if let Some(r) = rate
            && !(1..=500).contains(&r)
        {
            return Err(QueueError::invalid(
                "Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: must be \
                 between 1 and 500.",
            ));
        }
        let (sources, _) = self.dead_letter_sources(&source, None, None).await?;
        if sources.is_empty() {
            return Err(QueueError::invalid(
                "Source queue must be configured as a Dead Letter Queue.",
            ));
        }
        if let Some(d) = destination_arn {
            self.queue_by_arn(d).await.map_err(|_| {
                QueueError::ResourceNotFound(
                    "The resource that you specified for the DestinationArn parameter doesn't \
                     exist."
                        .into(),
                )
            })?;
        }
        let running = self
            .move_task_records(Some(source_arn))
            .await?
            .into_iter()
            .any(|t| t["Status"] == "RUNNING" || t["Status"] == "CANCELLING");
        if running {
            return Err(QueueError::UnsupportedOperation(
                "There is already a task running. Only one active task is allowed for each \
                 source queue arn at a given time."
                    .into(),
            ));
        }
        let handle = STANDARD.encode(
            json!({"taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn})
                .to_string(),
        );
        let store = Arc::clone(&self.inner.store);
        let id = source.id;
        let to_move = blocking(move || store.queue_counts(id, i64::MAX)).await?;
        let to_move = to_move.visible + to_move.in_flight + to_move.delayed;
        let mut record = json!({
            "TaskHandle": handle,
            "Status": "RUNNING",
            "SourceArn": source_arn,
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": to_move,
            "StartedTimestamp": now_ms(),
        });
        if let Some(d) = destination_arn {
            record["DestinationArn"] = json!(d);
        }
        if let Some(r) = rate {
            record["MaxNumberOfMessagesPerSecond"] = json!(r);
        }
        self.save_task(&record).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        lock(&self.inner.moves).insert(handle.clone(), Arc::clone(&cancel));
        let this = self.clone();
        let destination = destination_arn.map(str::to_string);
        tokio::spawn(async move {
            this.run_move_task(source, destination, rate, to_move, record, cancel)
                .await;
        });
        Ok(handle)
    }

    async fn save_task(&self, record: &Value) -> Result<(), QueueError> {
        let store = Arc::clone(&self.inner.store);
        let handle = record["TaskHandle"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let source = record["SourceArn"].as_str().unwrap_or_default().to_string();
        let started = record["StartedTimestamp"].as_i64().unwrap_or_default();
        let text = record.to_string();
        blocking(move || store.put_move_task(&handle, &source, started, &text)).await
    }

    async fn run_move_task(
        &self,
        source: Arc<QueueRecord>,
        destination: Option<String>,
        rate: Option<i64>,
        to_move: u64,
        mut record: Value,
        cancel: Arc<AtomicBool>,
    ) {
        let batch = rate.map_or(100, |r| r.clamp(1, 100)) as usize;
        let mut moved_total: u64 = 0;
        let status = loop {
            if cancel.load(Ordering::Relaxed) {
                break ("CANCELLED", None);
            }
            // At most the messages the source held when the task started: a queue that is its
            // own destination (or its own dead-letter queue) gets every message back at once,
            // and the task would otherwise move the same messages forever.
            let left = to_move.saturating_sub(moved_total);
            if left == 0 {
                break ("COMPLETED", None);
            }
            let batch = batch.min(usize::try_from(left).unwrap_or(usize::MAX));
            let started = tokio::time::Instant::now();
            let store = Arc::clone(&self.inner.store);
            let id = source.id;
            let messages = match blocking(move || store.peek_messages(id, batch)).await {
                Ok(m) => m,
                Err(e) => break ("FAILED", Some(e.to_string())),
            };
            if messages.is_empty() {
                break ("COMPLETED", None);
            }
            let mut moves = Vec::new();
            let mut failure = None;
            for s in messages {
                let target = destination
                    .clone()
                    .or_else(|| s.message.dead_letter_source_arn.clone());
                let Some(target) = target else {
                    failure = Some("A message has no source queue to return to.".to_string());
                    break;
                };
                match self.queue_by_arn(&target).await {
                    Ok(dest) => {
                        let mut m = s.message.clone();
                        m.receive_count = 0;
                        m.first_receive_ms = None;
                        m.dead_letter_source_arn = None;
                        m.visible_ms = now_ms();
                        m.dedup_key = None;
                        moves.push(MoveMessage {
                            seq: s.seq,
                            to_queue_id: dest.id,
                            message: m,
                        });
                    }
                    Err(_) => {
                        failure = Some(format!("Destination queue {target} does not exist."));
                        break;
                    }
                }
            }
            if !moves.is_empty() {
                let store = Arc::clone(&self.inner.store);
                let id = source.id;
                let dests: HashSet<i64> = moves.iter().map(|m| m.to_queue_id).collect();
                match blocking(move || store.move_messages(id, &moves)).await {
                    Ok(n) => moved_total += n,
                    Err(e) => break ("FAILED", Some(e.to_string())),
                }
                for d in dests {
                    self.waiter(d).notify_waiters();
                }
                record["ApproximateNumberOfMessagesMoved"] = json!(moved_total);
                let _ = self.save_task(&record).await;
            }
            if let Some(f) = failure {
                break ("FAILED", Some(f));
            }
            if let Some(r) = rate {
                let per_batch = Duration::from_secs_f64(batch as f64 / r as f64);
                tokio::time::sleep_until(started + per_batch).await;
            }
        };
        record["Status"] = json!(status.0);
        record["ApproximateNumberOfMessagesMoved"] = json!(moved_total);
        if let Some(reason) = status.1 {
            record["FailureReason"] = json!(reason);
        }
        if let Err(e) = self.save_task(&record).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not record a message move task"
            );
        }
        if let Some(h) = record["TaskHandle"].as_str() {
            lock(&self.inner.moves).remove(h);
        }
    }

    async fn move_task_records(&self, source_arn: Option<&str>) -> Result<Vec<Value>, QueueError> {
        let store = Arc::clone(&self.inner.store);
        let source = source_arn.map(str::to_string);
        let texts = blocking(move || store.move_tasks(source.as_deref())).await?;
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// ListMessageMoveTasks: the newest `max` (1-10, default 1) tasks of a source.
    pub async fn list_move_tasks(
        &self,
        source_arn: &str,
        max: Option<i64>,
    ) -> Result<Vec<Value>, QueueError> {
        let max = max.unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(QueueError::invalid(
                "Value for parameter MaxResults is invalid. Reason: must be between 1 and 10.",
            ));
        }
        self.queue_by_arn(source_arn).await.map_err(|_| {
            QueueError::ResourceNotFound(
                "The resource that you specified for the SourceArn parameter doesn't exist.".into(),
            )
        })?;
        let mut tasks = self.move_task_records(Some(source_arn)).await?;
        tasks.truncate(max as usize);
        Ok(tasks)
    }

    /// CancelMessageMoveTask: returns the messages moved so far.
    pub async fn cancel_move_task(&self, handle: &str) -> Result<u64, QueueError> {
        let flag = lock(&self.inner.moves).get(handle).cloned();
        let Some(flag) = flag else {
            return Err(QueueError::ResourceNotFound(
                "Task does not exist or is not running.".into(),
            ));
        };
        flag.store(true, Ordering::Relaxed);
        let tasks = self.move_task_records(None).await?;
        let moved = tasks
            .iter()
            .find(|t| t["TaskHandle"] == handle)
            .and_then(|t| t["ApproximateNumberOfMessagesMoved"].as_u64())
            .unwrap_or(0);
        Ok(moved)
    }

    /// Marks tasks a previous run left RUNNING as failed (they stop with the process).
    pub async fn fail_interrupted_move_tasks(&self) -> Result<(), QueueError> {
        for mut t in self.move_task_records(None).await? {
            if t["Status"] == "RUNNING" || t["Status"] == "CANCELLING" {
                t["Status"] = json!("FAILED");
                t["FailureReason"] = json!("The task was interrupted by a restart of Kindling.");
                self.save_task(&t).await?;
            }
        }
        Ok(())
    }
}
