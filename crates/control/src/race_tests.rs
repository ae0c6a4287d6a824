//! Another node writing between this node's read and its compare-and-swap, and a store that
//! fails: each becomes Lambda's answer for it, and failures keep their cause.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use kindling_model::ArnContext;
use kindling_model::alias::AliasRecord;
use kindling_model::events::{AsyncEvent, DeadLetter, EventInvokeConfig};
use kindling_model::function::{FunctionMeta, VersionNumber, VersionRecord};
use kindling_model::layer::LayerVersionRecord;
use kindling_model::url::FunctionUrlRecord;
use kindling_store::{
    AccountUsage, BlobStore, PolicyRecord, QueueStat, Result, SqliteStore, Store, StoreError,
};

use crate::input::*;
use crate::tests::create;
use crate::{ControlConfig, ControlError, ControlPlane};

type OtherNode = Box<dyn FnOnce(&SqliteStore) + Send>;

/// One SQLite store seen by two nodes: this control plane, and a test acting as another node
/// that writes just before this node's next write reaches the store.
struct SharedStore {
    inner: SqliteStore,
    other_node: Mutex<Option<OtherNode>>,
    /// Reads fail as if a stored record were damaged.
    corrupt_reads: AtomicBool,
}

impl SharedStore {
    fn before_next_write(&self, f: impl FnOnce(&SqliteStore) + Send + 'static) {
        *self
            .other_node
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
    }

    fn write(&self) {
        let pending = self
            .other_node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(f) = pending {
            f(&self.inner);
        }
    }

    fn read(&self) -> Result<()> {
        if self.corrupt_reads.load(Ordering::SeqCst) {
            let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
            return Err(StoreError::CorruptRecord {
                record: "FunctionMeta",
                source,
            });
        }
        Ok(())
    }
}

