//! The embedded SQLite implementation of [`Store`] (WAL, foreign keys, migrations in
//! `migrations/`). Connections and durability modes: [`connections`]. The SQL lives in one
//! module per aggregate; this file only chooses, for each trait method, a read or a write
//! transaction and its durability.

mod account;
mod aliases;
mod apis;
mod connections;
mod event_configs;
mod function_urls;
mod functions;
mod layers;
mod mappings;
mod object_store;
mod objects;
mod policies;
mod queue;
mod queue_store;
mod rows;
mod sns;
mod sqs;
mod stack_store;
mod versions;

use std::path::Path;

use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter, EventInvokeConfig};
use kindling_model::function::{FunctionMeta, VersionNumber, VersionRecord};
use kindling_model::layer::LayerVersionRecord;
use kindling_model::url::FunctionUrlRecord;

use self::connections::{Connections, DEFAULT_READERS, Durability};
use crate::apis::{ApiRecord, ApiStore};
use crate::{AccountUsage, PolicyRecord, QueueStat, Result, Store};

/// SQLite-backed store: a durable writer, a relaxed writer for queue bookkeeping and a pool of
/// readers over one WAL database (see [`connections`]).
pub struct SqliteStore {
    conns: Connections,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_readers(path, DEFAULT_READERS)
    }

    /// Like [`Self::open`], with `readers` reader connections (at least one).
    pub fn open_with_readers(path: &Path, readers: usize) -> Result<Self> {
        Ok(Self {
            conns: Connections::open(path, readers)?,
        })
    }

    /// A private in-memory database on a single connection, for tests.
    pub fn in_memory() -> Result<Self> {
        Ok(Self {
            conns: Connections::in_memory()?,
        })
    }

    fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        self.conns.read(|tx| f(tx))
    }

    /// A write committed durably (fsync'd) before it returns.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        self.conns.write(Durability::Full, |tx| f(tx))
    }

    /// A write of the queue's own bookkeeping: in the WAL at once (it survives a crash of
    /// Kindling), on disk with the next durable commit or checkpoint. Losing it on power failure
    /// only makes an event run again, which at-least-once delivery allows.
    fn write_relaxed<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        self.conns.write(Durability::Relaxed, |tx| f(tx))
    }
}

impl Store for SqliteStore {
    fn create_function(
        &self,
        meta: &FunctionMeta,
        latest: &VersionRecord,
        published: Option<&VersionRecord>,
    ) -> Result<()> {
        self.write(|c| functions::create(c, meta, latest, published))
    }

    fn function(&self, name: &str) -> Result<Option<FunctionMeta>> {
        self.read(|c| functions::meta(c, name))
    }

    fn put_function_meta(&self, meta: &FunctionMeta) -> Result<()> {
        self.write(|c| functions::put_meta(c, meta))
    }

    fn version(&self, name: &str, version: VersionNumber) -> Result<Option<VersionRecord>> {
        self.read(|c| versions::get(c, name, version))
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.read(|c| versions::all(c, name))
    }

    fn list_functions(
        &self,
        after: Option<(&str, u64)>,
        all_versions: bool,
        limit: usize,
    ) -> Result<Vec<VersionRecord>> {
        self.read(|c| functions::list(c, after, all_versions, limit))
    }

    fn update_latest(&self, rec: &VersionRecord, expected_revision: &str) -> Result<()> {
        self.write(|c| versions::update_latest(c, rec, expected_revision))
    }

    fn insert_version(&self, rec: &VersionRecord, expected_latest_revision: &str) -> Result<()> {
        self.write(|c| versions::publish(c, rec, expected_latest_revision))
    }

    fn delete_function(&self, name: &str) -> Result<()> {
        self.write(|c| functions::delete(c, name))
    }

    fn delete_version(&self, name: &str, version: u64) -> Result<()> {
        self.write(|c| versions::delete(c, name, version))
    }

    fn set_reserved_concurrency(
        &self,
        name: &str,
        value: Option<u32>,
        max_total_reserved: u64,
    ) -> Result<()> {
        self.write(|c| account::set_reserved(c, name, value, max_total_reserved))
    }

    fn account_usage(&self) -> Result<AccountUsage> {
        self.read(account::usage)
    }

    fn create_alias(&self, rec: &AliasRecord) -> Result<()> {
        self.write(|c| aliases::create(c, rec))
    }

    fn alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>> {
        self.read(|c| aliases::get(c, function, name))
    }

    fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>> {
        self.read(|c| aliases::all(c, function))
    }

