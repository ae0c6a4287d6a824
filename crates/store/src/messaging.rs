//! Durable state of SQS queues and SNS topics behind the [`QueueStore`] trait.
//!
//! Message traffic goes through [`QueueStore::apply_queue_ops`]: a batch of operations run in
//! ONE transaction (group commit), each operation inside its own savepoint so that one failing
//! operation leaves the others intact. Claims (receives) select receivable rows and update
//! them in the same transaction; on PostgreSQL the select is `FOR UPDATE SKIP LOCKED`, so
//! several nodes never receive the same message at once.

use kindling_model::events::{AsyncEvent, DeadLetter};
use kindling_model::messaging::{
    HttpDelivery, NewMessage, QueueRecord, StoredMessage, SubscriptionRecord, TopicRecord,
};

use crate::{Result, StoreError};

/// What a caller of [`QueueStore::due_http_deliveries`] already has in hand and how much more
/// it takes: the deliveries it is making (not returned again while they run), and how many
/// rows of one subscription a call may return (`allowances` for the subscriptions it has in
/// flight, `per_subscription` for the others). The rows held back stay due.
#[derive(Debug, Clone)]
pub struct HttpBusy {
    pub ids: Vec<String>,
    /// Most rows of a subscription not named in `allowances` that one call returns.
    pub per_subscription: usize,
    /// Subscriptions and how many more of their rows one call may return (0: none for now).
    pub allowances: Vec<(String, usize)>,
}

impl Default for HttpBusy {
    /// Nothing in hand, no limit per subscription.
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            per_subscription: usize::MAX,
            allowances: Vec::new(),
        }
    }
}

impl HttpBusy {
    /// The allowances as two parallel lists (subscriptions, counts) for SQL parameters.
    pub(crate) fn allowance_columns(&self) -> (Vec<String>, Vec<i64>) {
        self.allowances
            .iter()
            .map(|(s, n)| (s.clone(), count(*n)))
            .unzip()
    }

    pub(crate) fn per_subscription_count(&self) -> i64 {
        count(self.per_subscription)
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One operation of a message batch.
#[derive(Debug, Clone)]
pub enum QueueOp {
    /// Adds messages to a queue (FIFO deduplication applies per message).
    Send {
        queue_id: i64,
        messages: Vec<NewMessage>,
    },
    /// Claims receivable messages.
    Receive(ReceiveOp),
    /// Deletes messages by receipt.
    Delete {
        queue_id: i64,
        entries: Vec<ReceiptRef>,
    },
    /// Sets when in-flight messages become receivable again.
    ChangeVisibility {
        queue_id: i64,
        now_ms: i64,
        entries: Vec<(ReceiptRef, i64)>,
    },
    /// Everything one SNS publish (or one forwarded destination record) produces, at once.
    Deliver(Delivery),
}

impl QueueOp {
    /// Whether the batch holding this operation must be fsync'd before it is answered.
    pub fn needs_durability(&self) -> bool {
        matches!(self, Self::Send { .. } | Self::Deliver(_))
    }
}

/// A claim of up to `max` messages.
#[derive(Debug, Clone)]
pub struct ReceiveOp {
    pub queue_id: i64,
    pub fifo: bool,
    pub now_ms: i64,
    pub max: usize,
    /// Claimed messages are invisible until `now_ms + visibility_ms`.
    pub visibility_ms: i64,
    /// Messages sent before this are past retention and never returned.
    pub retention_cutoff_ms: i64,
    /// The nonce of this receive's receipt handles.
    pub receipt: String,
    /// Messages already received `max_receive_count` times move to this queue instead.
    pub redrive: Option<RedriveTarget>,
}

#[derive(Debug, Clone)]
pub struct RedriveTarget {
    pub queue_id: i64,
    pub max_receive_count: u32,
    /// The source queue's ARN (the moved messages' `DeadLetterQueueSourceArn`).
    pub source_arn: String,
}

/// A receipt handle, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRef {
    pub seq: i64,
    pub receipt: String,
}

/// What one SNS publish or forwarded record produces.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Messages for queues (by queue id).
    pub messages: Vec<(i64, NewMessage)>,
    /// Asynchronous Lambda invocations.
    pub events: Vec<AsyncEvent>,
    pub http: Vec<HttpDelivery>,
    /// A destination record in the dead-letter outbox this delivery replaces.
    pub consume_letter: Option<String>,
}

/// The result of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub seq: i64,
    /// The message id stored (the original one for a deduplicated FIFO send).
    pub message_id: String,
    pub duplicate: bool,
}

/// The result of one receive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub messages: Vec<StoredMessage>,
    /// Messages moved to the dead-letter queue during the claim.
    pub moved: u64,
    /// When nothing was receivable: the earliest time a message becomes receivable.
    pub next_visible_ms: Option<i64>,
}

/// Why a visibility change did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityRefusal {
    /// The message is not in flight.
    NotInFlight,
    /// No such message (deleted, or the receipt is not its latest).
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOpOutput {
    Sent(Vec<SendOutcome>),
    Received(Received),
    /// Per entry: whether a message was deleted (false: already gone or a stale receipt).
    Deleted(Vec<bool>),
    Changed(Vec<Result<(), VisibilityRefusal>>),
    Delivered,
}

/// Message counts of a queue at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// When the oldest message still in the queue was sent.
    pub oldest_sent_ms: Option<i64>,
}

