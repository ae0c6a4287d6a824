//! Tests of the SQLite store: atomicity, compare-and-swap, cascades, persistence, and reads
//! that do not wait for writers.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kindling_model::events::{AsyncEvent, DeadLetter};
use kindling_model::function::{CodeInfo, FunctionSpec};

use super::*;
use crate::{Entity, StoreError};

fn version(name: &str, number: Option<u64>, rev: &str) -> VersionRecord {
    VersionRecord {
        function_name: name.into(),
        version: number,
        spec: FunctionSpec {
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            role: "arn:aws:iam::123456789012:role/r".into(),
            ..FunctionSpec::lambda_defaults(name)
        },
        code: CodeInfo {
            sha256: "x".into(),
            size: 100,
            unzipped_size: 200,
            blob: "00".repeat(32),
            image: None,
        },
        revision_id: rev.into(),
        last_modified_ms: 0,
    }
}

/// A function's meta and `$LATEST`, for other modules' tests.
pub(super) fn function(name: &str) -> (FunctionMeta, VersionRecord) {
    (meta(name), version(name, None, "r1"))
}

fn meta(name: &str) -> FunctionMeta {
    FunctionMeta {
        name: name.into(),
        created_ms: 0,
        tags: BTreeMap::new(),
        reserved_concurrency: None,
        last_version: 0,
    }
}

fn alias(function: &str, name: &str, version: &str) -> AliasRecord {
    AliasRecord {
        function_name: function.into(),
        name: name.into(),
        function_version: version.into(),
        description: String::new(),
        weights: BTreeMap::new(),
        revision_id: "a1".into(),
    }
}

#[test]
fn create_is_atomic_and_unique() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(&meta("f"), &version("f", None, "r1"), None)
        .unwrap();
    assert!(matches!(
        s.create_function(&meta("f"), &version("f", None, "r1"), None),
        Err(StoreError::AlreadyExists(Entity::Function))
    ));
    // A failing second insert rolls back the whole call.
    let bad = version("g", None, "r1");
    assert!(s.create_function(&meta("g"), &bad, Some(&bad)).is_err());
    assert!(s.function("g").unwrap().is_none());
}

#[test]
fn revisions_are_compare_and_swap() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(&meta("f"), &version("f", None, "r1"), None)
        .unwrap();
    s.update_latest(&version("f", None, "r2"), "r1").unwrap();
    assert!(matches!(
        s.update_latest(&version("f", None, "r3"), "r1"),
        Err(StoreError::RevisionMismatch)
    ));
    s.insert_version(&version("f", Some(1), "v1"), "r2")
        .unwrap();
    assert_eq!(s.function("f").unwrap().unwrap().last_version, 1);
    assert!(matches!(
        s.insert_version(&version("f", Some(1), "v1"), "r2"),
        Err(StoreError::AlreadyExists(Entity::Version))
    ));
    assert!(matches!(
        s.update_latest(&version("g", None, "r3"), "r1"),
        Err(StoreError::NotFound(Entity::Function))
    ));
    let versions: Vec<_> = s
        .versions("f")
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, vec![None, Some(1)]);
}

#[test]
fn aliases_protect_versions_and_cascade() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(
        &meta("f"),
        &version("f", None, "r1"),
        Some(&version("f", Some(1), "v")),
    )
    .unwrap();
    assert!(matches!(
        s.create_alias(&alias("f", "prod", "2")),
        Err(StoreError::NotFound(Entity::Version))
    ));
    assert!(matches!(
        s.create_alias(&alias("g", "prod", "1")),
        Err(StoreError::NotFound(Entity::Function))
    ));
    s.create_alias(&alias("f", "prod", "1")).unwrap();
    assert!(matches!(
        s.create_alias(&alias("f", "prod", "1")),
        Err(StoreError::AlreadyExists(Entity::Alias))
    ));
    let mut moved = alias("f", "prod", "3");
    moved.revision_id = "a2".into();
    assert!(matches!(
        s.update_alias(&moved, "a1"),
        Err(StoreError::NotFound(Entity::Version))
    ));
    assert!(matches!(
        s.update_alias(&alias("f", "prod", "1"), "stale"),
        Err(StoreError::RevisionMismatch)
    ));
    assert!(
        matches!(s.delete_version("f", 1), Err(StoreError::InUse { alias }) if alias == "prod")
    );
    // Version 0 is how $LATEST is stored; it is not a published version to delete.
    assert!(matches!(
        s.delete_version("f", 0),
        Err(StoreError::NotFound(Entity::Version))
    ));
    assert!(s.version("f", None).unwrap().is_some());
    s.delete_function("f").unwrap();
    assert!(s.alias("f", "prod").unwrap().is_none());
    assert!(s.versions("f").unwrap().is_empty());
}