    fn update_alias(&self, rec: &AliasRecord, expected_revision: &str) -> Result<()> {
        self.write(|c| aliases::update(c, rec, expected_revision))
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<()> {
        self.write(|c| aliases::delete(c, function, name))
    }

    fn policy(&self, function: &str, qualifier: &str) -> Result<Option<PolicyRecord>> {
        self.read(|c| policies::get(c, function, qualifier))
    }

    fn put_policy(
        &self,
        function: &str,
        qualifier: &str,
        policy: &PolicyRecord,
        expected: Option<&str>,
    ) -> Result<()> {
        self.write(|c| policies::put(c, function, qualifier, policy, expected))
    }

    fn publish_layer_version(&self, rec: &LayerVersionRecord) -> Result<u64> {
        self.write(|c| layers::publish(c, rec))
    }

    fn layer_version(
        &self,
        name: &str,
        version: u64,
        include_deleted: bool,
    ) -> Result<Option<LayerVersionRecord>> {
        self.read(|c| layers::get(c, name, version, include_deleted))
    }

    fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersionRecord>> {
        self.read(|c| layers::live(c, name))
    }

    fn layer_names(&self) -> Result<Vec<String>> {
        self.read(layers::names)
    }

    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        self.write(|c| layers::delete(c, name, version))
    }

    fn enqueue_events(&self, events: &[AsyncEvent]) -> Result<()> {
        self.write(|c| queue::enqueue(c, events))
    }

    fn lease_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncEvent>> {
        self.write_relaxed(|c| queue::lease(c, owner, now_ms, lease_ms, limit))
    }

    fn reschedule_event(
        &self,
        id: &str,
        owner: &str,
        attempts: u32,
        not_before_ms: i64,
        last_result: Option<&str>,
    ) -> Result<()> {
        self.write_relaxed(|c| {
            queue::reschedule(c, id, owner, attempts, not_before_ms, last_result)
        })
    }

    fn finish_event(
        &self,
        id: &str,
        owner: &str,
        letters: &[DeadLetter],
        follow_ups: &[AsyncEvent],
    ) -> Result<()> {
        self.write_relaxed(|c| queue::finish(c, id, owner, letters, follow_ups))
    }

    fn release_leases(&self, owner: &str) -> Result<u64> {
        self.write_relaxed(|c| queue::release(c, owner))
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
        self.read(|c| event_configs::get(c, function, qualifier))
    }

    fn event_invoke_configs(&self, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
        self.read(|c| event_configs::all(c, function))
    }

    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &EventInvokeConfig,
    ) -> Result<()> {
        self.write(|c| event_configs::put(c, function, qualifier, config))
    }

    fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write(|c| event_configs::delete(c, function, qualifier))
    }

    fn dead_letters(&self, queue: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.read(|c| queue::dead_letters(c, queue, limit))
    }

    fn redrive(&self, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()> {
        self.write(|c| queue::redrive(c, letter_ids, events))
    }

    fn create_function_url(&self, rec: &FunctionUrlRecord) -> Result<()> {
        self.write(|c| function_urls::create(c, rec))
    }

    fn function_url(&self, function: &str, qualifier: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read(|c| function_urls::get(c, function, qualifier))
    }

    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read(|c| function_urls::by_id(c, url_id))
    }

    fn function_urls(&self, function: &str) -> Result<Vec<FunctionUrlRecord>> {
        self.read(|c| function_urls::all(c, function))
    }

    fn update_function_url(&self, rec: &FunctionUrlRecord, expected_revision: &str) -> Result<()> {
        self.write(|c| function_urls::update(c, rec, expected_revision))
    }

    fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write(|c| function_urls::delete(c, function, qualifier))
    }
}

#[cfg(test)]
mod tests;

impl ApiStore for SqliteStore {
    fn create_api(&self, rec: &ApiRecord) -> Result<()> {
        self.write(|c| apis::create_api(c, rec))
    }

    fn api(&self, api_id: &str) -> Result<Option<ApiRecord>> {
        self.read(|c| apis::api(c, api_id))
    }

    fn apis(&self, kind: &str) -> Result<Vec<ApiRecord>> {
        self.read(|c| apis::apis(c, kind))
    }

    fn put_api(&self, rec: &ApiRecord, expected_revision: &str) -> Result<()> {
        self.write(|c| apis::put_api(c, rec, expected_revision))
    }

    fn delete_api(&self, api_id: &str) -> Result<()> {
        self.write(|c| apis::delete_api(c, api_id))
    }
}
