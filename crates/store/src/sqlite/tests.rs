//! Tests of the SQLite store: atomicity, compare-and-swap, cascades, persistence, and reads
//! that do not wait for writers.

use std::error::Error;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::StoreError;
use crate::store_tests::{self, event, meta, version};

#[test]
fn layers_number_monotonically_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    store_tests::layers_number_monotonically(&SqliteStore::open(&path).unwrap());
    store_tests::deps_layers_are_3_and_1(&SqliteStore::open(&path).unwrap());
}

#[test]
fn a_corrupt_record_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = SqliteStore::open(&path).unwrap();
    s.create_function(&meta("f"), &version("f", None, "r1"), None)
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE functions SET meta = '{not json' WHERE name = 'f'",
        [],
    )
    .unwrap();
    let e = s.function("f").unwrap_err();
    assert!(
        matches!(&e, StoreError::CorruptRecord { record, .. } if record.ends_with("FunctionMeta")),
        "{e:?}"
    );
    assert!(
        e.source()
            .is_some_and(|c| c.to_string().contains("key must be a string"))
    );
}

/// A file-backed store in a temporary directory.
fn file_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (s, dir)
}

/// Holds a write transaction of `durability` open on another thread until told to commit.
fn hold_writer(
    s: &Arc<SqliteStore>,
    durability: Durability,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let store = Arc::clone(s);
    let holder = std::thread::spawn(move || {
        store
            .conns
            .write(durability, |tx| {
                // A real write, so the transaction holds SQLite's write lock too.
                queue::enqueue(tx, &[event("held", "f", 0)])?;
                started_tx.send(()).ok();
                // Bounded: a read that waits for this writer fails the test instead of hanging.
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
                Ok(())
            })
            .unwrap();
    });
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer started its transaction");
    (release, holder)
}

#[test]
fn reads_do_not_wait_for_a_writer_in_a_long_transaction() {
    let (s, _dir) = file_store();
    let s = Arc::new(s);
    s.create_function(&meta("f"), &version("f", None, "r1"), None)
        .unwrap();
    for durability in [Durability::Full, Durability::Relaxed] {
        let (release, holder) = hold_writer(&s, durability);
        let t = Instant::now();
        // What GetFunction and a cold invoke target read.
        let meta = s.function("f").unwrap();
        let latest = s.version("f", None).unwrap();
        let usage = s.account_usage().unwrap();
        let waited = t.elapsed();
        assert!(meta.is_some() && latest.is_some());
        assert_eq!(usage.function_count, 1);
        // The uncommitted write is not visible.
        assert!(s.queue_stats().unwrap().is_empty(), "{durability:?}");
        assert!(
            waited < Duration::from_secs(2),
            "reads waited {waited:?} for a {durability:?} writer"
        );
        release.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(s.queue_stats().unwrap()[0].depth, 1, "committed: visible");
        s.finish_event("held", "nobody", &[], &[]).unwrap();
        s.lease_events("w", 10, 1000, 1).unwrap();
        s.finish_event("held", "w", &[], &[]).unwrap();
    }
}

#[test]
fn writers_keep_their_own_durability() {
    let (s, _dir) = file_store();
    s.enqueue_events(&[event("e1", "f", 0)]).unwrap();
    s.lease_events("w", 10, 1000, 1).unwrap();
    s.reschedule_event("e1", "w", 1, 20, None).unwrap();
    s.enqueue_events(&[event("e2", "f", 0)]).unwrap();
    // FULL is 2 and NORMAL 1: neither connection was switched by the other kind of write.
    assert_eq!(s.conns.writer_synchronous().unwrap(), (2, Some(1)));
}

#[test]
fn relaxed_commits_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.enqueue_events(&[event("e1", "f", 0), event("e2", "f", 1)])
            .unwrap();
        s.lease_events("w", 10, 1000, 1).unwrap();
        s.finish_event("e1", "w", &[], &[]).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let stats = s.queue_stats().unwrap();
    assert_eq!((stats[0].depth, stats[0].in_flight), (1, 0));
}

#[test]
fn syncing_the_log_covers_relaxed_commits() {
    use crate::messaging::QueueStore;
    let (s, dir) = file_store();
    // Nothing committed to the WAL is no error, nor is an in-memory store.
    s.sync_queue_ops().unwrap();
    SqliteStore::in_memory().unwrap().sync_queue_ops().unwrap();
    s.enqueue_events(&[event("e1", "f", 0)]).unwrap();
    s.lease_events("w", 10, 1000, 1).unwrap();
    let wal = dir.path().join("state.db-wal");
    assert!(wal.exists(), "the log is {}", wal.display());
    s.sync_queue_ops().unwrap();
}

/// The shared suite's concurrency test on a file database: reads on the reader pool while
/// the writers commit (the in-memory store has a single connection).
#[test]
fn concurrent_writers_and_readers_all_succeed() {
    let (s, _dir) = file_store();
    store_tests::concurrent_writers_and_readers_all_succeed(&s);
}
