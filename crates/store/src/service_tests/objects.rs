use std::collections::BTreeMap;

use kindling_model::objects::{
    BucketConfig, BucketRecord, ObjectMeta, ObjectRecord, PartRecord, UploadRecord, Versioning,
};

use super::on_both;
use crate::objects::{KeyRange, KeyStart, ObjectStore};
use crate::{Entity, StoreError};

fn bucket_rec(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        region: "us-east-1".into(),
        created_ms: 1,
        versioning: None,
        policy: None,
        tags: BTreeMap::new(),
        encryption: None,
        public_access_block: None,
    }
}

fn obj(bucket: &str, key: &str, blob: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        blob: blob.into(),
        size: 3,
        etag: "e".into(),
        last_modified_ms: 2,
        version_id: None,
        meta: ObjectMeta::default(),
        checksum: None,
        parts: None,
    }
}

fn keys(list: &[ObjectRecord]) -> Vec<&str> {
    list.iter().map(|o| o.key.as_str()).collect()
}

fn buckets_are_unique_configurable_and_deleted_only_when_empty(s: &impl ObjectStore) {
    s.create_bucket(&bucket_rec("b"), 100).unwrap();
    assert!(matches!(
        s.create_bucket(&bucket_rec("b"), 100),
        Err(StoreError::AlreadyExists(Entity::Bucket))
    ));
    // At the limit: a new name is refused, a taken one is still `AlreadyExists`.
    assert!(matches!(
        s.create_bucket(&bucket_rec("c"), 1),
        Err(StoreError::LimitExceeded)
    ));
    assert!(matches!(
        s.create_bucket(&bucket_rec("b"), 1),
        Err(StoreError::AlreadyExists(Entity::Bucket))
    ));
    s.set_bucket_config("b", &BucketConfig::Versioning(Versioning::Enabled))
        .unwrap();
    s.set_bucket_config("b", &BucketConfig::Policy(Some("{}".into())))
        .unwrap();
    let b = s.bucket("b").unwrap().unwrap();
    assert_eq!(b.versioning, Some(Versioning::Enabled));
    assert_eq!(b.policy.as_deref(), Some("{}"));
    assert!(matches!(
        s.set_bucket_config("nope", &BucketConfig::Policy(None)),
        Err(StoreError::NotFound(Entity::Bucket))
    ));
    assert_eq!(s.put_object(&obj("b", "k", "blob1")).unwrap(), None);
    assert!(matches!(
        s.delete_bucket("b"),
        Err(StoreError::NotEmpty(Entity::Bucket))
    ));
    assert_eq!(s.delete_object("b", "k").unwrap().as_deref(), Some("blob1"));
    assert_eq!(s.delete_object("b", "k").unwrap(), None);
    s.create_upload(&upload_rec("u1", "b", "k")).unwrap();
    s.put_part(&part_rec("u1", 1, "p1")).unwrap();
    assert_eq!(s.delete_bucket("b").unwrap(), ["p1"]);
    assert!(s.bucket("b").unwrap().is_none());
    assert!(matches!(
        s.put_object(&obj("b", "k", "x")),
        Err(StoreError::NotFound(Entity::Bucket))
    ));
}

