//! The PostgreSQL store's connections: an r2d2 pool of synchronous `postgres` clients, each
//! with its own cache of prepared statements, and the schema migrations.
//!
//! - **Writes** of control-plane state run `SERIALIZABLE`: concurrent writers on any number of
//!   nodes behave as if they ran one after the other (as SQLite's single writer does), and a
//!   transaction that lost a conflict (`40001`, or a deadlock `40P01`) is run again from the
//!   start, up to [`MAX_ATTEMPTS`] times. Compare-and-swap reads also lock their row
//!   (`FOR UPDATE`), so two writers of one record wait for each other rather than abort.
//! - **Queue bookkeeping** (leases, finished and rescheduled events) runs `READ COMMITTED`
//!   with row locks and `FOR UPDATE SKIP LOCKED`: nodes leasing at once take different events
//!   and never wait for each other.
//! - **Reads** run in a `REPEATABLE READ READ ONLY` transaction: one consistent snapshot of
//!   the last commits. A read begins after the caller's previous calls returned, so it sees
//!   everything they committed, whichever node made them.
//!
//! The `postgres` client drives its connection on a private Tokio runtime and panics when it
//! is called on a thread that runs an async runtime's tasks. Callers use the store from
//! blocking threads (`spawn_blocking`), as the standards require of every store; as a safety
//! net, a call made on a runtime thread all the same is moved off it ([`off_runtime`]).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::{Result, StoreError};

/// Schema migrations of the PostgreSQL store, applied in order; `kindling_schema` records how
/// many ran. They mirror the SQLite migrations (`migrations/`) table for table.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_core.sql"),
    include_str!("../../migrations/postgres/0010_services.sql"),
    include_str!("../../migrations/postgres/0011_nodes.sql"),
    include_str!("../../migrations/postgres/0060_concurrency_grants.sql"),
    include_str!("../../migrations/postgres/0065_warm_targets.sql"),
    include_str!("../../migrations/postgres/0070_shared_stacks.sql"),
    include_str!("../../migrations/postgres/0071_object_bytes.sql"),
];

/// Times a serializable write is attempted before its conflict is reported.
pub(super) const MAX_ATTEMPTS: u32 = 8;

/// How long a caller waits for a free connection before the store reports it unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the pool keeps at most, unless the caller chooses.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// The largest pool a node may ask for: PostgreSQL's own default `max_connections` is 100, and
/// a pool larger than this is a mistake, not a setting (a server configured for more serves
/// several nodes of a smaller pool each).
pub const MAX_POOL_SIZE: u32 = 1000;

/// A pooled client and the statements prepared on it (prepared once per connection: every
/// later call of the same SQL is one round trip).
pub(super) struct PgConn {
    /// `Some` until the connection is dropped.
    client: Option<Client>,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    fn client(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or(StoreError::Invalid("the connection was closed"))
    }
}

impl Drop for PgConn {
    /// Closing a client blocks on its private runtime, which panics on a thread that runs an
    /// async runtime (a store dropped at shutdown): there it closes on a thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("pg-close".into())
                    .spawn(move || drop(client));
            } else {
                drop(client);
            }
        }
    }
}

/// Opens connections for the pool.
pub(super) struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: Some(self.config.connect(NoTls)?),
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        match conn.client.as_mut() {
            Some(c) => c.simple_query("").map(|_| ()),
            None => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.as_ref().is_none_or(Client::is_closed)
    }
}

/// How a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Serializable, retried on conflicts.
    Write,
    /// Read committed with explicit row locks (queue bookkeeping).
    Queue,
    /// A read-only snapshot.
    Read,
}

/// One transaction with the statement cache of its connection.
pub(super) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl Tx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    pub fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.tx.query(&s, params)?)
    }

    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.tx.query_opt(&s, params)?)
    }

    pub fn query_one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.statement(sql)?;
        Ok(self.tx.query_one(&s, params)?)
    }

    /// Rows changed.
    pub fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.statement(sql)?;
        Ok(self.tx.execute(&s, params)?)
    }

    /// Whether a query returns a row.
    pub fn exists(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<bool> {
        Ok(self.query_opt(sql, params)?.is_some())
    }
}

/// The pool of one store.
pub(super) struct Connections {
    pool: r2d2::Pool<Manager>,
    config: postgres::Config,
}

impl Connections {
    /// Connects to `url` (`postgres://user@host:port/db`), applies pending migrations and keeps
    /// up to `size` connections (1 to [`MAX_POOL_SIZE`]).
    pub fn open(url: &str, size: u32) -> Result<Self> {
        if !(1..=MAX_POOL_SIZE).contains(&size) {
            return Err(StoreError::Invalid(
                "the PostgreSQL pool size must be 1 to 1000 connections",
            ));
        }
        let mut config = postgres::Config::from_str(url).map_err(StoreError::from)?;
        if config.get_application_name().is_none() {
            config.application_name("kindling");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let manager = Manager {
            config: config.clone(),
        };
        let pool = off_runtime(|| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .connection_timeout(CHECKOUT_TIMEOUT)
                // A broken connection is found by `has_broken` when it is returned; checking
                // each checkout would cost a round trip per call.
                .test_on_check_out(false)
                .error_handler(Box::new(LogErrors))
                .build(manager)
                .map_err(StoreError::Unavailable)
        })?;
        let conns = Self { pool, config };
        conns.migrate()?;
        Ok(conns)
    }