fn url(function: &str, qualifier: &str, id: &str) -> kindling_model::url::FunctionUrlRecord {
    use kindling_model::url::{FunctionUrlRecord, InvokeMode, UrlAuthType};
    FunctionUrlRecord {
        url_id: id.into(),
        function_name: function.into(),
        qualifier: qualifier.into(),
        auth_type: UrlAuthType::None,
        cors: None,
        invoke_mode: InvokeMode::Buffered,
        creation_ms: 1,
        last_modified_ms: 1,
        revision_id: "u1".into(),
    }
}

#[test]
fn function_urls_are_unique_compare_and_swap_and_cascade() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(
        &meta("f"),
        &version("f", None, "r1"),
        Some(&version("f", Some(1), "v")),
    )
    .unwrap();
    assert!(matches!(
        s.create_function_url(&url("g", "$LATEST", "id0")),
        Err(StoreError::NotFound(Entity::Function))
    ));
    assert!(matches!(
        s.create_function_url(&url("f", "prod", "id0")),
        Err(StoreError::NotFound(Entity::Alias))
    ));
    s.create_function_url(&url("f", "$LATEST", "id1")).unwrap();
    assert!(matches!(
        s.create_function_url(&url("f", "$LATEST", "id2")),
        Err(StoreError::AlreadyExists(Entity::FunctionUrl))
    ));
    s.create_alias(&alias("f", "prod", "1")).unwrap();
    s.create_function_url(&url("f", "prod", "id3")).unwrap();
    assert_eq!(
        s.function_url_by_id("id3").unwrap().unwrap().qualifier,
        "prod"
    );
    let all: Vec<String> = s
        .function_urls("f")
        .unwrap()
        .into_iter()
        .map(|u| u.url_id)
        .collect();
    assert_eq!(all, vec!["id1", "id3"]);

    let mut next = url("f", "$LATEST", "id1");
    next.revision_id = "u2".into();
    assert!(matches!(
        s.update_function_url(&next, "stale"),
        Err(StoreError::RevisionMismatch)
    ));
    s.update_function_url(&next, "u1").unwrap();
    assert_eq!(
        s.function_url("f", "$LATEST").unwrap().unwrap().revision_id,
        "u2"
    );

    // Deleting the alias deletes its URL; deleting the function deletes the rest.
    s.delete_alias("f", "prod").unwrap();
    assert!(s.function_url_by_id("id3").unwrap().is_none());
    assert!(s.delete_function_url("f", "$LATEST").unwrap());
    assert!(!s.delete_function_url("f", "$LATEST").unwrap());
    s.create_function_url(&url("f", "$LATEST", "id4")).unwrap();
    s.delete_function("f").unwrap();
    assert!(s.function_url_by_id("id4").unwrap().is_none());
}

#[test]
fn lists_with_keyset_pagination() {
    let s = SqliteStore::in_memory().unwrap();
    for name in ["a", "b", "c"] {
        s.create_function(
            &meta(name),
            &version(name, None, "r"),
            Some(&version(name, Some(1), "v")),
        )
        .unwrap();
    }
    let page = s.list_functions(None, false, 2).unwrap();
    assert_eq!(page.len(), 2);
    let next = s.list_functions(Some(("b", 0)), false, 2).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].function_name, "c");
    let all = s.list_functions(None, true, 100).unwrap();
    assert_eq!(all.len(), 6);
}