impl Store for SharedStore {
    fn create_function(
        &self,
        meta: &FunctionMeta,
        latest: &VersionRecord,
        published: Option<&VersionRecord>,
    ) -> Result<()> {
        self.write();
        self.inner.create_function(meta, latest, published)
    }
    fn function(&self, name: &str) -> Result<Option<FunctionMeta>> {
        self.read()?;
        self.inner.function(name)
    }
    fn put_function_meta(&self, meta: &FunctionMeta) -> Result<()> {
        self.write();
        self.inner.put_function_meta(meta)
    }
    fn version(&self, name: &str, version: VersionNumber) -> Result<Option<VersionRecord>> {
        self.read()?;
        self.inner.version(name, version)
    }
    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.read()?;
        self.inner.versions(name)
    }
    fn list_functions(
        &self,
        after: Option<(&str, u64)>,
        all_versions: bool,
        limit: usize,
    ) -> Result<Vec<VersionRecord>> {
        self.read()?;
        self.inner.list_functions(after, all_versions, limit)
    }
    fn update_latest(&self, rec: &VersionRecord, expected_revision: &str) -> Result<()> {
        self.write();
        self.inner.update_latest(rec, expected_revision)
    }
    fn insert_version(&self, rec: &VersionRecord, expected_latest_revision: &str) -> Result<()> {
        self.write();
        self.inner.insert_version(rec, expected_latest_revision)
    }
    fn delete_function(&self, name: &str) -> Result<()> {
        self.write();
        self.inner.delete_function(name)
    }
    fn delete_version(&self, name: &str, version: u64) -> Result<()> {
        self.write();
        self.inner.delete_version(name, version)
    }
    fn set_reserved_concurrency(&self, name: &str, value: Option<u32>, max: u64) -> Result<()> {
        self.write();
        self.inner.set_reserved_concurrency(name, value, max)
    }
    fn account_usage(&self) -> Result<AccountUsage> {
        self.read()?;
        self.inner.account_usage()
    }
    fn create_alias(&self, rec: &AliasRecord) -> Result<()> {
        self.write();
        self.inner.create_alias(rec)
    }
    fn alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>> {
        self.read()?;
        self.inner.alias(function, name)
    }
    fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>> {
        self.read()?;
        self.inner.aliases(function)
    }
    fn update_alias(&self, rec: &AliasRecord, expected_revision: &str) -> Result<()> {
        self.write();
        self.inner.update_alias(rec, expected_revision)
    }
    fn delete_alias(&self, function: &str, name: &str) -> Result<()> {
        self.write();
        self.inner.delete_alias(function, name)
    }
    fn policy(&self, function: &str, qualifier: &str) -> Result<Option<PolicyRecord>> {
        self.read()?;
        self.inner.policy(function, qualifier)
    }
    fn put_policy(
        &self,
        function: &str,
        qualifier: &str,
        policy: &PolicyRecord,
        expected: Option<&str>,
    ) -> Result<()> {
        self.write();
        self.inner.put_policy(function, qualifier, policy, expected)
    }
    fn publish_layer_version(&self, rec: &LayerVersionRecord) -> Result<u64> {
        self.write();
        self.inner.publish_layer_version(rec)
    }
    fn layer_version(
        &self,
        name: &str,
        version: u64,
        include_deleted: bool,
    ) -> Result<Option<LayerVersionRecord>> {
        self.read()?;
        self.inner.layer_version(name, version, include_deleted)
    }
    fn layer_versions(&self, name: &str) -> Result<Vec<LayerVersionRecord>> {
        self.read()?;
        self.inner.layer_versions(name)
    }
    fn layer_names(&self) -> Result<Vec<String>> {
        self.read()?;
        self.inner.layer_names()
    }
    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        self.write();
        self.inner.delete_layer_version(name, version)
    }
    fn enqueue_events(&self, events: &[AsyncEvent]) -> Result<()> {
        self.inner.enqueue_events(events)
    }
    fn lease_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncEvent>> {
        self.inner.lease_events(owner, now_ms, lease_ms, limit)
    }
    fn reschedule_event(
        &self,
        id: &str,
        owner: &str,
        attempts: u32,
        not_before_ms: i64,
        last_result: Option<&str>,
    ) -> Result<()> {
        self.inner
            .reschedule_event(id, owner, attempts, not_before_ms, last_result)
    }
    fn finish_event(
        &self,
        id: &str,
        owner: &str,
        letters: &[DeadLetter],
        follow_ups: &[AsyncEvent],
    ) -> Result<()> {
        self.inner.finish_event(id, owner, letters, follow_ups)
    }
    fn release_leases(&self, owner: &str) -> Result<u64> {
        self.inner.release_leases(owner)
    }
    fn next_due_ms(&self) -> Result<Option<i64>> {
        self.inner.next_due_ms()
    }
    fn queue_stats(&self) -> Result<Vec<QueueStat>> {
        self.inner.queue_stats()
    }
    fn event_invoke_config(&self, f: &str, q: &str) -> Result<Option<EventInvokeConfig>> {
        self.read()?;
        self.inner.event_invoke_config(f, q)
    }
    fn event_invoke_configs(&self, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
        self.read()?;
        self.inner.event_invoke_configs(function)
    }
    fn put_event_invoke_config(&self, f: &str, q: &str, c: &EventInvokeConfig) -> Result<()> {
        self.write();
        self.inner.put_event_invoke_config(f, q, c)
    }
    fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write();
        self.inner.delete_event_invoke_config(function, qualifier)
    }
    fn dead_letters(&self, queue: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        self.inner.dead_letters(queue, limit)
    }
    fn redrive(&self, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()> {
        self.inner.redrive(letter_ids, events)
    }
    fn create_function_url(&self, rec: &FunctionUrlRecord) -> Result<()> {
        self.write();
        self.inner.create_function_url(rec)
    }
    fn function_url(&self, function: &str, qualifier: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read()?;
        self.inner.function_url(function, qualifier)
    }
    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>> {
        self.read()?;
        self.inner.function_url_by_id(url_id)
    }
    fn function_urls(&self, function: &str) -> Result<Vec<FunctionUrlRecord>> {
        self.read()?;
        self.inner.function_urls(function)
    }
    fn update_function_url(&self, rec: &FunctionUrlRecord, expected_revision: &str) -> Result<()> {
        self.write();
        self.inner.update_function_url(rec, expected_revision)
    }
    fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool> {
        self.write();
        self.inner.delete_function_url(function, qualifier)
    }
}

fn two_nodes() -> (ControlPlane, Arc<SharedStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SharedStore {
        inner: SqliteStore::in_memory().unwrap(),
        other_node: Mutex::new(None),
        corrupt_reads: AtomicBool::new(false),
    });
    let plane = ControlPlane::new(
        Arc::clone(&store) as Arc<dyn Store>,
        BlobStore::open(dir.path()).unwrap(),
        ControlConfig {
            arn: ArnContext::new("us-east-1", "000000000000"),
            account_concurrency: 1000,
            min_unreserved_concurrency: 100,
        },
    );
    (plane, store, dir)
}