/// A message to move from one queue to another (dead-letter redrive).
#[derive(Debug, Clone)]
pub struct MoveMessage {
    pub seq: i64,
    pub to_queue_id: i64,
    pub message: NewMessage,
}

/// Durable queue and topic state. Each method is one transaction.
pub trait QueueStore: Send + Sync + 'static {
    // --- queues ---
    /// Creates a queue, or returns the one of that account and name (the caller compares
    /// attributes). The returned record carries the store's id.
    fn create_queue(&self, rec: &QueueRecord) -> Result<(QueueRecord, bool)>;
    fn queue(&self, account: &str, name: &str) -> Result<Option<QueueRecord>>;
    /// Every queue, by account then name.
    fn queues(&self) -> Result<Vec<QueueRecord>>;
    /// Replaces a queue's record (attributes, tags); `NotFound(Queue)`.
    fn put_queue(&self, rec: &QueueRecord) -> Result<()>;
    /// Deletes a queue with its messages; whether it existed.
    fn delete_queue(&self, id: i64) -> Result<bool>;
    fn queue_counts(&self, id: i64, now_ms: i64) -> Result<QueueCounts>;
    /// Runs `ops` in one transaction, each in its own savepoint (a failed operation changes
    /// nothing and the others still commit). `durable`: fsync before returning.
    fn apply_queue_ops(
        &self,
        ops: &[QueueOp],
        durable: bool,
    ) -> Result<Vec<Result<QueueOpOutput, StoreError>>>;
    /// Makes every commit so far durable (one fsync of the log), for callers that committed
    /// with `durable: false` and answer only after this returns: the commit is visible to
    /// readers (and survives a crash of the process) before it is on disk.
    fn sync_queue_ops(&self) -> Result<()>;
    /// Deletes every message of a queue; how many.
    fn purge_queue(&self, id: i64) -> Result<u64>;
    /// Deletes messages sent before `cutoff_ms` and expired deduplication ids.
    fn expire_messages(&self, id: i64, cutoff_ms: i64, now_ms: i64) -> Result<u64>;
    /// Messages in queue order, without claiming them.
    fn peek_messages(&self, id: i64, limit: usize) -> Result<Vec<StoredMessage>>;
    /// Moves messages between queues (delete and insert in one transaction); how many moved
    /// (a message deleted meanwhile is skipped).
    fn move_messages(&self, from_queue_id: i64, moves: &[MoveMessage]) -> Result<u64>;
    /// Deletes messages and enqueues asynchronous invocations in one transaction (redriving a
    /// dead-letter queue's events to their functions); how many messages were deleted.
    fn redrive_messages(&self, queue_id: i64, seqs: &[i64], events: &[AsyncEvent]) -> Result<u64>;
    /// Stores a message move task's record (JSON), keyed by handle.
    fn put_move_task(
        &self,
        handle: &str,
        source_arn: &str,
        started_ms: i64,
        record: &str,
    ) -> Result<()>;
    /// Move task records of a source, newest first.
    fn move_tasks(&self, source_arn: Option<&str>) -> Result<Vec<String>>;

    // --- topics ---
    /// Creates a topic or returns the existing one of that ARN (and whether it was created).
    fn create_topic(&self, rec: &TopicRecord) -> Result<(TopicRecord, bool)>;
    fn topic(&self, arn: &str) -> Result<Option<TopicRecord>>;
    fn topics(&self) -> Result<Vec<TopicRecord>>;
    /// `NotFound(Topic)`.
    fn put_topic(&self, rec: &TopicRecord) -> Result<()>;
    /// Deletes a topic and its subscriptions; whether it existed.
    fn delete_topic(&self, arn: &str) -> Result<bool>;
    /// Inserts or replaces a subscription; `NotFound(Topic)`.
    fn put_subscription(&self, rec: &SubscriptionRecord) -> Result<()>;
    fn subscription(&self, arn: &str) -> Result<Option<SubscriptionRecord>>;
    /// Subscriptions of one topic, or of all, in creation order.
    fn subscriptions(&self, topic_arn: Option<&str>) -> Result<Vec<SubscriptionRecord>>;
    fn delete_subscription(&self, arn: &str) -> Result<bool>;
    /// Pending HTTP deliveries due at `now_ms`, oldest first, except those `busy` names and
    /// never more of one subscription than `busy` allows (its oldest ones). A
    /// store shared by several nodes reserves them for the caller (another caller gets them
    /// only once the reservation lapses unfinished), so that each POST is made by one node.
    fn due_http_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
        busy: &HttpBusy,
    ) -> Result<Vec<HttpDelivery>>;
    /// Ends an HTTP delivery: retried later (`retry`), or removed, with an optional message for
    /// the subscription's dead-letter queue in the same transaction.
    fn finish_http_delivery(
        &self,
        id: &str,
        retry: Option<(u32, i64)>,
        dead_letter: Option<(i64, NewMessage)>,
    ) -> Result<()>;
    /// Removes a destination record from the dead-letter outbox (delivered elsewhere or
    /// undeliverable).
    fn drop_letter(&self, id: &str) -> Result<()>;
    /// Records of the dead-letter outbox addressed to SQS queues or SNS topics, oldest first.
    fn queue_letters(&self, limit: usize) -> Result<Vec<DeadLetter>>;
}
