//! Kindling's durable state behind the [`Store`] trait, and the content-addressed code blob store.
//! Two implementations: [`SqliteStore`] (one node, embedded) and [`PgStore`] (any number of
//! nodes sharing one PostgreSQL database).
//!
//! The trait is synchronous and every method is one atomic transaction: a failed call changes
//! nothing. Compare-and-swap on revision ids (`expected_revision`) lets several nodes share one
//! database later (PostgreSQL) without a cluster protocol of our own. Outcomes a caller acts on
//! (`NotFound`, `AlreadyExists`, `RevisionMismatch`, `InUse`, `LimitExceeded`) are distinct
//! [`StoreError`] variants; failures of the database keep their cause as the error's source.

pub mod apis;
mod blobs;
mod error;
mod json;
pub mod mappings;
pub mod messaging;
pub mod nodes;
pub mod objects;
mod postgres;
mod sqlite;
mod sqs_receive;
pub mod stacks;
#[cfg(test)]
mod store_tests;

#[cfg(test)]
mod service_tests;

pub use self::postgres::{Change, ChangeListener, DEFAULT_POOL_SIZE, MAX_POOL_SIZE, PgStore};
pub use apis::{ApiRecord, ApiStore};
pub use blobs::{BlobId, BlobStore, SharedBlobs};
pub use error::{Entity, StoreError, UNSTORABLE_TEXT};
pub use mappings::MappingStore;
pub use messaging::QueueStore;
pub use objects::{ObjectStore, SharedObjectBytes, StoredBytes};
pub use sqlite::SqliteStore;
pub use stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};

/// Re-exported for implementations' callers.
pub use kindling_model::events;

use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter, EventInvokeConfig};
use kindling_model::function::{FunctionMeta, VersionNumber, VersionRecord};
use kindling_model::layer::LayerVersionRecord;
use kindling_model::url::FunctionUrlRecord;
use serde_json::Value;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A resource-based policy of a function or one of its qualifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRecord {
    pub revision_id: String,
    pub statements: Vec<Value>,
}

/// Account-wide usage figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountUsage {
    pub function_count: u64,
    /// Bytes of all function versions' and layer versions' zips.
    pub total_code_size: u64,
    /// Sum of all reserved concurrency.
    pub reserved_concurrency: u64,
    /// Sum of the provisioned concurrency of functions without reserved concurrency (it is
    /// taken from the unreserved pool; a reservation holds its function's own).
    pub unreserved_provisioned: u64,
}

impl AccountUsage {
    /// Counts one function's record: its reservation, and its provisioned concurrency when it
    /// comes from the unreserved pool.
    pub(crate) fn count_function(&mut self, m: &FunctionMeta) {
        self.function_count += 1;
        self.reserved_concurrency += u64::from(m.reserved_concurrency.unwrap_or(0));
        if m.reserved_concurrency.is_none() {
            self.unreserved_provisioned += m
                .provisioned
                .values()
                .map(|p| u64::from(p.requested))
                .sum::<u64>();
        }
    }
}

/// Sets `meta`'s reserved concurrency to `value` unless, with the reservations of every other
/// function (`others`), the account would reserve more than `max_total_reserved`
/// (`LimitExceeded`). Removing a reservation (`None`) always succeeds.
pub(crate) fn reserve_concurrency(
    meta: &mut FunctionMeta,
    others: &[FunctionMeta],
    value: Option<u32>,
    max_total_reserved: u64,
) -> Result<()> {
    if let Some(v) = value {
        let others: u64 = others
            .iter()
            .map(|m| u64::from(m.reserved_concurrency.unwrap_or(0)))
            .sum();
        if others + u64::from(v) > max_total_reserved {
            return Err(StoreError::LimitExceeded);
        }
    }
    meta.reserved_concurrency = value;
    Ok(())
}

/// Depth of one function's asynchronous queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStat {
    pub function_name: String,
    /// Events accepted and not finished (waiting or in flight).
    pub depth: u64,
    /// Events leased by a worker right now.
    pub in_flight: u64,
    /// When the oldest event was accepted.
    pub oldest_enqueued_ms: i64,
}