#[test]
fn reserved_concurrency_respects_limit() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(&meta("a"), &version("a", None, "r"), None)
        .unwrap();
    s.create_function(&meta("b"), &version("b", None, "r"), None)
        .unwrap();
    s.set_reserved_concurrency("a", Some(800), 900).unwrap();
    assert!(matches!(
        s.set_reserved_concurrency("b", Some(101), 900),
        Err(StoreError::LimitExceeded)
    ));
    s.set_reserved_concurrency("b", Some(100), 900).unwrap();
    assert_eq!(s.account_usage().unwrap().reserved_concurrency, 900);
}

#[test]
fn layers_number_monotonically_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        let rec = LayerVersionRecord {
            name: "deps".into(),
            version: 0,
            description: String::new(),
            created_ms: 0,
            compatible_runtimes: vec![],
            compatible_architectures: vec![],
            license_info: None,
            code: version("x", None, "r").code,
        };
        assert_eq!(s.publish_layer_version(&rec).unwrap(), 1);
        assert_eq!(s.publish_layer_version(&rec).unwrap(), 2);
        s.delete_layer_version("deps", 2).unwrap();
        assert_eq!(s.publish_layer_version(&rec).unwrap(), 3);
    }
    let s = SqliteStore::open(&path).unwrap();
    let versions: Vec<u64> = s
        .layer_versions("deps")
        .unwrap()
        .iter()
        .map(|l| l.version)
        .collect();
    assert_eq!(versions, vec![3, 1]);
    assert!(s.layer_version("deps", 2, false).unwrap().is_none());
    assert!(s.layer_version("deps", 2, true).unwrap().is_some());
}

