//! The embedded SQLite implementation of [`Store`] (WAL, synchronous=FULL, foreign keys).

use std::path::Path;
use std::sync::Mutex;

use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter, EventInvokeConfig};
use kindling_model::function::{FunctionMeta, VersionNumber, VersionRecord};
use kindling_model::layer::LayerVersionRecord;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod queue;

use crate::{AccountUsage, PolicyRecord, Result, Store, StoreError};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_async.sql"),
    include_str!("../migrations/0003_trace_header.sql"),
];

/// SQLite-backed store. One connection behind a mutex: SQLite serializes writers anyway and
/// every call is short.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

pub(crate) fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    Ok(serde_json::from_str(s)?)
}

fn version_key(v: VersionNumber) -> i64 {
    v.map_or(0, |n| n as i64)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tx = conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tracing::info!(migration = i + 1, "applied store migration");
        }
        tx.commit()?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one transaction, committed only when it succeeds.
    fn tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Like [`Self::tx`], but the commit is not fsync'd on its own (`synchronous=NORMAL`): it is
    /// in the WAL at once, so it survives a crash of Kindling, and reaches the disk with the
    /// next durable commit or checkpoint. For the queue's own bookkeeping (leases, finished and
    /// rescheduled events), where a loss on power failure only makes an event run again,
    /// which at-least-once delivery allows. Accepting events stays fully durable.
    fn relaxed_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = (|| {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        conn.pragma_update(None, "synchronous", "FULL")?;
        result
    }
}