/// The other node changes `$LATEST` of `f` (a new revision).
fn other_node_updates_latest(store: &SqliteStore) {
    let mut latest = store.version("f", None).unwrap().unwrap();
    let before = latest.revision_id.clone();
    latest.revision_id = "other-node".into();
    latest.spec.timeout = 99;
    store.update_latest(&latest, &before).unwrap();
}

fn set_timeout(revision_id: Option<String>, timeout: i64) -> UpdateFunctionConfiguration {
    UpdateFunctionConfiguration {
        revision_id,
        config: ConfigInput {
            timeout: Some(timeout),
            ..Default::default()
        },
    }
}

#[test]
fn a_lost_race_without_a_revision_id_is_a_conflict() {
    let (plane, store, _d) = two_nodes();
    create(&plane, "f", false);
    store.before_next_write(other_node_updates_latest);
    let err = plane
        .update_function_configuration("f", set_timeout(None, 30))
        .unwrap_err();
    assert!(
        matches!(&err, ControlError::Conflict(m) if m.contains("An update is in progress for resource: arn:aws:lambda:us-east-1:000000000000:function:f")),
        "{err:?}"
    );
    // The other node's write stands; nothing of this one was applied.
    let latest = plane.get_function("f", None).unwrap().version;
    assert_eq!(
        (latest.revision_id.as_str(), latest.spec.timeout),
        ("other-node", 99)
    );
}

#[test]
fn a_lost_race_with_a_revision_id_is_a_failed_precondition() {
    let (plane, store, _d) = two_nodes();
    let (latest, _) = create(&plane, "f", false);
    store.before_next_write(other_node_updates_latest);
    let err = plane
        .update_function_configuration("f", set_timeout(Some(latest.revision_id), 30))
        .unwrap_err();
    assert!(
        matches!(err, ControlError::PreconditionFailed(_)),
        "{err:?}"
    );
}

#[test]
fn a_version_number_taken_by_another_node_is_a_conflict() {
    let (plane, store, _d) = two_nodes();
    let (latest, _) = create(&plane, "f", false);
    store.before_next_write(move |s| {
        let mut v1 = latest.clone();
        v1.version = Some(1);
        v1.revision_id = "v1-other-node".into();
        s.insert_version(&v1, &latest.revision_id).unwrap();
    });
    let err = plane
        .publish_version("f", PublishVersion::default())
        .unwrap_err();
    assert!(
        matches!(&err, ControlError::Conflict(m) if m.contains("An update is in progress")),
        "{err:?}"
    );
}

#[test]
fn a_function_deleted_by_another_node_is_not_found() {
    let (plane, store, _d) = two_nodes();
    create(&plane, "f", false);
    store.before_next_write(|s| s.delete_function("f").unwrap());
    let err = plane.delete_function("f", None).unwrap_err();
    assert!(
        matches!(&err, ControlError::NotFound(m) if m == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"),
        "{err:?}"
    );
    create(&plane, "f", false);
    store.before_next_write(|s| s.delete_function("f").unwrap());
    let err = plane
        .update_function_configuration("f", set_timeout(None, 30))
        .unwrap_err();
    assert!(matches!(err, ControlError::NotFound(_)), "{err:?}");
}

#[test]
fn a_policy_changed_by_another_node_is_a_conflict() {
    let (plane, store, _d) = two_nodes();
    create(&plane, "f", false);
    store.before_next_write(|s| {
        let p = PolicyRecord {
            revision_id: "other-node".into(),
            statements: vec![serde_json::json!({ "Sid": "other" })],
        };
        s.put_policy("f", "", &p, None).unwrap();
    });
    let err = plane
        .add_permission(
            "f",
            None,
            AddPermission {
                statement_id: Some("mine".into()),
                action: Some("lambda:InvokeFunction".into()),
                principal: Some("s3.amazonaws.com".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, ControlError::Conflict(_)), "{err:?}");
}

#[test]
fn a_store_failure_is_internal_and_keeps_its_cause() {
    let (plane, store, _d) = two_nodes();
    create(&plane, "f", false);
    store.corrupt_reads.store(true, Ordering::SeqCst);
    let err = plane.get_function("f", None).unwrap_err();
    assert!(
        matches!(&err, ControlError::Store(StoreError::CorruptRecord { .. })),
        "{err:?}"
    );
    let mut chain = Vec::new();
    let mut cause = err.source();
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert!(chain[1].contains("EOF while parsing"), "{chain:?}");
}
