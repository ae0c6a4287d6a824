//! The PostgreSQL implementation of the store traits, for several Kindling nodes sharing one
//! database: every node is the same `kindling serve --store postgres://...`.
//!
//! Connections, isolation levels and migrations: [`connections`]. The SQL lives in one module
//! per aggregate, mirroring the SQLite store's; this file only chooses, for each trait method,
//! the kind of transaction. Control-plane writes also announce themselves to every node's
//! caches ([`changes`]); code packages are shared through the database ([`code_blobs`]).

mod account;
mod aliases;
mod apis;
mod changes;
mod code_blobs;
mod connections;
mod event_configs;
mod function_urls;
mod functions;
mod layers;
mod mappings;
mod nodes;
mod object_bytes;
mod object_store;
mod objects;
mod policies;
mod queue;
mod queue_store;
mod records;
mod rows;
mod sns;
mod sqs;
mod stack_store;
mod versions;

use std::time::Duration;

use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter, EventInvokeConfig};
use kindling_model::function::{FunctionMeta, VersionNumber, VersionRecord};
use kindling_model::layer::LayerVersionRecord;
use kindling_model::url::FunctionUrlRecord;

pub use self::changes::{Change, ChangeListener};
use self::connections::{Connections, Mode, Tx};
pub use self::connections::{DEFAULT_POOL_SIZE, MAX_POOL_SIZE};
use crate::{AccountUsage, PolicyRecord, QueueStat, Result, Store};

/// How long a control-plane write waits, after its commit, for every listening node to drop
/// its caches before it returns anyway (a node that slow is logged).
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL-backed store: a pool of connections to one database that any number of nodes
/// share.
pub struct PgStore {
    conns: Connections,
    ack_timeout: Duration,
}

impl PgStore {
    /// Connects to `url` (`postgres://USER@HOST:PORT/DB`) and applies pending migrations.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with_pool(url, DEFAULT_POOL_SIZE)
    }

    /// Like [`Self::connect`], keeping at most `pool_size` connections (1 to
    /// [`MAX_POOL_SIZE`]; anything else is [`StoreError::Invalid`](crate::StoreError::Invalid)).
    /// The change listener ([`Self::listen_changes`]) uses one connection more.
    pub fn connect_with_pool(url: &str, pool_size: u32) -> Result<Self> {
        Ok(Self {
            conns: Connections::open(url, pool_size)?,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
        })
    }

    /// With `true`, a call of any PostgreSQL store of the process made on an async runtime's
    /// worker thread panics instead of being moved off the runtime: a test setting that finds
    /// callers which skipped `spawn_blocking`.
    pub fn set_strict_blocking(strict: bool) {
        connections::STRICT_BLOCKING.store(strict, std::sync::atomic::Ordering::Relaxed);
    }

    /// A read-only snapshot transaction.
    fn read<T: Send>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T> + Send) -> Result<T> {
        self.conns.run(Mode::Read, f)
    }

    /// A serializable write, retried on conflicts.
    fn write<T: Send>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T> + Send) -> Result<T> {
        self.conns.run(Mode::Write, f)
    }

    /// Queue bookkeeping: read committed with row locks.
    fn queue<T: Send>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T> + Send) -> Result<T> {
        self.conns.run(Mode::Queue, f)
    }

    /// A write of control-plane state that nodes cache: committed with a new change number,
    /// announced to every node, and returned once they all dropped what they cached.
    fn write_control<T: Send>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T> + Send,
    ) -> Result<T> {
        let (out, version) = self.write(|t| {
            let out = f(t)?;
            Ok((out, changes::announce(t)?))
        })?;
        changes::await_acks(&self.conns, version, self.ack_timeout);
        Ok(out)
    }
}

impl Store for PgStore {
    fn create_function(
        &self,
        meta: &FunctionMeta,
        latest: &VersionRecord,
        published: Option<&VersionRecord>,
    ) -> Result<()> {
        self.write_control(|t| functions::create(t, meta, latest, published))
    }

    fn function(&self, name: &str) -> Result<Option<FunctionMeta>> {
        self.read(|t| functions::meta(t, name))
    }

    fn put_function_meta(&self, meta: &FunctionMeta) -> Result<()> {
        self.write_control(|t| functions::put_meta(t, meta))
    }

    fn version(&self, name: &str, version: VersionNumber) -> Result<Option<VersionRecord>> {
        self.read(|t| versions::get(t, name, version))
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.read(|t| versions::all(t, name))
    }

    fn list_functions(
        &self,
        after: Option<(&str, u64)>,
        all_versions: bool,
        limit: usize,
    ) -> Result<Vec<VersionRecord>> {
        self.read(|t| functions::list(t, after, all_versions, limit))
    }

    fn update_latest(&self, rec: &VersionRecord, expected_revision: &str) -> Result<()> {
        self.write_control(|t| versions::update_latest(t, rec, expected_revision))
    }

    fn insert_version(&self, rec: &VersionRecord, expected_latest_revision: &str) -> Result<()> {
        self.write_control(|t| versions::publish(t, rec, expected_latest_revision))
    }