fn insert_version(tx: &Transaction<'_>, rec: &VersionRecord) -> Result<()> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO function_versions (function_name, version, revision_id, code_size, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.function_name,
            version_key(rec.version),
            rec.revision_id,
            rec.code.size as i64,
            to_json(rec)?
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// The JSON record of the one row a query returns, if any.
fn record<T: DeserializeOwned>(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<T>> {
    tx.query_row(sql, params, |r| r.get::<_, String>(0))
        .optional()?
        .map(|s| from_json(&s))
        .transpose()
}

fn read_meta(tx: &Connection, name: &str) -> Result<Option<FunctionMeta>> {
    record(tx, "SELECT meta FROM functions WHERE name = ?1", [name])
}

fn write_meta(tx: &Connection, meta: &FunctionMeta) -> Result<()> {
    let n = tx.execute(
        "UPDATE functions SET meta = ?2 WHERE name = ?1",
        params![meta.name, to_json(meta)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn latest_revision(tx: &Connection, name: &str) -> Result<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT revision_id FROM function_versions WHERE function_name = ?1 AND version = 0",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

fn version_exists(tx: &Connection, name: &str, version: &str) -> Result<bool> {
    let key: i64 = if version == "$LATEST" {
        0
    } else {
        match version.parse() {
            Ok(v) => v,
            Err(_) => return Ok(false),
        }
    };
    Ok(tx
        .query_row(
            "SELECT 1 FROM function_versions WHERE function_name = ?1 AND version = ?2",
            params![name, key],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(crate) fn collect<T: DeserializeOwned>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(from_json(&row?)?);
    }
    Ok(out)
}

fn routing_version(rec: &AliasRecord) -> Option<&str> {
    rec.weights.keys().next().map(String::as_str)
}

impl Store for SqliteStore {
    fn create_function(
        &self,
        meta: &FunctionMeta,
        latest: &VersionRecord,
        published: Option<&VersionRecord>,
    ) -> Result<()> {
        self.tx(|tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO functions (name, meta) VALUES (?1, ?2)",
                params![meta.name, to_json(meta)?],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict);
            }
            insert_version(tx, latest)?;
            if let Some(p) = published {
                insert_version(tx, p)?;
            }
            Ok(())
        })
    }

    fn function(&self, name: &str) -> Result<Option<FunctionMeta>> {
        self.tx(|tx| read_meta(tx, name))
    }

    fn put_function_meta(&self, meta: &FunctionMeta) -> Result<()> {
        self.tx(|tx| write_meta(tx, meta))
    }

    fn version(&self, name: &str, version: VersionNumber) -> Result<Option<VersionRecord>> {
        self.tx(|tx| {
            record(
                tx,
                "SELECT record FROM function_versions WHERE function_name = ?1 AND version = ?2",
                params![name, version_key(version)],
            )
        })
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record FROM function_versions WHERE function_name = ?1 ORDER BY version",
            )?;
            collect(&mut stmt, [name])
        })
    }

    fn list_functions(
        &self,
        after: Option<(&str, u64)>,
        all_versions: bool,
        limit: usize,
    ) -> Result<Vec<VersionRecord>> {
        let (after_name, after_version) = after.map_or(("", -1), |(n, v)| (n, v as i64));
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record FROM function_versions
                 WHERE (function_name > ?1 OR (function_name = ?1 AND version > ?2))
                   AND (?3 OR version = 0)
                 ORDER BY function_name, version LIMIT ?4",
            )?;
            collect(
                &mut stmt,
                params![after_name, after_version, all_versions, limit as i64],
            )
        })
    }

    fn update_latest(&self, rec: &VersionRecord, expected_revision: &str) -> Result<()> {
        self.tx(|tx| {
            match latest_revision(tx, &rec.function_name)? {
                None => return Err(StoreError::NotFound),
                Some(r) if r != expected_revision => return Err(StoreError::RevisionMismatch),
                Some(_) => {}
            }
            tx.execute(
                "UPDATE function_versions SET revision_id = ?2, code_size = ?3, record = ?4
                 WHERE function_name = ?1 AND version = 0",
                params![
                    rec.function_name,
                    rec.revision_id,
                    rec.code.size as i64,
                    to_json(rec)?
                ],
            )?;
            Ok(())
        })
    }

    fn insert_version(&self, rec: &VersionRecord, expected_latest_revision: &str) -> Result<()> {
        let Some(number) = rec.version else {
            return Err(StoreError::Conflict);
        };
        self.tx(|tx| {
            match latest_revision(tx, &rec.function_name)? {
                None => return Err(StoreError::NotFound),
                Some(r) if r != expected_latest_revision => {
                    return Err(StoreError::RevisionMismatch);
                }
                Some(_) => {}
            }
            let mut meta = read_meta(tx, &rec.function_name)?.ok_or(StoreError::NotFound)?;
            if number <= meta.last_version {
                return Err(StoreError::Conflict);
            }
            insert_version(tx, rec)?;
            meta.last_version = number;
            write_meta(tx, &meta)
        })
    }

    fn delete_function(&self, name: &str) -> Result<()> {
        self.tx(|tx| {
            let n = tx.execute("DELETE FROM functions WHERE name = ?1", [name])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn delete_version(&self, name: &str, version: u64) -> Result<()> {
        self.tx(|tx| {
            let v = version.to_string();
            let alias: Option<String> = tx
                .query_row(
                    "SELECT name FROM aliases WHERE function_name = ?1
                       AND (primary_version = ?2 OR routing_version = ?2) LIMIT 1",
                    params![name, v],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(alias) = alias {
                return Err(StoreError::InUse(alias));
            }
            let n = tx.execute(
                "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2",
                params![name, version as i64],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
                params![name, v],
            )?;
            Ok(())
        })
    }

    fn set_reserved_concurrency(
        &self,
        name: &str,
        value: Option<u32>,
        max_total_reserved: u64,
    ) -> Result<()> {
        self.tx(|tx| {
            let mut meta = read_meta(tx, name)?.ok_or(StoreError::NotFound)?;
            if let Some(v) = value {
                let mut others = 0u64;
                let mut stmt = tx.prepare("SELECT meta FROM functions WHERE name != ?1")?;
                for m in collect::<FunctionMeta>(&mut stmt, [name])? {
                    others += u64::from(m.reserved_concurrency.unwrap_or(0));
                }
                if others + u64::from(v) > max_total_reserved {
                    return Err(StoreError::LimitExceeded);
                }
            }
            meta.reserved_concurrency = value;
            write_meta(tx, &meta)
        })
    }

    fn account_usage(&self) -> Result<AccountUsage> {
        self.tx(|tx| {
            let mut usage = AccountUsage::default();
            let mut stmt = tx.prepare("SELECT meta FROM functions")?;
            for m in collect::<FunctionMeta>(&mut stmt, [])? {
                usage.function_count += 1;
                usage.reserved_concurrency += u64::from(m.reserved_concurrency.unwrap_or(0));
            }
            let fn_code: i64 = tx.query_row(
                "SELECT COALESCE(SUM(code_size), 0) FROM function_versions",
                [],
                |r| r.get(0),
            )?;
            let layer_code: i64 = tx.query_row(
                "SELECT COALESCE(SUM(code_size), 0) FROM layer_versions WHERE deleted = 0",
                [],
                |r| r.get(0),
            )?;
            usage.total_code_size = (fn_code + layer_code) as u64;
            Ok(usage)
        })
    }

    fn create_alias(&self, rec: &AliasRecord) -> Result<()> {
        self.tx(|tx| {
            if read_meta(tx, &rec.function_name)?.is_none() {
                return Err(StoreError::NotFound);
            }
            if !version_exists(tx, &rec.function_name, &rec.function_version)?
                || routing_version(rec)
                    .map(|v| version_exists(tx, &rec.function_name, v))
                    .transpose()?
                    == Some(false)
            {
                return Err(StoreError::NotFound);
            }
            let n = tx.execute(
                "INSERT OR IGNORE INTO aliases
                   (function_name, name, primary_version, routing_version, revision_id, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    rec.function_name,
                    rec.name,
                    rec.function_version,
                    routing_version(rec),
                    rec.revision_id,
                    to_json(rec)?
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
    }

    fn alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>> {
        self.tx(|tx| {
            record(
                tx,
                "SELECT record FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, name],
            )
        })
    }

    fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>> {
        self.tx(|tx| {
            let mut stmt =
                tx.prepare("SELECT record FROM aliases WHERE function_name = ?1 ORDER BY name")?;
            collect(&mut stmt, [function])
        })
    }

    fn update_alias(&self, rec: &AliasRecord, expected_revision: &str) -> Result<()> {
        self.tx(|tx| {
            let current: Option<String> = tx
                .query_row(
                    "SELECT revision_id FROM aliases WHERE function_name = ?1 AND name = ?2",
                    params![rec.function_name, rec.name],
                    |r| r.get(0),
                )
                .optional()?;
            match current {
                None => return Err(StoreError::NotFound),
                Some(r) if r != expected_revision => return Err(StoreError::RevisionMismatch),
                Some(_) => {}
            }
            if !version_exists(tx, &rec.function_name, &rec.function_version)?
                || routing_version(rec)
                    .map(|v| version_exists(tx, &rec.function_name, v))
                    .transpose()?
                    == Some(false)
            {
                return Err(StoreError::InUse("missing version".into()));
            }
            tx.execute(
                "UPDATE aliases SET primary_version = ?3, routing_version = ?4, revision_id = ?5,
                   record = ?6 WHERE function_name = ?1 AND name = ?2",
                params![
                    rec.function_name,
                    rec.name,
                    rec.function_version,
                    routing_version(rec),
                    rec.revision_id,
                    to_json(rec)?
                ],
            )?;
            Ok(())
        })
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<()> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, name],
            )?;
            tx.execute(
                "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
                params![function, name],
            )?;
            Ok(())
        })
    }

    fn policy(&self, function: &str, qualifier: &str) -> Result<Option<PolicyRecord>> {
        self.tx(|tx| {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT revision_id, statements FROM policies
                     WHERE function_name = ?1 AND qualifier = ?2",
                    params![function, qualifier],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(revision_id, statements)| {
                Ok(PolicyRecord {
                    revision_id,
                    statements: from_json(&statements)?,
                })
            })
            .transpose()
        })
    }

    fn put_policy(
        &self,
        function: &str,
        qualifier: &str,
        policy: &PolicyRecord,
        expected: Option<&str>,
    ) -> Result<()> {
        self.tx(|tx| {
            let current: Option<String> = tx
                .query_row(
                    "SELECT revision_id FROM policies WHERE function_name = ?1 AND qualifier = ?2",
                    params![function, qualifier],
                    |r| r.get(0),
                )
                .optional()?;
            if current.as_deref() != expected {
                return Err(StoreError::RevisionMismatch);
            }
            if policy.statements.is_empty() {
                tx.execute(
                    "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
                    params![function, qualifier],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO policies (function_name, qualifier, revision_id, statements)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (function_name, qualifier)
                     DO UPDATE SET revision_id = excluded.revision_id,
                                   statements = excluded.statements",
                    params![
                        function,
                        qualifier,
                        policy.revision_id,
                        to_json(&policy.statements)?
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn publish_layer_version(&self, rec: &LayerVersionRecord) -> Result<u64> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO layers (name, last_version) VALUES (?1, 1)
                 ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1",
                [&rec.name],
            )?;
            let version: i64 = tx.query_row(
                "SELECT last_version FROM layers WHERE name = ?1",
                [&rec.name],
                |r| r.get(0),
            )?;
            let mut rec = rec.clone();
            rec.version = version as u64;
            tx.execute(
                "INSERT INTO layer_versions (name, version, code_size, record)
                 VALUES (?1, ?2, ?3, ?4)",
                params![rec.name, version, rec.code.size as i64, to_json(&rec)?],
            )?;
            Ok(rec.version)
        })
    }

    fn layer_version(
        &self,
        name: &str,
        version: u64,
        include_deleted: bool,
    ) -> Result<Option<LayerVersionRecord>> {
        self.tx(|tx| {
            record(
                tx,
                "SELECT record FROM layer_versions
                 WHERE name = ?1 AND version = ?2 AND (?3 OR deleted = 0)",
                params![name, version as i64, include_deleted],
            )
        })
    }

    fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersionRecord>> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record FROM layer_versions WHERE name = ?1 AND deleted = 0
                 ORDER BY version DESC",
            )?;
            collect(&mut stmt, [name])
        })
    }

    fn layer_names(&self) -> Result<Vec<String>> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT name FROM layer_versions WHERE deleted = 0 ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE layer_versions SET deleted = 1 WHERE name = ?1 AND version = ?2",
                params![name, version as i64],
            )?;
            Ok(())
        })
    }

    fn enqueue_events(&self, events: &[AsyncEvent]) -> Result<()> {
        self.tx(|tx| queue::enqueue(tx, events))
    }

    fn lease_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncEvent>> {
        self.relaxed_tx(|tx| queue::lease(tx, owner, now_ms, lease_ms, limit))
    }

    fn reschedule_event(
        &self,
        id: &str,
        owner: &str,
        attempts: u32,
        not_before_ms: i64,
        last_result: Option<&str>,
    ) -> Result<()> {
        self.relaxed_tx(|tx| {
            tx.execute(
                "UPDATE async_events SET attempts = ?3, not_before_ms = ?4, last_result = ?5,
                   lease_owner = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner, attempts, not_before_ms, last_result],
            )?;
            Ok(())
        })
    }

    fn finish_event(
        &self,
        id: &str,
        owner: &str,
        letters: &[DeadLetter],
        follow_ups: &[AsyncEvent],
    ) -> Result<()> {
        self.relaxed_tx(|tx| {
            let n = tx.execute(
                "DELETE FROM async_events WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner],
            )?;
            if n == 1 {
                queue::insert_letters(tx, letters)?;
                queue::enqueue(tx, follow_ups)?;
            }
            Ok(())
        })
    }

    fn release_leases(&self, owner: &str) -> Result<u64> {
        self.relaxed_tx(|tx| {
            Ok(tx.execute(
                "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL
                 WHERE lease_owner = ?1",
                [owner],
            )? as u64)
        })
    }

    fn next_due_ms(&self) -> Result<Option<i64>> {
        self.tx(|tx| {
            Ok(tx.query_row(
                "SELECT MIN(not_before_ms) FROM async_events WHERE lease_owner IS NULL",
                [],
                |r| r.get(0),
            )?)
        })
    }

    fn queue_stats(&self) -> Result<Vec<crate::QueueStat>> {
        self.tx(queue::stats)
    }

    fn event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<EventInvokeConfig>> {
        self.tx(|tx| {
            record(
                tx,
                "SELECT config FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
            )
        })
    }

    fn event_invoke_configs(&self, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT qualifier, config FROM event_invoke_configs WHERE function_name = ?1
                 ORDER BY qualifier",
            )?;
            let rows = stmt.query_map([function], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (q, c) = row?;
                out.push((q, from_json(&c)?));
            }
            Ok(out)
        })
    }

    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &EventInvokeConfig,
    ) -> Result<()> {
        self.tx(|tx| {
            if read_meta(tx, function)?.is_none() {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "INSERT INTO event_invoke_configs (function_name, qualifier, config)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (function_name, qualifier) DO UPDATE SET config = excluded.config",
                params![function, qualifier, to_json(config)?],
            )?;
            Ok(())
        })
    }

    fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
            )? > 0)
        })
    }

    fn dead_letters(&self, queue: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record FROM dead_letters WHERE (?1 IS NULL OR queue = ?1)
                 ORDER BY created_ms, id LIMIT ?2",
            )?;
            collect(&mut stmt, params![queue, limit as i64])
        })
    }

    fn redrive(&self, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()> {
        self.tx(|tx| {
            for id in letter_ids {
                tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
            }
            queue::enqueue(tx, events)
        })
    }
}

#[cfg(test)]
mod tests;
