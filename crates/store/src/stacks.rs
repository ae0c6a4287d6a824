//! Durable CloudFormation stacks behind the [`StackStore`] trait (used by `kindling-deploy`).
//!
//! A stack is one JSON document (the engine's own format) written whole, with the events
//! that describe the change in the same transaction: a reader never sees an event without
//! the state it reports, nor a state whose events were lost. Every write is durable.
//!
//! Several nodes may share the store: every save is a compare-and-swap on the stack's
//! *revision* (so two nodes cannot both start an operation on one stack, and a node that lost
//! a stack to another cannot write it again), and a stack with an operation in flight names
//! its *owner*, the node running it; the operations of a node that died are adopted by another.

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
    /// The revision the row was read at (as stored), or the one a save expects (0: a new stack).
    pub revision: i64,
    /// The node running the stack's operation (`None` when no operation is in flight).
    pub owner: Option<String>,
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
    /// Inserts (`stack.revision` 0) or replaces the stack stored at `stack.revision`, and
    /// appends `events` (JSON documents, oldest first); returns the new revision
    /// (`stack.revision + 1`). `RevisionMismatch` when the stored revision is another (someone
    /// wrote the stack since it was read) or a new stack's id exists; `AlreadyExists(Stack)`
    /// when a new stack's name is that of a stack not deleted. Nothing is written on error.
    fn save_stack(&self, stack: &StackRow, events: &[String]) -> Result<i64>;
    /// Every stack, deleted ones included, oldest first.
    fn stacks(&self) -> Result<Vec<StackRow>>;
    /// Every stack's id and revision, oldest first (to refresh a cache cheaply).
    fn stack_revisions(&self) -> Result<Vec<(String, i64)>>;
    /// The stacks of these ids, oldest first (absent ones left out).
    fn stacks_by_id(&self, ids: &[String]) -> Result<Vec<StackRow>>;
    /// A stack's events, oldest first.
    fn stack_events(&self, stack_id: &str) -> Result<Vec<String>>;
    /// Makes `node_id` (a live node) the owner of every stack whose operation's owner is not a
    /// live node (it died or left mid-operation), bumping their revisions; returns their ids.
    /// Without a node table (SQLite: one node) there is nobody to adopt from: none.
    fn adopt_orphaned_stacks(&self, node_id: &str) -> Result<Vec<String>>;
    /// Inserts or replaces a change set.
    fn save_change_set(&self, change_set: &ChangeSetRow) -> Result<()>;
    /// Every change set, oldest first.
    fn change_sets(&self) -> Result<Vec<ChangeSetRow>>;
    /// A stack's change sets, oldest first.
    fn change_sets_of(&self, stack_id: &str) -> Result<Vec<ChangeSetRow>>;
    /// One change set.
    fn change_set(&self, change_set_id: &str) -> Result<Option<ChangeSetRow>>;
    /// Deletes a change set (absent is not an error).
    fn delete_change_set(&self, change_set_id: &str) -> Result<()>;
    /// Removes these stacks with their events and change sets, those that are deleted
    /// (`DELETE_COMPLETE`) only; returns how many went.
    fn forget_deleted_stacks(&self, ids: &[String]) -> Result<usize>;
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