    /// The connection settings (for the change listener's own connection).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// Runs `f` in one transaction of `mode`, committed only when it succeeds; a serializable
    /// write that lost a conflict runs again (so `f` must not have effects outside it).
    pub fn run<T: Send>(
        &self,
        mode: Mode,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut conn = self.pool.get().map_err(StoreError::Unavailable)?;
            let mut attempt = 1;
            loop {
                match run_once(&mut conn, mode, &mut f) {
                    Err(e) if e.is_conflict() && attempt < MAX_ATTEMPTS => {
                        // Back off a little (and differently per caller) before the next try.
                        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
                        std::thread::sleep(Duration::from_millis(u64::from(attempt) + jitter));
                        attempt += 1;
                    }
                    out => return out,
                }
            }
        })
    }

    /// Runs one statement on its own, outside an explicit transaction: PostgreSQL commits it
    /// when it completes (atomically, as any statement), so it costs one round trip instead of
    /// the three of `BEGIN`, the statement and `COMMIT`. Prepared once per connection, like
    /// the statements of [`Tx`]. Returns the rows changed.
    pub fn execute_autocommit(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        off_runtime(|| {
            let mut conn = self.pool.get().map_err(StoreError::Unavailable)?;
            let PgConn { client, statements } = &mut *conn;
            let client = client
                .as_mut()
                .ok_or(StoreError::Invalid("the connection was closed"))?;
            let statement = match statements.get(sql) {
                Some(s) => s.clone(),
                None => {
                    let s = client.prepare(sql)?;
                    statements.insert(sql, s.clone());
                    s
                }
            };
            Ok(client.execute(&statement, params)?)
        })
    }

    /// Runs plain SQL on a pooled connection outside any transaction (statements that cannot
    /// run in one, such as waiting for acknowledgements between polls).
    pub fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut conn = self.pool.get().map_err(StoreError::Unavailable)?;
            f(conn.client()?)
        })
    }

    /// Applies the migrations not yet applied, all in one transaction that holds an advisory
    /// lock (nodes starting at once against a new database do not both migrate it).
    fn migrate(&self) -> Result<()> {
        off_runtime(|| {
            let mut conn = self.pool.get().map_err(StoreError::Unavailable)?;
            let mut tx = conn.client()?.transaction()?;
            tx.batch_execute(
                "SELECT pg_advisory_xact_lock(7361524893);
                 CREATE TABLE IF NOT EXISTS kindling_schema (version INTEGER NOT NULL);",
            )?;
            let applied: Option<i32> = tx
                .query_opt("SELECT version FROM kindling_schema", &[])?
                .map(|r| r.get(0));
            if applied.is_none() {
                tx.execute("INSERT INTO kindling_schema (version) VALUES (0)", &[])?;
            }
            let applied = applied.unwrap_or(0).max(0) as usize;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                let version = i + 1;
                tx.batch_execute(sql)
                    .and_then(|()| {
                        tx.execute(
                            "UPDATE kindling_schema SET version = $1",
                            &[&(version as i32)],
                        )
                        .map(|_| ())
                    })
                    .map_err(|source| StoreError::PgMigration { version, source })?;
                tracing::info!(migration = version, "applied PostgreSQL store migration");
            }
            tx.commit()?;
            Ok(())
        })
    }
}

fn run_once<T>(
    conn: &mut PgConn,
    mode: Mode,
    f: &mut impl FnMut(&mut Tx<'_>) -> Result<T>,
) -> Result<T> {
    let PgConn { client, statements } = conn;
    let client = client
        .as_mut()
        .ok_or(StoreError::Invalid("the connection was closed"))?;
    let (level, read_only) = match mode {
        Mode::Write => (IsolationLevel::Serializable, false),
        Mode::Queue => (IsolationLevel::ReadCommitted, false),
        Mode::Read => (IsolationLevel::RepeatableRead, true),
    };
    let tx = client
        .build_transaction()
        .isolation_level(level)
        .read_only(read_only)
        .start()?;
    let mut tx = Tx { tx, statements };
    let out = f(&mut tx)?;
    tx.tx.commit()?;
    Ok(out)
}

/// Pool errors (connections refused) are logged once each, not only returned to a caller.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(error = %error, "PostgreSQL connection failed");
    }
}

/// Turns the safety net of [`off_runtime`] off, process-wide: a store call made on an async
/// runtime's worker then panics (the `postgres` client's own check) instead of being moved
/// off it, which finds callers that skipped `spawn_blocking` (a test setting).
pub(super) static STRICT_BLOCKING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Runs `f` where the synchronous client may block: on the calling thread unless it runs an
/// async runtime's tasks. On a multi-threaded runtime's worker the call is `block_in_place`
/// (the worker's other tasks move to another thread); on a current-thread runtime it runs on
/// a scoped thread of its own.
pub(super) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if STRICT_BLOCKING.load(std::sync::atomic::Ordering::Relaxed) {
        return f();
    }
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(handle) => match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
            _ => std::thread::scope(|s| match s.spawn(f).join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }),
        },
    }
}