    fn delete_function(&self, name: &str) -> Result<()> {
        self.write_control(|t| functions::delete(t, name))
    }

    fn delete_version(&self, name: &str, version: u64) -> Result<()> {
        self.write_control(|t| versions::delete(t, name, version))
    }

    fn set_reserved_concurrency(
        &self,
        name: &str,
        value: Option<u32>,
        max_total_reserved: u64,
    ) -> Result<()> {
        self.write_control(|t| account::set_reserved(t, name, value, max_total_reserved))
    }

    fn account_usage(&self) -> Result<AccountUsage> {
        self.read(account::usage)
    }

    fn create_alias(&self, rec: &AliasRecord) -> Result<()> {
        self.write_control(|t| aliases::create(t, rec))
    }

    fn alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>> {
        self.read(|t| aliases::get(t, function, name))
    }

    fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>> {
        self.read(|t| aliases::all(t, function))
    }

    fn update_alias(&self, rec: &AliasRecord, expected_revision: &str) -> Result<()> {
        self.write_control(|t| aliases::update(t, rec, expected_revision))
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<()> {
        self.write_control(|t| aliases::delete(t, function, name))
    }

    fn policy(&self, function: &str, qualifier: &str) -> Result<Option<PolicyRecord>> {
        self.read(|t| policies::get(t, function, qualifier))
    }

    fn put_policy(
        &self,
        function: &str,
        qualifier: &str,
        policy: &PolicyRecord,
        expected: Option<&str>,
    ) -> Result<()> {
        self.write_control(|t| policies::put(t, function, qualifier, policy, expected))
    }

    fn publish_layer_version(&self, rec: &LayerVersionRecord) -> Result<u64> {
        self.write_control(|t| layers::publish(t, rec))
    }

    fn layer_version(
        &self,
        name: &str,
        version: u64,
        include_deleted: bool,
    ) -> Result<Option<LayerVersionRecord>> {
        self.read(|t| layers::get(t, name, version, include_deleted))
    }

    fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersionRecord>> {
        self.read(|t| layers::live(t, name))
    }

    fn layer_names(&self) -> Result<Vec<String>> {
        self.read(layers::names)
    }

    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        self.write_control(|t| layers::delete(t, name, version))
    }

    fn enqueue_events(&self, events: &[AsyncEvent]) -> Result<()> {
        self.queue(|t| queue::enqueue(t, events))
    }

    fn lease_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncEvent>> {
        self.queue(|t| queue::lease(t, owner, now_ms, lease_ms, limit))
    }

    fn reschedule_event(
        &self,
        id: &str,
        owner: &str,
        attempts: u32,
        not_before_ms: i64,
        last_result: Option<&str>,
    ) -> Result<()> {
        self.queue(|t| queue::reschedule(t, id, owner, attempts, not_before_ms, last_result))
    }

    fn finish_event(
        &self,
        id: &str,
        owner: &str,
        letters: &[DeadLetter],
        follow_ups: &[AsyncEvent],
    ) -> Result<()> {
        if letters.is_empty() && follow_ups.is_empty() {
            // The common case (an event that ran, with no destination): the lease-fenced
            // DELETE alone, committed on its own - one round trip, no BEGIN/COMMIT.
            self.conns
                .execute_autocommit(queue::DELETE_LEASED, &[&id, &owner])?;
            return Ok(());
        }
        self.queue(|t| queue::finish(t, id, owner, letters, follow_ups))
    }

    fn release_leases(&self, owner: &str) -> Result<u64> {
        self.queue(|t| queue::release(t, owner))
    }

    fn next_due_ms(&self) -> Result<Option<i64>> {
        self.read(queue::next_due)
    }

    fn queue_stats(&self) -> Result<Vec<QueueStat>> {
        self.read(queue::stats)
    }

    fn event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<EventInvokeConfig>> {
        self.read(|t| event_configs::get(t, function, qualifier))
    }

    fn event_invoke_configs(&self, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
        self.read(|t| event_configs::all(t, function))
    }

    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &EventInvokeConfig,
    ) -> Result<()> {
        self.write_control(|t| event_configs::put(t, function, qualifier, config))
    }

    fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write_control(|t| event_configs::delete(t, function, qualifier))
    }

    fn dead_letters(&self, queue: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.read(|t| queue::dead_letters(t, queue, limit))
    }

    fn redrive(&self, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()> {
        self.queue(|t| queue::redrive(t, letter_ids, events))
    }

    fn create_function_url(&self, rec: &FunctionUrlRecord) -> Result<()> {
        self.write_control(|t| function_urls::create(t, rec))
    }

    fn function_url(&self, function: &str, qualifier: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read(|t| function_urls::get(t, function, qualifier))
    }

    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read(|t| function_urls::by_id(t, url_id))
    }

    fn function_urls(&self, function: &str) -> Result<Vec<FunctionUrlRecord>> {
        self.read(|t| function_urls::all(t, function))
    }

    fn update_function_url(&self, rec: &FunctionUrlRecord, expected_revision: &str) -> Result<()> {
        self.write_control(|t| function_urls::update(t, rec, expected_revision))
    }

    fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write_control(|t| function_urls::delete(t, function, qualifier))
    }
}

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
