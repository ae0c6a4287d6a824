//! The store test suite, run against both implementations: SQLite (in memory) and a fresh
//! PostgreSQL database per test ([`crate::postgres::test_db`]). Each test is a function of a
//! `&dyn Store`; [`on_both_stores!`] makes one `#[test]` per store of it.

use std::collections::BTreeMap;

use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter};
use kindling_model::function::{CodeInfo, FunctionMeta, FunctionSpec, VersionRecord};
use kindling_model::layer::LayerVersionRecord;

use crate::{Entity, PolicyRecord, Store, StoreError};

pub(crate) fn version(name: &str, number: Option<u64>, rev: &str) -> VersionRecord {
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
pub(crate) fn function(name: &str) -> (FunctionMeta, VersionRecord) {
    (meta(name), version(name, None, "r1"))
}

pub(crate) fn meta(name: &str) -> FunctionMeta {
    FunctionMeta {
        name: name.into(),
        created_ms: 0,
        tags: BTreeMap::new(),
        reserved_concurrency: None,
        last_version: 0,
        provisioned: Default::default(),
    }
}

pub(crate) fn alias(function: &str, name: &str, version: &str) -> AliasRecord {
    AliasRecord {
        function_name: function.into(),
        name: name.into(),
        function_version: version.into(),
        description: String::new(),
        weights: BTreeMap::new(),
        revision_id: "a1".into(),
    }
}

pub(crate) fn url(
    function: &str,
    qualifier: &str,
    id: &str,
) -> kindling_model::url::FunctionUrlRecord {
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

pub(crate) fn event(id: &str, function: &str, enqueued: i64) -> AsyncEvent {
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

fn create_is_atomic_and_unique(s: &dyn Store) {
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

fn revisions_are_compare_and_swap(s: &dyn Store) {
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

/// Function `f`, its `$LATEST` and published version 1.
fn function_with_version_1(s: &dyn Store) {
    s.create_function(
        &meta("f"),
        &version("f", None, "r1"),
        Some(&version("f", Some(1), "v")),
    )
    .unwrap();
}

fn aliases_protect_versions_and_cascade(s: &dyn Store) {
    function_with_version_1(s);
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

fn function_urls_are_unique_compare_and_swap_and_cascade(s: &dyn Store) {
    function_with_version_1(s);
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

fn lists_with_keyset_pagination(s: &dyn Store) {
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

fn reserved_concurrency_respects_limit(s: &dyn Store) {
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

fn policies_use_revisions(s: &dyn Store) {
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

fn queue_leases_round_robin_and_expires_leases(s: &dyn Store) {
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

fn dead_letters_and_redrive_are_atomic(s: &dyn Store) {
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

/// Layer `deps` as [`layers_number_monotonically`] leaves it: versions 3 and 1, newest first;
/// version 2 deleted (seen only when asked for deleted ones).
pub(crate) fn deps_layers_are_3_and_1(s: &dyn Store) {
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

/// A layer version to publish as `name`.
pub(crate) fn layer(name: &str) -> LayerVersionRecord {
    LayerVersionRecord {
        name: name.into(),
        version: 0,
        description: String::new(),
        created_ms: 0,
        compatible_runtimes: vec![],
        compatible_architectures: vec![],
        license_info: None,
        code: version("x", None, "r").code,
    }
}

/// Publishes versions 1, 2 and 3 of layer `deps` (deleting 2 before 3) and 1 of `Base`.
pub(crate) fn layers_number_monotonically(s: &dyn Store) {
    let rec = layer("deps");
    assert_eq!(s.publish_layer_version(&rec).unwrap(), 1);
    assert_eq!(s.publish_layer_version(&rec).unwrap(), 2);
    s.delete_layer_version("deps", 2).unwrap();
    assert_eq!(s.publish_layer_version(&rec).unwrap(), 3);
    assert_eq!(s.publish_layer_version(&layer("Base")).unwrap(), 1);
    deps_layers_are_3_and_1(s);
    // Byte order: upper case before lower case, whatever the database's locale.
    assert_eq!(s.layer_names().unwrap(), vec!["Base", "deps"]);
    assert_eq!(s.account_usage().unwrap().total_code_size, 300);
}

fn readers_see_every_write_once_it_returned(s: &dyn Store) {
    s.create_function(&meta("f"), &version("f", None, "r0"), None)
        .unwrap();
    assert!(s.function("f").unwrap().is_some(), "create, then get");
    for i in 1..=20 {
        s.update_latest(
            &version("f", None, &format!("r{i}")),
            &format!("r{}", i - 1),
        )
        .unwrap();
        let seen = s.version("f", None).unwrap().unwrap().revision_id;
        assert_eq!(seen, format!("r{i}"));
    }
    s.enqueue_events(&[event("e1", "f", 0)]).unwrap();
    s.lease_events("w", 10, 1000, 1).unwrap();
    assert_eq!(s.queue_stats().unwrap()[0].in_flight, 1);
    assert!(s.lease_events("x", 10, 1000, 1).unwrap().is_empty());
    s.finish_event("e1", "w", &[], &[]).unwrap();
    assert!(s.queue_stats().unwrap().is_empty());
}

pub(crate) fn concurrent_writers_and_readers_all_succeed(s: &dyn Store) {
    s.create_function(&meta("f"), &version("f", None, "r"), None)
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in 0..25 {
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
            });
        }
    });
    assert_eq!(s.account_usage().unwrap().function_count, 1 + 4 * 3);
}

/// Writers racing on one revision: exactly one wins each round, the others see
/// `RevisionMismatch` (compare-and-swap holds under concurrency, not only in sequence).
fn compare_and_swap_holds_under_concurrency(s: &dyn Store) {
    s.create_function(&meta("f"), &version("f", None, "r0"), None)
        .unwrap();
    for round in 0..5 {
        let expected = format!("r{round}");
        let wins = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (expected, wins) = (&expected, &wins);
                scope.spawn(move || {
                    let next = version("f", None, &format!("r{}-{t}", round + 1));
                    match s.update_latest(&next, expected) {
                        Ok(()) => {
                            wins.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(StoreError::RevisionMismatch) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 1, "round {round}");
        let current = s.version("f", None).unwrap().unwrap().revision_id;
        let mut fixed = version("f", None, &format!("r{}", round + 1));
        fixed.revision_id = format!("r{}", round + 1);
        s.update_latest(&fixed, &current).unwrap();
    }
}

/// Leasing workers never get the same event twice while its lease holds.
fn concurrent_leases_take_distinct_events(s: &dyn Store) {
    let events: Vec<AsyncEvent> = (0..60)
        .map(|i| event(&format!("e{i}"), ["a", "b", "c"][i % 3], i as i64))
        .collect();
    s.enqueue_events(&events).unwrap();
    let taken = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..4 {
            let taken = &taken;
            scope.spawn(move || {
                loop {
                    let got = s.lease_events(&format!("w{w}"), 1000, 60_000, 5).unwrap();
                    if got.is_empty() {
                        break;
                    }
                    taken.lock().unwrap().extend(got.into_iter().map(|e| e.id));
                }
            });
        }
    });
    let mut taken = taken.into_inner().unwrap();
    taken.sort();
    let before = taken.len();
    taken.dedup();
    assert_eq!(before, taken.len(), "an event was leased twice");
    assert_eq!(taken.len(), 60);
}

/// One `#[test]` per store for each named test function.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = crate::SqliteStore::open(&dir.path().join("state.db")).unwrap();
                    super::$name(&s);
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    let db = crate::postgres::test_db::TestDb::create();
                    super::$name(db.store());
                }
            )*
        }
    };
}

on_both_stores!(
    create_is_atomic_and_unique,
    revisions_are_compare_and_swap,
    aliases_protect_versions_and_cascade,
    function_urls_are_unique_compare_and_swap_and_cascade,
    lists_with_keyset_pagination,
    reserved_concurrency_respects_limit,
    policies_use_revisions,
    queue_leases_round_robin_and_expires_leases,
    dead_letters_and_redrive_are_atomic,
    layers_number_monotonically,
    readers_see_every_write_once_it_returned,
    concurrent_writers_and_readers_all_succeed,
    compare_and_swap_holds_under_concurrency,
    concurrent_leases_take_distinct_events,
);