/// Durable control-plane state. Each method is atomic.
pub trait Store: Send + Sync + 'static {
    // --- functions and versions ---
    /// Creates a function with its `$LATEST` and optionally version 1; `AlreadyExists(Function)`
    /// if it exists.
    fn create_function(
        &self,
        meta: &FunctionMeta,
        latest: &VersionRecord,
        published: Option<&VersionRecord>,
    ) -> Result<()>;
    fn function(&self, name: &str) -> Result<Option<FunctionMeta>>;
    /// Replaces the function-level record (tags, reserved concurrency); `NotFound(Function)`.
    fn put_function_meta(&self, meta: &FunctionMeta) -> Result<()>;
    fn version(&self, name: &str, version: VersionNumber) -> Result<Option<VersionRecord>>;
    /// All versions of a function, `$LATEST` first, then ascending numbers.
    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>>;
    /// Function versions ordered by (name, version) strictly after `after`, `$LATEST` only
    /// unless `all_versions`.
    fn list_functions(
        &self,
        after: Option<(&str, u64)>,
        all_versions: bool,
        limit: usize,
    ) -> Result<Vec<VersionRecord>>;
    /// Replaces `$LATEST` if its revision is still `expected_revision` (else `RevisionMismatch`;
    /// `NotFound(Function)` without one).
    fn update_latest(&self, rec: &VersionRecord, expected_revision: &str) -> Result<()>;
    /// Stores a new published version if `$LATEST` is still at `expected_latest_revision` (else
    /// `RevisionMismatch`), and records its number as the function's last version;
    /// `AlreadyExists(Version)` when the number is not past the last one.
    fn insert_version(&self, rec: &VersionRecord, expected_latest_revision: &str) -> Result<()>;
    /// Deletes a function with all its versions, aliases and policies; `NotFound(Function)`.
    fn delete_function(&self, name: &str) -> Result<()>;
    /// Deletes one published version; `InUse` when an alias routes to it, `NotFound(Version)`.
    fn delete_version(&self, name: &str, version: u64) -> Result<()>;
    /// Sets or clears reserved concurrency, failing with `LimitExceeded` when the account's
    /// reservations would exceed `max_total_reserved`; `NotFound(Function)`.
    fn set_reserved_concurrency(
        &self,
        name: &str,
        value: Option<u32>,
        max_total_reserved: u64,
    ) -> Result<()>;
    fn account_usage(&self) -> Result<AccountUsage>;

    // --- aliases ---
    /// Creates an alias; `AlreadyExists(Alias)` if it exists, `NotFound(Function)` or
    /// `NotFound(Version)` if the function or a version it routes to is missing.
    fn create_alias(&self, rec: &AliasRecord) -> Result<()>;
    fn alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>>;
    fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>>;
    /// Replaces an alias if its revision is still `expected_revision` (else `RevisionMismatch`;
    /// `NotFound(Alias)`, or `NotFound(Version)` for a version it would route to).
    fn update_alias(&self, rec: &AliasRecord, expected_revision: &str) -> Result<()>;
    fn delete_alias(&self, function: &str, name: &str) -> Result<()>;

    // --- policies ---
    fn policy(&self, function: &str, qualifier: &str) -> Result<Option<PolicyRecord>>;
    /// Replaces (or, with no statements, removes) a policy if its revision is still `expected`
    /// (`None`: no policy may exist yet), else `RevisionMismatch`; `NotFound(Function)`.
    fn put_policy(
        &self,
        function: &str,
        qualifier: &str,
        policy: &PolicyRecord,
        expected: Option<&str>,
    ) -> Result<()>;

    // --- layers ---
    /// Stores a new layer version numbered one past the layer's last; returns the number.
    fn publish_layer_version(&self, rec: &LayerVersionRecord) -> Result<u64>;
    /// A layer version; `include_deleted` also finds versions deleted after functions used them.
    fn layer_version(
        &self,
        name: &str,
        version: u64,
        include_deleted: bool,
    ) -> Result<Option<LayerVersionRecord>>;
    /// Live versions of a layer, newest first.
    fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersionRecord>>;
    /// Names of layers with at least one live version, ascending.
    fn layer_names(&self) -> Result<Vec<String>>;
    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()>;

    // --- asynchronous invocation queue ---
    /// Stores accepted events durably, all in one transaction (group commit).
    fn enqueue_events(&self, events: &[AsyncEvent]) -> Result<()>;
    /// Leases up to `limit` events that are due (`not_before_ms <= now`) and not leased (or whose
    /// lease expired), taking them round-robin across functions so that no function starves
    /// the others.
    fn lease_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncEvent>>;
    /// Puts a leased event back for a later attempt.
    fn reschedule_event(
        &self,
        id: &str,
        owner: &str,
        attempts: u32,
        not_before_ms: i64,
        last_result: Option<&str>,
    ) -> Result<()>;
    /// Removes a finished event if `owner` still holds its lease, and atomically stores what
    /// it produced: dead letters / destination messages and follow-up events (destinations that
    /// are functions). A worker that lost its lease stores nothing.
    fn finish_event(
        &self,
        id: &str,
        owner: &str,
        letters: &[DeadLetter],
        follow_ups: &[AsyncEvent],
    ) -> Result<()>;
    /// Frees every lease of `owner` (a node restarting after a crash); returns how many.
    fn release_leases(&self, owner: &str) -> Result<u64>;
    /// Earliest `not_before_ms` among events not leased.
    fn next_due_ms(&self) -> Result<Option<i64>>;
    fn queue_stats(&self) -> Result<Vec<QueueStat>>;

    // --- event invoke configuration ---
    fn event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<EventInvokeConfig>>;
    /// All of a function's configurations by qualifier, ascending.
    fn event_invoke_configs(&self, function: &str) -> Result<Vec<(String, EventInvokeConfig)>>;
    /// `NotFound(Function)` if the function does not exist.
    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &EventInvokeConfig,
    ) -> Result<()>;
    /// Returns whether a configuration was deleted.
    fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool>;

    // --- built-in dead-letter store ---
    /// Dead letters, oldest first, optionally of one queue.
    fn dead_letters(&self, queue: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>>;
    /// Deletes dead letters and enqueues events in one transaction (redrive).
    fn redrive(&self, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()>;

    // --- function URLs ---
    /// `NotFound(Function)`/`NotFound(Alias)` unless what it invokes exists;
    /// `AlreadyExists(FunctionUrl)` when the function and qualifier have one.
    fn create_function_url(&self, rec: &FunctionUrlRecord) -> Result<()>;
    /// By function and qualifier (`$LATEST` or an alias).
    fn function_url(&self, function: &str, qualifier: &str) -> Result<Option<FunctionUrlRecord>>;
    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>>;
    /// A function's URLs by qualifier.
    fn function_urls(&self, function: &str) -> Result<Vec<FunctionUrlRecord>>;
    /// Compare-and-swap on the stored `revision_id`: `RevisionMismatch`, `NotFound(FunctionUrl)`.
    fn update_function_url(&self, rec: &FunctionUrlRecord, expected_revision: &str) -> Result<()>;
    /// Returns whether a URL was deleted.
    fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool>;
}
