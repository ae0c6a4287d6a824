//! SQS and SNS semantics, with no wire format: the queue domain ([`QueueService`]) and the
//! topic domain ([`TopicService`]) over the durable [`kindling_store::QueueStore`].
//!
//! Both live in one crate because an SNS publish writes into queues: its fan-out (messages for
//! subscribed queues, asynchronous Lambda invocations, pending HTTP deliveries) is committed in
//! ONE transaction by the same group-committing writer that stores SQS sends ([`commit`]).
//! Destination records and dead letters of asynchronous invocations arrive through the store's
//! outbox (the `dead_letters` table, written in the same transaction that finishes the event)
//! and are forwarded into queues and topics ([`forward`]).
//!
//! Invariants:
//! - A send or publish is answered only after the transaction holding it was fsync'd (its
//!   receivers may claim it before: they are woken when it is committed, not when it is synced).
//! - A message leaves a queue only by a delete with its latest receipt, a purge, the end of its
//!   retention period, or a move (to a dead-letter queue at receive time, or back by a move
//!   task) that inserts it elsewhere in the same transaction.
//! - A FIFO message is received only when no message of its group is in flight and no earlier
//!   message of its group is still invisible.

mod attributes;
mod commit;
mod digest;
pub mod dlq;
mod error;
pub mod forward;
pub mod http;
mod message;
pub mod names;
mod queues;
mod receipt;
mod topics;

pub use attributes::MAX_MESSAGE_SIZE;
pub use digest::{md5_of_attributes, md5_of_body};
pub use error::{QueueError, TopicError};
pub use message::{AttributeInput, SendInput};
pub use queues::{
    EntryResult, QueueService, QueuesConfig, ReceiveInput, ReceivedMessage, SendResult,
    check_batch, sequence_number,
};
pub use topics::{PublishInput, PublishResult, SubscribeInput, TopicService};

pub use kindling_model::messaging::{AttributeValue, QueueRecord, SubscriptionRecord, TopicRecord};