fn objects_replace_and_list_in_byte_order_by_prefix_and_start(s: &impl ObjectStore) {
    s.create_bucket(&bucket_rec("b"), 100).unwrap();
    for (i, k) in ["a/1", "a/2", "a0", "b", "a/", "é", "z"].iter().enumerate() {
        s.put_object(&obj("b", k, &format!("blob{i}"))).unwrap();
    }
    assert_eq!(
        s.put_object(&obj("b", "z", "blobz2")).unwrap().as_deref(),
        Some("blob6")
    );
    let all = s
        .list_objects(
            "b",
            KeyRange {
                prefix: b"",
                start: KeyStart::First,
            },
            100,
        )
        .unwrap();
    // UTF-8 byte order: 'é' (0xC3 0xA9) sorts after 'z'.
    assert_eq!(keys(&all), ["a/", "a/1", "a/2", "a0", "b", "z", "é"]);
    let a = s
        .list_objects(
            "b",
            KeyRange {
                prefix: b"a/",
                start: KeyStart::First,
            },
            100,
        )
        .unwrap();
    assert_eq!(keys(&a), ["a/", "a/1", "a/2"]);
    let after = s
        .list_objects(
            "b",
            KeyRange {
                prefix: b"a",
                start: KeyStart::After(b"a/1"),
            },
            2,
        )
        .unwrap();
    assert_eq!(keys(&after), ["a/2", "a0"]);
    let at = s
        .list_objects(
            "b",
            KeyRange {
                prefix: b"",
                start: KeyStart::At(b"a0"),
            },
            100,
        )
        .unwrap();
    assert_eq!(keys(&at), ["a0", "b", "z", "é"]);
    let before_prefix = s
        .list_objects(
            "b",
            KeyRange {
                prefix: b"b",
                start: KeyStart::After(b"a"),
            },
            100,
        )
        .unwrap();
    assert_eq!(keys(&before_prefix), ["b"]);
}

fn upload_rec(id: &str, bucket: &str, key: &str) -> UploadRecord {
    UploadRecord {
        upload_id: id.into(),
        bucket: bucket.into(),
        key: key.into(),
        initiated_ms: 1,
        meta: ObjectMeta::default(),
        checksum_algorithm: None,
    }
}

fn part_rec(id: &str, n: u32, blob: &str) -> PartRecord {
    PartRecord {
        upload_id: id.into(),
        part_number: n,
        blob: blob.into(),
        size: 5,
        etag: "p".into(),
        last_modified_ms: 1,
        checksum: None,
    }
}

fn uploads_collect_parts_and_complete_or_abort_atomically(s: &impl ObjectStore) {
    s.create_bucket(&bucket_rec("b"), 100).unwrap();
    assert!(matches!(
        s.create_upload(&upload_rec("u0", "nope", "k")),
        Err(StoreError::NotFound(Entity::Bucket))
    ));
    s.create_upload(&upload_rec("u1", "b", "k")).unwrap();
    s.create_upload(&upload_rec("u2", "b", "k")).unwrap();
    s.create_upload(&upload_rec("u3", "b", "j")).unwrap();
    assert_eq!(s.put_part(&part_rec("u1", 2, "p2")).unwrap(), None);
    assert_eq!(s.put_part(&part_rec("u1", 1, "p1")).unwrap(), None);
    assert_eq!(
        s.put_part(&part_rec("u1", 1, "p1b")).unwrap().as_deref(),
        Some("p1")
    );
    assert!(matches!(
        s.put_part(&part_rec("gone", 1, "x")),
        Err(StoreError::NotFound(Entity::Upload))
    ));
    let parts = s.parts("u1", 0, 10).unwrap();
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(s.parts("u1", 1, 10).unwrap().len(), 1);
    let listed = s.list_uploads("b", b"", None, 10).unwrap();
    let ids: Vec<&str> = listed.iter().map(|u| u.upload_id.as_str()).collect();
    assert_eq!(ids, ["u3", "u1", "u2"]);
    let next = s.list_uploads("b", b"", Some((b"k", "u1")), 10).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].upload_id, "u2");

    s.put_object(&obj("b", "k", "old")).unwrap();
    let done = s.complete_upload("u1", &obj("b", "k", "new")).unwrap();
    assert_eq!(done.replaced.as_deref(), Some("old"));
    let mut blobs = done.parts.clone();
    blobs.sort();
    assert_eq!(blobs, ["p1b", "p2"]);
    assert!(s.upload("u1").unwrap().is_none());
    assert!(s.parts("u1", 0, 10).unwrap().is_empty());
    assert!(matches!(
        s.complete_upload("u1", &obj("b", "k", "again")),
        Err(StoreError::NotFound(Entity::Upload))
    ));
    assert_eq!(s.object("b", "k").unwrap().unwrap().blob, "new");

    s.put_part(&part_rec("u2", 1, "q1")).unwrap();
    assert_eq!(s.abort_upload("u2").unwrap(), ["q1"]);
    assert!(matches!(
        s.abort_upload("u2"),
        Err(StoreError::NotFound(Entity::Upload))
    ));
    let unref = s
        .unreferenced_blobs(&["new".into(), "q1".into(), "p2".into()])
        .unwrap();
    assert_eq!(unref, ["q1", "p2"]);
}

