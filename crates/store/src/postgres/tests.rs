//! Tests of what only the PostgreSQL store does: shared code packages, change announcements
//! to other nodes, and errors mapped from SQLSTATEs. (The store suite shared with SQLite is
//! `store_tests.rs`.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::test_db::TestDb;
use super::*;
use crate::store_tests::{function, meta, version};
use crate::{BlobId, BlobStore, SharedBlobs, StoreError};

fn raw(db: &TestDb) -> Client {
    Client::connect(&db.url, NoTls).unwrap()
}

#[test]
fn code_blobs_are_shared_and_checked() {
    let db = TestDb::create();
    let pg: Arc<PgStore> = Arc::new(PgStore::connect_with_pool(&db.url, 2).unwrap());
    // Larger than one chunk, so that order of chunks matters.
    let bytes: Vec<u8> = (0..(9 * 1024 * 1024 + 7))
        .map(|i| (i % 251) as u8)
        .collect();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node_a = BlobStore::open(a_dir.path())
        .unwrap()
        .with_shared(pg.clone());
    let node_b = BlobStore::open(b_dir.path())
        .unwrap()
        .with_shared(pg.clone());
    let (id, _) = node_a.put(&bytes).unwrap();
    node_a.put(&bytes).unwrap();
    assert!(!node_b.exists(&id), "not copied before it is needed");
    let path = node_b.ensure(&id).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    assert_eq!(node_b.read(&id).unwrap().len(), bytes.len());

    // A package altered in the database is refused, and nothing is written locally.
    raw(&db)
        .execute(
            "UPDATE code_blob_chunks SET data = 'tampered' WHERE id = $1 AND seq = 1",
            &[&id.as_str()],
        )
        .unwrap();
    assert!(matches!(
        pg.get_blob(&id),
        Err(StoreError::BlobMismatch(ref b)) if b == id.as_str()
    ));
    let c_dir = tempfile::tempdir().unwrap();
    let node_c = BlobStore::open(c_dir.path())
        .unwrap()
        .with_shared(pg.clone());
    assert!(node_c.ensure(&id).is_err());
    assert!(!node_c.exists(&id));
    let missing = BlobId::of(b"never stored").0;
    assert_eq!(
        node_c.ensure(&missing).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

/// Records what a node's listener reported.
fn recorder() -> (
    Arc<Mutex<Vec<Change>>>,
    impl Fn(Change) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |c| sink.lock().unwrap().push(c))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_write_returns_only_after_every_node_dropped_its_caches() {
    let db = TestDb::create();
    let node_a = db.store();
    let node_b = PgStore::connect_with_pool(&db.url, 2).unwrap();
    let (seen, on_change) = recorder();
    let listener = node_b.listen_changes(on_change).unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[Change::Resync]);

    let (m, latest) = function("f");
    node_a.create_function(&m, &latest, None).unwrap();
    // No waiting: the write returned, so B has already been told.
    assert!(
        matches!(seen.lock().unwrap().last(), Some(Change::Committed(_))),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(latest.revision_id, "r1");
    for i in 2..=6 {
        let before = seen.lock().unwrap().len();
        node_a
            .update_latest(
                &version("f", None, &format!("r{i}")),
                &format!("r{}", i - 1),
            )
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            before + 1,
            "update {i} announced"
        );
    }
    let numbers: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|c| match c {
            Change::Committed(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    // Reads and queue traffic announce nothing.
    let count = seen.lock().unwrap().len();
    node_a.function("f").unwrap();
    node_a.enqueue_events(&[]).unwrap();
    assert_eq!(seen.lock().unwrap().len(), count);

    // Without listeners, a write does not wait.
    drop(listener);
    let t = Instant::now();
    node_a
        .put_function_meta(&meta("f"))
        .expect("a write with nobody listening");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn a_listener_cut_from_the_database_stops_caching_then_resynchronizes() {
    let db = TestDb::create();
    let node_b = PgStore::connect_with_pool(&db.url, 2).unwrap();
    let (seen, on_change) = recorder();
    let _listener = node_b.listen_changes(on_change).unwrap();
    let mut admin = raw(&db);
    let killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'kindling-listener'",
            &[],
        )
        .unwrap();
    assert_eq!(killed, 1);
    wait_until("the listener to notice and reconnect", || {
        let seen = seen.lock().unwrap();
        seen.iter()
            .position(|c| *c == Change::Lost)
            .is_some_and(|lost| seen[lost + 1..].contains(&Change::Resync))
    });
    // Reconnected: writes are announced again.
    let (m, latest) = function("g");
    db.store().create_function(&m, &latest, None).unwrap();
    assert!(matches!(
        seen.lock().unwrap().last(),
        Some(Change::Committed(_))
    ));
}

#[test]
fn sqlstates_map_to_store_errors() {
    let db = TestDb::create();
    let mut c = raw(&db);
    c.batch_execute("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a')")
        .unwrap();
    let dup = c.execute("INSERT INTO t VALUES ('a')", &[]).unwrap_err();
    let e = StoreError::from(dup);
    assert!(matches!(e, StoreError::PgConstraint(_)), "{e:?}");
    assert!(e.is_failure() && !e.is_conflict());
    let bad = c.execute("SELECT nope FROM t", &[]).unwrap_err();
    assert!(matches!(StoreError::from(bad), StoreError::Postgres(_)));
    // A NUL in a text parameter is the caller's input, not a store failure.
    let nul = c
        .query("SELECT k FROM t WHERE k = $1", &[&"a\0b"])
        .unwrap_err();
    let e = StoreError::from(nul);
    assert!(matches!(e, StoreError::UnstorableText(_)), "{e:?}");
    assert!(!e.is_failure());
    assert!(matches!(
        PgStore::connect("postgres://postgres@127.0.0.1:1/none"),
        Err(StoreError::Unavailable(_))
    ));
}

#[test]
fn pool_sizes_out_of_range_are_refused_before_connecting() {
    // Port 1: nothing listens, so only the size check can answer `Invalid`.
    let url = "postgres://postgres@127.0.0.1:1/none";
    for size in [0, super::MAX_POOL_SIZE + 1] {
        let err = PgStore::connect_with_pool(url, size).err();
        assert!(
            matches!(err, Some(StoreError::Invalid(m)) if m.contains(&format!("1 to {} ", super::MAX_POOL_SIZE))),
            "{size}: {err:?}"
        );
    }
    assert!(matches!(
        PgStore::connect_with_pool(url, super::MAX_POOL_SIZE),
        Err(StoreError::Unavailable(_))
    ));
}
