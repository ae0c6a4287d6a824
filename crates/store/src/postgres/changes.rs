//! Telling every node that control-plane state changed, so that no node serves what it
//! cached from before a write once that write has returned.
//!
//! The protocol (all in PostgreSQL, no node addresses needed):
//! 1. A control-plane write takes, as its last statement, an advisory lock that serializes
//!    such writes across nodes, the next number of the `control_version` sequence, and sends
//!    it with `pg_notify('kindling_control', number)`. Holding the lock until commit makes
//!    commit order the order of the numbers, and NOTIFY is delivered at commit.
//! 2. Each node runs a listener ([`ChangeListener`]): a thread with its own connection, named
//!    `kindling-listener`, `LISTEN`ing on the channel. On a notification it calls the node's
//!    callback (which drops its caches), *then* records the number in `control_acks` under its
//!    connection's backend pid.
//! 3. After its commit, the writer polls until every `kindling-listener` connection of the
//!    database (`pg_stat_activity`) has acknowledged its number, for at most the ack timeout.
//!    So when a write returns, every connected node has dropped its caches; a node whose
//!    listener is not connected does not cache at all ([`Change::Lost`] until [`Change::Resync`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::PgStore;
use super::connections::{Connections, Tx, off_runtime};
use crate::{Result, StoreError};

/// The NOTIFY channel of control-plane changes.
const CHANNEL: &str = "kindling_control";
/// `application_name` of listener connections; writers wait for these.
const LISTENER_NAME: &str = "kindling-listener";
/// Serializes control-plane writes' change numbers with their commits.
const CONTROL_LOCK: i64 = 7_361_524_895;

/// What a node's caches learn from the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Another write committed (its change number): drop what is cached.
    Committed(u64),
    /// The listener (re)connected: drop what is cached; caching may resume.
    Resync,
    /// The listener lost its connection: writes are no longer announced to this node, so
    /// nothing may be cached until the next `Resync`.
    Lost,
}

/// Takes the next change number and announces it at commit (the last statement of a write).
pub(super) fn announce(tx: &mut Tx<'_>) -> Result<u64> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONTROL_LOCK])?;
    let version: i64 = tx
        .query_one("SELECT nextval('control_version')", &[])?
        .get(0);
    tx.execute(
        "SELECT pg_notify('kindling_control', $1)",
        &[&version.to_string()],
    )?;
    Ok(version.max(0) as u64)
}

/// Waits until every listening node acknowledged `version`, for at most `timeout`.
pub(super) fn await_acks(conns: &Connections, version: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    let mut pause = Duration::from_micros(200);
    let outcome = conns.with_client(|client| {
        loop {
            let pending: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity a
                     WHERE a.datname = current_database() AND a.application_name = $1
                       AND NOT EXISTS (SELECT 1 FROM control_acks k
                                       WHERE k.listener_pid = a.pid AND k.version >= $2)",
                    &[&LISTENER_NAME, &version],
                )?
                .get(0);
            if pending == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pending,
                    version,
                    "nodes did not acknowledge a control-plane change in time; they may serve \
                     cached state until they do"
                );
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    });
    if let Err(e) = outcome {
        tracing::warn!(error = %e, version, "could not wait for nodes to see a control-plane change");
    }
}

/// The listener thread; stopped (and joined) when dropped.
pub struct ChangeListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the listener waits for a notification before checking whether it should stop.
const POLL: Duration = Duration::from_millis(250);
/// Pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

impl PgStore {
    /// Starts this node's listener: `on_change` is called on the listener's thread for every
    /// control-plane write of any node (including this one), before the write returns to its
    /// caller. It is first called with [`Change::Resync`] once listening, and with
    /// [`Change::Lost`] when the connection breaks (then `Resync` again after reconnecting).
    pub fn listen_changes(
        &self,
        on_change: impl Fn(Change) + Send + Sync + 'static,
    ) -> Result<ChangeListener> {
        let mut config = self.conns.config().clone();
        config.application_name(LISTENER_NAME);
        // A listener whose host vanished must leave `pg_stat_activity` soon, or every write
        // would wait the whole ack timeout for it.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        // The first connection is made here, so that a bad configuration fails the caller.
        let first = off_runtime(|| start_listening(&config, &on_change))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pg-listener".into())
                .spawn(move || listen_loop(first, &config, &on_change, &stop))
                .map_err(|_| StoreError::Invalid("cannot start the change listener thread"))?
        };
        Ok(ChangeListener {
            stop,
            thread: Some(thread),
        })
    }
}

/// Connects, listens, and acknowledges the last committed change number, calling `Resync`
/// while no control-plane write can commit (under the writers' lock): any write committed
/// before is covered by the resync, any after is notified.
fn start_listening(config: &postgres::Config, on_change: &impl Fn(Change)) -> Result<Client> {
    let mut client = config.connect(NoTls)?;
    // The server's side of the same: it drops the session of a vanished node within ~11 s.
    client.batch_execute(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
         SET tcp_keepalives_count = 3",
    )?;
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONTROL_LOCK])?;
    let last: i64 = tx
        .query_one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM control_version",
            &[],
        )?
        .get(0);
    on_change(Change::Resync);
    tx.execute(
        "INSERT INTO control_acks (listener_pid, version) VALUES (pg_backend_pid(), $1)
         ON CONFLICT (listener_pid) DO UPDATE SET version = excluded.version",
        &[&last],
    )?;
    tx.commit()?;
    Ok(client)
}

fn listen_loop(
    first: Client,
    config: &postgres::Config,
    on_change: &impl Fn(Change),
    stop: &AtomicBool,
) {
    let mut client = Some(first);
    let mut last_ping = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let Some(c) = client.as_mut() else {
            std::thread::sleep(RECONNECT_PAUSE);
            match start_listening(config, on_change) {
                Ok(c) => {
                    tracing::info!("control-plane change listener reconnected");
                    client = Some(c);
                    last_ping = Instant::now();
                }
                Err(e) => tracing::debug!(error = %e, "change listener cannot reconnect yet"),
            }
            continue;
        };
        let mut outcome = handle_next(c, on_change);
        // A quiet connection is checked now and then: a broken one must stop caching.
        if outcome.is_ok() && last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            outcome = c.simple_query("").map(|_| ()).map_err(StoreError::from);
        }
        if outcome.is_err() || c.is_closed() {
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "control-plane change listener lost its connection; caching stops until it reconnects");
            }
            on_change(Change::Lost);
            client = None;
        }
    }
}

/// How often an idle listener checks that its connection still works.
const PING_EVERY: Duration = Duration::from_secs(2);

/// Waits up to [`POLL`] for notifications; when some arrived, drops caches once for all of
/// them, then acknowledges the highest number.
fn handle_next(client: &mut Client, on_change: &impl Fn(Change)) -> Result<()> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut payloads = Vec::new();
    {
        let mut n = client.notifications();
        if let Some(m) = n.timeout_iter(POLL).next()? {
            payloads.push(m.payload().to_string());
        }
        // Whatever else already arrived, without waiting.
        let mut more = n.iter();
        while let Some(m) = more.next()? {
            payloads.push(m.payload().to_string());
        }
    }
    let Some(highest) = payloads.iter().filter_map(|p| p.parse::<u64>().ok()).max() else {
        return Ok(());
    };
    on_change(Change::Committed(highest));
    client.execute(
        "INSERT INTO control_acks (listener_pid, version) VALUES (pg_backend_pid(), $1)
         ON CONFLICT (listener_pid) DO UPDATE
           SET version = GREATEST(control_acks.version, excluded.version)",
        &[&i64::try_from(highest).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}