on_both!(
    buckets_are_unique_configurable_and_deleted_only_when_empty,
    objects_replace_and_list_in_byte_order_by_prefix_and_start,
    uploads_collect_parts_and_complete_or_abort_atomically
);

/// Shared object bytes (PostgreSQL): a blob is readable only once finished, chunk by chunk;
/// deleting is idempotent; the sweep removes old blobs no object or part refers to and keeps
/// referenced ones, recent ones and those of other tables' rows.
#[test]
fn shared_object_bytes_are_chunked_finished_and_swept() {
    use crate::objects::{SharedObjectBytes, StoredBytes};

    let db = super::postgres();
    let s = db.store();
    s.begin_object_bytes("blob-a").unwrap();
    s.put_object_chunk("blob-a", 0, b"hello ").unwrap();
    s.put_object_chunk("blob-a", 1, b"world").unwrap();
    assert_eq!(s.object_bytes("blob-a").unwrap(), None, "unfinished");
    let done = StoredBytes {
        size: 11,
        chunks: 2,
        sha256: "ab".repeat(32),
    };
    s.finish_object_bytes("blob-a", &done).unwrap();
    assert_eq!(s.object_bytes("blob-a").unwrap(), Some(done.clone()));
    assert_eq!(
        s.object_chunk("blob-a", 1).unwrap().as_deref(),
        Some(&b"world"[..])
    );
    assert_eq!(s.object_chunk("blob-a", 2).unwrap(), None);
    // Begun again (a retried write): the old chunks and the finished mark go.
    s.begin_object_bytes("blob-a").unwrap();
    assert_eq!(s.object_bytes("blob-a").unwrap(), None);
    assert_eq!(s.object_chunk("blob-a", 0).unwrap(), None);
    s.put_object_chunk("blob-a", 0, b"again").unwrap();
    s.finish_object_bytes("blob-a", &done).unwrap();

    // Referenced by an object, a part, or by nothing.
    s.create_bucket(&bucket_rec("b"), 100).unwrap();
    s.put_object(&obj("b", "k", "blob-a")).unwrap();
    for id in ["blob-p", "blob-orphan"] {
        s.begin_object_bytes(id).unwrap();
        s.put_object_chunk(id, 0, b"x").unwrap();
    }
    s.create_upload(&UploadRecord {
        upload_id: "u".into(),
        bucket: "b".into(),
        key: "k2".into(),
        initiated_ms: 1,
        meta: ObjectMeta::default(),
        checksum_algorithm: None,
    })
    .unwrap();
    s.put_part(&PartRecord {
        upload_id: "u".into(),
        part_number: 1,
        blob: "blob-p".into(),
        size: 1,
        etag: "e".into(),
        last_modified_ms: 1,
        checksum: None,
    })
    .unwrap();
    // Too recent: nothing is swept.
    assert_eq!(s.sweep_object_bytes(0).unwrap(), 0);
    let later = i64::MAX;
    assert_eq!(s.sweep_object_bytes(later).unwrap(), 1);
    assert_eq!(s.object_chunk("blob-orphan", 0).unwrap(), None);
    assert!(s.object_chunk("blob-p", 0).unwrap().is_some());
    assert!(s.object_bytes("blob-a").unwrap().is_some());
    s.delete_object_bytes(&["blob-a".into(), "never".into()])
        .unwrap();
    s.delete_object_bytes(&["blob-a".into()]).unwrap();
    assert_eq!(s.object_bytes("blob-a").unwrap(), None);
    assert_eq!(s.object_chunk("blob-a", 0).unwrap(), None);
}
