//! The store's SQLite connections: one writer for durable commits, one writer for the queue's
//! relaxed bookkeeping, and a small pool of readers.
//!
//! - **Durable writer** (`synchronous=FULL`): every commit fsyncs the WAL before it returns.
//!   Control-plane writes and accepting asynchronous events go here.
//! - **Relaxed writer** (`synchronous=NORMAL`): commits reach the WAL (so they survive a crash of
//!   Kindling) but are fsync'd only by the next durable commit or checkpoint. The WAL is one
//!   append-only file and an fsync covers all of it, so a durable commit also makes every earlier
//!   relaxed commit durable: a power loss can only drop a *suffix* of relaxed commits, never one
//!   before a durable commit. Only queue bookkeeping (leases, finished and rescheduled events)
//!   goes here, where losing that suffix makes events run again (at-least-once).
//! - **Readers** (`query_only`): WAL lets them read the last committed state while a writer is
//!   in a transaction or an fsync, so reads never wait for writes. A read transaction begins
//!   after the caller's previous calls returned, so it sees everything they committed.
//!
//! Each connection keeps its settings for its whole life; nothing is switched per call. The two
//! writers share one mutex, since SQLite admits one writer at a time anyway; write transactions
//! begin `IMMEDIATE`, so a writer in another process makes them wait (busy timeout) instead of
//! failing at their first write. An in-memory database (tests) has a single connection for
//! everything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::{Result, StoreError};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_async.sql"),
    include_str!("../../migrations/0003_trace_header.sql"),
    include_str!("../../migrations/0004_objects.sql"),
    include_str!("../../migrations/0005_messaging.sql"),
    include_str!("../../migrations/0030_apigateway.sql"),
    include_str!("../../migrations/0031_function_urls.sql"),
    include_str!("../../migrations/0040_event_source_mappings.sql"),
    include_str!("../../migrations/0012_deploy.sql"),
    include_str!("../../migrations/0013_schedules.sql"),
    include_str!("../../migrations/0070_stack_revisions.sql"),
];

/// How long a connection waits for another process's lock before failing with `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections opened for a file database.
pub(super) const DEFAULT_READERS: usize = 4;

/// How a write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// fsync'd before the call returns.
    Full,
    /// In the WAL at once, fsync'd with the next durable commit or checkpoint.
    Relaxed,
}

struct Writers {
    durable: Connection,
    /// `None` for an in-memory database, where `durable` serves every call.
    relaxed: Option<Connection>,
}

/// Reader connections, each used by one call at a time.
struct ReaderPool {
    conns: Vec<Mutex<Connection>>,
    /// Where a caller that found every reader busy queues up next (round robin).
    next: AtomicUsize,
}

impl ReaderPool {
    /// Runs `f` on an idle reader, or on the next one in turn when all are busy.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        for conn in &self.conns {
            match conn.try_lock() {
                Ok(mut c) => return f(&mut c),
                Err(TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        f(&mut lock(&self.conns[i]))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// All connections of one store.
pub(super) struct Connections {
    writers: Mutex<Writers>,
    readers: Option<ReaderPool>,
    /// The WAL file (`<db>-wal`) of a file database, fsync'd by [`Self::sync`].
    wal: Option<PathBuf>,
}

impl Connections {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and opens
    /// `readers` reader connections (at least one).
    pub fn open(path: &Path, readers: usize) -> Result<Self> {
        let mut durable = Connection::open(path)?;
        durable.pragma_update(None, "journal_mode", "WAL")?;
        configure_writer(&durable, Durability::Full)?;
        migrate(&mut durable)?;
        let relaxed = Connection::open(path)?;
        configure_writer(&relaxed, Durability::Relaxed)?;
        let conns = (0..readers.max(1))
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writers: Mutex::new(Writers {
                durable,
                relaxed: Some(relaxed),
            }),
            readers: Some(ReaderPool {
                conns,
                next: AtomicUsize::new(0),
            }),
            wal: Some(wal_path(path)),
        })
    }

    /// A private in-memory database behind a single connection.
    pub fn in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure_writer(&conn, Durability::Full)?;
        migrate(&mut conn)?;
        Ok(Self {
            writers: Mutex::new(Writers {
                durable: conn,
                relaxed: None,
            }),
            readers: None,
            wal: None,
        })
    }

    /// Runs `f` in one write transaction, committed (with `durability`) only when it succeeds.
    pub fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut writers = lock(&self.writers);
        let Writers { durable, relaxed } = &mut *writers;
        let conn = match (durability, relaxed.as_mut()) {
            (Durability::Relaxed, Some(relaxed)) => relaxed,
            _ => durable,
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Makes every commit so far durable: one fsync of the WAL, the file every commit of both
    /// writers appends to (an fsync applies to the file, whichever descriptor asks; a
    /// checkpoint fsyncs the WAL before it copies frames and the database after, so frames no
    /// longer in the WAL are durable already). Takes no lock: writers keep committing
    /// meanwhile, and this covers at least every commit that returned before it was called.
    /// A relaxed commit followed by this is as durable as a durable commit, but readers see it
    /// before the fsync (a queue's receivers are woken without waiting for the disk).
    pub fn sync(&self) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        match std::fs::File::open(wal) {
            Ok(f) => f.sync_data().map_err(StoreError::Sync),
            // No WAL yet: nothing was committed to it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Sync(e)),
        }
    }

    /// Runs `f` in one read transaction (a consistent snapshot of the last commit), without
    /// waiting for writers.
    pub fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        match &self.readers {
            Some(pool) => pool.with(|conn| run_read(conn, f)),
            None => run_read(&mut lock(&self.writers).durable, f),
        }
    }

    /// The `synchronous` setting of each writer (`durable`, `relaxed`), as SQLite reports it.
    #[cfg(test)]
    pub fn writer_synchronous(&self) -> Result<(i64, Option<i64>)> {
        let writers = lock(&self.writers);
        let get = |c: &Connection| c.pragma_query_value(None, "synchronous", |r| r.get(0));
        Ok((
            get(&writers.durable)?,
            writers.relaxed.as_ref().map(get).transpose()?,
        ))
    }
}

fn run_read<T>(conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let out = f(&tx)?;
    // Ends the read transaction; nothing was written.
    tx.commit()?;
    Ok(out)
}

/// SQLite's name for a database's write-ahead log.
fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn configure_writer(conn: &Connection, durability: Durability) -> Result<()> {
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Applies the migrations not yet applied, all in one transaction that holds the write lock
/// (two processes opening the same new database do not both migrate it).
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = i + 1;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(migration = version, "applied store migration");
    }
    tx.commit()?;
    Ok(())
}
