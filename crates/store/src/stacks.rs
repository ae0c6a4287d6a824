//! Durable CloudFormation stacks behind the [`StackStore`] trait (used by `kindling-deploy`).
//!
//! A stack is one JSON document (the engine's own format) written whole, with the events
//! that describe the change in the same transaction: a reader never sees an event without
//! the state it reports, nor a state whose events were lost. Every write is durable.

use crate::Result;

/// A stack's row: its identity, status (for listings) and whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRow {
    pub stack_id: String,
    pub name: String,
    pub status: String,
    pub updated_ms: i64,
    /// The engine's JSON document.
    pub document: String,
}

/// A change set's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetRow {
    pub change_set_id: String,
    pub stack_id: String,
    pub created_ms: i64,
    pub document: String,
}

/// Durable stack state. Each method is one transaction.
pub trait StackStore: Send + Sync + 'static {
    /// Inserts or replaces a stack and appends `events` (JSON documents, oldest first).
    fn save_stack(&self, stack: &StackRow, events: &[String]) -> Result<()>;
    /// Every stack, deleted ones included, oldest first.
    fn stacks(&self) -> Result<Vec<StackRow>>;
    /// A stack's events, oldest first.
    fn stack_events(&self, stack_id: &str) -> Result<Vec<String>>;
    /// Inserts or replaces a change set.
    fn save_change_set(&self, change_set: &ChangeSetRow) -> Result<()>;
    /// Every change set, oldest first.
    fn change_sets(&self) -> Result<Vec<ChangeSetRow>>;
    /// Deletes a change set (absent is not an error).
    fn delete_change_set(&self, change_set_id: &str) -> Result<()>;
}

/// Durable schedules (EventBridge rules and Scheduler schedules), one JSON document each.
pub trait ScheduleStore: Send + Sync + 'static {
    /// Inserts or replaces a schedule.
    fn put_schedule(&self, id: &str, document: &str) -> Result<()>;
    /// Deletes a schedule (absent is not an error).
    fn delete_schedule(&self, id: &str) -> Result<()>;
    /// Every schedule's document.
    fn schedules(&self) -> Result<Vec<String>>;
}