#[test]
fn policies_use_revisions() {
    let s = SqliteStore::in_memory().unwrap();
    s.create_function(&meta("f"), &version("f", None, "r"), None)
        .unwrap();
    let p = PolicyRecord {
        revision_id: "p1".into(),
        statements: vec![serde_json::json!({"Sid": "a"})],
    };
    s.put_policy("f", "", &p, None).unwrap();
    assert!(matches!(
        s.put_policy("f", "", &p, None),
        Err(StoreError::RevisionMismatch)
    ));
    let empty = PolicyRecord {
        revision_id: "p2".into(),
        statements: vec![],
    };
    s.put_policy("f", "", &empty, Some("p1")).unwrap();
    assert!(s.policy("f", "").unwrap().is_none());
    assert!(matches!(
        s.put_policy("gone", "", &p, None),
        Err(StoreError::NotFound(Entity::Function))
    ));
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

fn event(id: &str, function: &str, enqueued: i64) -> AsyncEvent {
    AsyncEvent {
        id: id.into(),
        function_name: function.into(),
        qualifier: None,
        payload: b"{}".to_vec(),
        enqueued_ms: enqueued,
        attempts: 0,
        not_before_ms: enqueued,
        last_result: None,
        trace_header: None,
    }
}

#[test]
fn queue_leases_round_robin_and_expires_leases() {
    let s = SqliteStore::in_memory().unwrap();
    let mut events: Vec<AsyncEvent> = (0..5)
        .map(|i| event(&format!("hot{i}"), "hot", i))
        .collect();
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    events.push(AsyncEvent {
        trace_header: Some(trace.into()),
        ..event("cold0", "cold", 10)
    });
    s.enqueue_events(&events).unwrap();
    // The hot function's backlog does not hide the other function's event.
    let leased = s.lease_events("a", 100, 1000, 2).unwrap();
    assert_eq!(
        leased[1].trace_header.as_deref(),
        Some(trace),
        "stored with the event"
    );
    assert_eq!(leased[0].trace_header, None);
    let leased: Vec<String> = leased.into_iter().map(|e| e.id).collect();
    assert_eq!(leased, vec!["hot0", "cold0"]);
    // Leased events are not handed out again until the lease expires.
    let more: Vec<String> = s
        .lease_events("b", 100, 1000, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(more, vec!["hot1", "hot2", "hot3", "hot4"]);
    let again = s.lease_events("c", 1200, 1000, 1).unwrap();
    assert_eq!(again[0].id, "hot0", "expired lease is taken over");
    // Only the current owner completes.
    s.finish_event("hot0", "a", &[], &[]).unwrap();
    assert_eq!(
        s.queue_stats()
            .unwrap()
            .iter()
            .map(|q| q.depth)
            .sum::<u64>(),
        6
    );
    s.finish_event("hot0", "c", &[], &[]).unwrap();
    assert_eq!(
        s.queue_stats()
            .unwrap()
            .iter()
            .map(|q| q.depth)
            .sum::<u64>(),
        5
    );
    assert_eq!(s.release_leases("b").unwrap(), 4);
    s.reschedule_event("cold0", "a", 1, 5000, Some("{}"))
        .unwrap();
    assert_eq!(s.next_due_ms().unwrap(), Some(1));
    let stats = s.queue_stats().unwrap();
    assert_eq!(stats[0].function_name, "cold");
    assert_eq!(stats[0].in_flight, 0);
    assert_eq!(stats[1].depth, 4);
}

#[test]
fn dead_letters_and_redrive_are_atomic() {
    let s = SqliteStore::in_memory().unwrap();
    s.enqueue_events(&[event("e1", "f", 0)]).unwrap();
    s.lease_events("w", 10, 1000, 1).unwrap();
    let letter = DeadLetter {
        id: "e1".into(),
        queue: "dlq".into(),
        target_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
        created_ms: 5,
        body: serde_json::json!({}),
        attributes: serde_json::json!({}),
        function_name: "f".into(),
        qualifier: None,
        request_payload: serde_json::json!({}),
        trace_header: None,
    };
    // A worker that lost its lease stores nothing.
    s.finish_event("e1", "other", std::slice::from_ref(&letter), &[])
        .unwrap();
    assert!(s.dead_letters(None, 10).unwrap().is_empty());
    s.finish_event(
        "e1",
        "w",
        std::slice::from_ref(&letter),
        &[event("f1", "g", 9)],
    )
    .unwrap();
    assert_eq!(s.dead_letters(Some("dlq"), 10).unwrap().len(), 1);
    assert_eq!(
        s.queue_stats().unwrap()[0].function_name,
        "g",
        "the follow-up event is queued"
    );
    s.redrive(&["e1".into()], &[event("e1", "f", 20)]).unwrap();
    assert!(s.dead_letters(None, 10).unwrap().is_empty());
    assert_eq!(s.queue_stats().unwrap().len(), 2);
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
fn readers_see_every_write_once_it_returned() {
    let (s, _dir) = file_store();
    s.create_function(&meta("f"), &version("f", None, "r0"), None)
        .unwrap();
    assert!(s.function("f").unwrap().is_some(), "create, then get");
    for i in 1..=50 {
        s.update_latest(
            &version("f", None, &format!("r{i}")),
            &format!("r{}", i - 1),
        )
        .unwrap();
        let seen = s.version("f", None).unwrap().unwrap().revision_id;
        assert_eq!(seen, format!("r{i}"));
    }
    // Relaxed bookkeeping is visible to readers and to the durable writer's checks alike.
    s.enqueue_events(&[event("e1", "f", 0)]).unwrap();
    s.lease_events("w", 10, 1000, 1).unwrap();
    assert_eq!(s.queue_stats().unwrap()[0].in_flight, 1);
    assert!(s.lease_events("x", 10, 1000, 1).unwrap().is_empty());
    s.finish_event("e1", "w", &[], &[]).unwrap();
    assert!(s.queue_stats().unwrap().is_empty());
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

#[test]
fn concurrent_writers_and_readers_all_succeed() {
    let (s, _dir) = file_store();
    let s = Arc::new(s);
    s.create_function(&meta("f"), &version("f", None, "r"), None)
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..40 {
                    let id = format!("t{t}-{i}");
                    s.enqueue_events(&[event(&id, "f", i)]).unwrap();
                    for e in s.lease_events(&id, 1000, 1000, 2).unwrap() {
                        s.finish_event(&e.id, &id, &[], &[]).unwrap();
                    }
                    assert!(s.function("f").unwrap().is_some());
                    if i % 10 == 0 {
                        let name = format!("g{t}-{i}");
                        s.create_function(&meta(&name), &version(&name, None, "r"), None)
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.account_usage().unwrap().function_count, 1 + 4 * 4);
}
