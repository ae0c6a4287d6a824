//! The object store over an in-memory metadata store and a temporary directory.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use kindling_model::objects::{BucketConfig, ChecksumAlgorithm, ObjectMeta, Versioning};
use kindling_store::SqliteStore;

use super::*;
use crate::digest::{checksum, md5_hex};

fn store() -> (Objects, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let objects = Objects::open(store, dir.path(), ObjectsConfig::default()).unwrap();
    (objects, dir)
}

async fn put(o: &Objects, bucket: &str, key: &str, data: &[u8]) -> ObjectRecordAlias {
    o.put_bytes(
        bucket,
        key,
        Bytes::copy_from_slice(data),
        NewObject::default(),
    )
    .await
    .unwrap()
}

type ObjectRecordAlias = kindling_model::objects::ObjectRecord;

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn bucket_count_is_limited() {
    assert_eq!(ObjectsConfig::default().max_buckets, 10_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let config = ObjectsConfig {
        max_buckets: 3,
        ..ObjectsConfig::default()
    };
    let o = Objects::open(store, dir.path(), config).unwrap();
    for name in ["bkt0", "bkt1", "bkt2"] {
        o.create_bucket(name, None).await.unwrap();
    }
    assert!(matches!(
        o.create_bucket("bkt3", None).await,
        Err(ObjectError::TooManyBuckets { max: 3 })
    ));
    // At the limit, creating one you own is still answered as before.
    assert!(o.create_bucket("bkt0", None).await.unwrap().existed);
    assert_eq!(o.list_buckets().await.unwrap().len(), 3);
    // A deleted bucket frees its place.
    o.delete_bucket("bkt1").await.unwrap();
    o.create_bucket("bkt3", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn buckets_follow_s3s_rules() {
    let (o, _dir) = store();
    let created = o.create_bucket("alpha", None).await.unwrap();
    assert!(!created.existed);
    assert_eq!(created.record.region, "us-east-1");
    // us-east-1: creating your own bucket again succeeds.
    assert!(o.create_bucket("alpha", None).await.unwrap().existed);
    o.create_bucket("beta", Some("eu-west-1")).await.unwrap();
    assert!(matches!(
        o.create_bucket("beta", Some("eu-west-1")).await,
        Err(ObjectError::BucketAlreadyOwnedByYou { .. })
    ));
    assert!(matches!(
        o.create_bucket("gamma", Some("us-east-1")).await,
        Err(ObjectError::InvalidLocationConstraint { .. })
    ));
    assert!(matches!(
        o.create_bucket("Bad_Name", None).await,
        Err(ObjectError::InvalidBucketName { .. })
    ));
    let names: Vec<String> = o
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    o.set_bucket_config("alpha", BucketConfig::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    assert!(matches!(
        o.set_bucket_config("nope", BucketConfig::Policy(None))
            .await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    put(&o, "beta", "k", b"ver").await;
    assert!(matches!(
        o.delete_bucket("beta").await,
        Err(ObjectError::BucketNotEmpty { .. })
    ));
    o.delete_object("beta", "k").await.unwrap();
    o.delete_bucket("beta").await.unwrap();
    assert!(matches!(
        o.bucket("beta").await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn objects_round_trip_overwrite_and_leave_no_stray_files() {
    let (o, dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    let first = put(&o, "bkt", "../../etc/passwd", b"one").await;
    assert_eq!(first.etag, md5_hex(b"one"));
    assert_eq!(first.version_id, None);
    let meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        user: [("color".to_string(), "red".to_string())].into(),
        ..ObjectMeta::default()
    };
    let second = o
        .put_bytes(
            "bkt",
            "../../etc/passwd",
            Bytes::from_static(b"two!"),
            NewObject {
                meta: meta.clone(),
                checksum: Some(ChecksumAlgorithm::Crc32),
            },
        )
        .await
        .unwrap();
    assert_eq!(blob_files(dir.path()), 1, "the replaced file is deleted");
    let (rec, data) = o.read_object("bkt", "../../etc/passwd", 100).await.unwrap();
    assert_eq!(data, b"two!");
    assert_eq!(rec, second);
    assert_eq!(rec.meta, meta);
    let sum = rec.checksum.unwrap();
    assert_eq!(sum.algorithm, ChecksumAlgorithm::Crc32);
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sum.value).unwrap(),
        checksum(ChecksumAlgorithm::Crc32, b"two!")
    );
    assert!(matches!(
        o.read_object("bkt", "../../etc/passwd", 3).await,
        Err(ObjectError::EntityTooLarge { size: 4, max: 3 })
    ));
    assert!(matches!(
        o.head_object("bkt", "missing", None).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    assert!(matches!(
        o.head_object("nobucket", "k", None).await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    assert!(matches!(
        o.head_object("bkt", "../../etc/passwd", Some("v1")).await,
        Err(ObjectError::NoSuchVersion { .. })
    ));
    assert!(
        o.head_object("bkt", "../../etc/passwd", Some("null"))
            .await
            .is_ok()
    );
    assert!(matches!(
        o.begin_put("bkt", &"k".repeat(1025), DigestPlan::default(), None)
            .await,
        Err(ObjectError::KeyTooLong { .. })
    ));
    assert!(matches!(
        o.begin_put("nope", "k", DigestPlan::default(), None).await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    o.delete_object("bkt", "../../etc/passwd").await.unwrap();
    o.delete_object("bkt", "../../etc/passwd").await.unwrap();
    assert_eq!(blob_files(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_interrupted_or_refused_upload_shows_nothing() {
    let (o, dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    let plan = DigestPlan {
        sha256: true,
        checksums: vec![ChecksumAlgorithm::Sha256],
    };
    // The client goes away mid-body: the writer is dropped.
    let mut w = o
        .begin_put("bkt", "k", plan.clone(), Some(10))
        .await
        .unwrap();
    w.write(Bytes::from_static(b"12345")).await.unwrap();
    drop(w);
    // The body does not match what the client declared.
    let mut w = o
        .begin_put("bkt", "k", plan.clone(), Some(10))
        .await
        .unwrap();
    w.write(Bytes::from_static(b"12345")).await.unwrap();
    let staged = w.finish().await.unwrap();
    for (expect, want) in [
        (
            Expectations {
                size: Some(10),
                ..Default::default()
            },
            "IncompleteBody",
        ),
        (
            Expectations {
                content_md5: Some([0; 16]),
                ..Default::default()
            },
            "BadDigest",
        ),
        (
            Expectations {
                sha256: Some([0; 32]),
                ..Default::default()
            },
            "ContentSha256Mismatch",
        ),
        (
            Expectations {
                checksums: vec![(ChecksumAlgorithm::Sha256, vec![1, 2])],
                ..Default::default()
            },
            "ChecksumMismatch",
        ),
        (
            Expectations {
                checksums: vec![(ChecksumAlgorithm::Crc32, vec![1, 2, 3, 4])],
                ..Default::default()
            },
            "ChecksumMismatch",
        ),
    ] {
        let err = staged.verify(&expect).unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{err:?}");
    }
    let good = Expectations {
        size: Some(5),
        content_md5: Some(crate::digest::md5(b"12345")),
        sha256: None,
        checksums: vec![(
            ChecksumAlgorithm::Sha256,
            checksum(ChecksumAlgorithm::Sha256, b"12345"),
        )],
    };
    staged.verify(&good).unwrap();
    drop(staged);
    assert!(matches!(
        o.head_object("bkt", "k", None).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    assert_eq!(blob_files(dir.path()), 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn versioned_buckets_give_each_write_a_version_id() {
    let (o, _dir) = store();
    o.create_bucket("ver", None).await.unwrap();
    o.set_bucket_config("ver", BucketConfig::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    let a = put(&o, "ver", "k", b"1").await;
    let b = put(&o, "ver", "k", b"2").await;
    let (va, vb) = (a.version_id.unwrap(), b.version_id.unwrap());
    assert_ne!(va, vb);
    assert!(o.head_object("ver", "k", Some(&vb)).await.is_ok());
    // Only the current version is kept.
    assert!(matches!(
        o.head_object("ver", "k", Some(&va)).await,
        Err(ObjectError::NoSuchVersion { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn copies_keep_or_replace_metadata() {
    let (o, _dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    let src = o
        .put_bytes(
            "bkt",
            "src",
            Bytes::from_static(b"payload"),
            NewObject {
                meta: ObjectMeta {
                    content_type: Some("a/b".into()),
                    ..Default::default()
                },
                checksum: Some(ChecksumAlgorithm::Crc32c),
            },
        )
        .await
        .unwrap();
    let copy = o
        .copy_object(("bkt", "src", None), "bkt", "dst", MetadataDirective::Copy)
        .await
        .unwrap();
    assert_eq!(copy.etag, src.etag);
    assert_eq!(copy.meta, src.meta);
    assert_eq!(copy.checksum, src.checksum);
    assert_ne!(copy.blob, src.blob);
    let replaced = o
        .copy_object(
            ("bkt", "src", None),
            "bkt",
            "src",
            MetadataDirective::Replace(Box::default()),
        )
        .await
        .unwrap();
    assert_eq!(replaced.meta, ObjectMeta::default());
    assert!(matches!(
        o.copy_object(("bkt", "src", None), "bkt", "src", MetadataDirective::Copy)
            .await,
        Err(ObjectError::InvalidRequest(_))
    ));
    assert!(matches!(
        o.copy_object(
            ("bkt", "missing", None),
            "bkt",
            "x",
            MetadataDirective::Copy
        )
        .await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    assert_eq!(
        o.read_object("bkt", "dst", 100).await.unwrap().1,
        b"payload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn multipart_uploads_assemble_checked_parts() {
    let (o, dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    let upload = o
        .create_upload(
            "bkt",
            "big",
            ObjectMeta::default(),
            Some(ChecksumAlgorithm::Crc32),
        )
        .await
        .unwrap();
    let id = upload.upload_id.clone();
    let part1 = vec![b'a'; MIN_PART_SIZE as usize];
    let part2 = b"tail".to_vec();
    let mut etags = Vec::new();
    for (n, data) in [(2u32, &part2), (1, &part1)] {
        let mut w = o
            .begin_part("bkt", "big", &id, n, DigestPlan::default(), None)
            .await
            .unwrap();
        w.write(Bytes::copy_from_slice(data)).await.unwrap();
        let staged = w.finish().await.unwrap();
        let p = o.commit_part(staged, "bkt", "big", &id, n).await.unwrap();
        assert_eq!(p.etag, md5_hex(data));
        assert!(p.checksum.is_some(), "the upload's algorithm is computed");
        etags.push((n, p.etag));
    }
    etags.sort();
    assert!(matches!(
        o.begin_part("bkt", "big", &id, 0, DigestPlan::default(), None)
            .await,
        Err(ObjectError::InvalidArgument(_))
    ));
    assert!(matches!(
        o.begin_part("bkt", "other", &id, 1, DigestPlan::default(), None)
            .await,
        Err(ObjectError::NoSuchUpload { .. })
    ));
    let page = o.list_parts("bkt", "big", &id, 0, 1).await.unwrap();
    assert_eq!(page.parts.len(), 1);
    assert!(page.truncated);
    assert_eq!(page.next_marker, Some(1));
    let uploads = o.list_uploads("bkt", "", None, 10).await.unwrap();
    assert_eq!(uploads.uploads.len(), 1);

    let part = |n: u32, etag: &str| CompletePart {
        part_number: n,
        etag: format!("\"{etag}\""),
        checksum: None,
    };
    let (e1, e2) = (etags[0].1.clone(), etags[1].1.clone());
    assert!(matches!(
        o.complete_upload("bkt", "big", &id, vec![part(2, &e2), part(1, &e1)])
            .await,
        Err(ObjectError::InvalidPartOrder)
    ));
    assert!(matches!(
        o.complete_upload("bkt", "big", &id, vec![part(1, &e2)])
            .await,
        Err(ObjectError::InvalidPart { part_number: 1 })
    ));
    assert!(matches!(
        o.complete_upload("bkt", "big", &id, vec![part(2, &e2), part(3, &e2)])
            .await,
        Err(ObjectError::EntityTooSmall { .. }) | Err(ObjectError::InvalidPart { .. })
    ));
    let rec = o
        .complete_upload("bkt", "big", &id, vec![part(1, &e1), part(2, &e2)])
        .await
        .unwrap();
    let mut md5s = crate::digest::md5(&part1).to_vec();
    md5s.extend(crate::digest::md5(&part2));
    assert_eq!(rec.etag, format!("{}-2", md5_hex(&md5s)));
    assert_eq!(rec.parts, Some(2));
    let mut whole = part1.clone();
    whole.extend(&part2);
    let sum = rec.checksum.clone().unwrap();
    assert!(!sum.composite);
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sum.value).unwrap(),
        checksum(ChecksumAlgorithm::Crc32, &whole)
    );
    let (_, data) = o.read_object("bkt", "big", u64::MAX).await.unwrap();
    assert_eq!(data, whole);
    assert_eq!(blob_files(dir.path()), 1, "parts are deleted");
    assert!(matches!(
        o.complete_upload("bkt", "big", &id, vec![part(1, &e1)])
            .await,
        Err(ObjectError::NoSuchUpload { .. })
    ));

    // Aborting drops the parts.
    let up = o
        .create_upload("bkt", "gone", ObjectMeta::default(), None)
        .await
        .unwrap();
    let mut w = o
        .begin_part("bkt", "gone", &up.upload_id, 1, DigestPlan::default(), None)
        .await
        .unwrap();
    w.write(Bytes::from_static(b"x")).await.unwrap();
    let staged = w.finish().await.unwrap();
    o.commit_part(staged, "bkt", "gone", &up.upload_id, 1)
        .await
        .unwrap();
    o.abort_upload("bkt", "gone", &up.upload_id).await.unwrap();
    assert_eq!(blob_files(dir.path()), 1);
    assert!(matches!(
        o.abort_upload("bkt", "gone", &up.upload_id).await,
        Err(ObjectError::NoSuchUpload { .. })
    ));
}

/// What S3 lists for `keys`, computed the obvious way.
fn model_listing(keys: &BTreeSet<String>, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        let entry = match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => format!("P:{}", &k[..prefix.len() + i + d.len()]),
            None => format!("K:{k}"),
        };
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn paginated_listings_match_a_model_for_random_keys() {
    let (o, _dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    let alphabet = ["a", "bkt", "/", "-", "é", "z", "0"];
    let mut keys = BTreeSet::new();
    for _ in 0..120 {
        let len = rng.usize(1..7);
        let key: String = (0..len)
            .map(|_| alphabet[rng.usize(0..alphabet.len())])
            .collect();
        keys.insert(key);
    }
    for k in &keys {
        put(&o, "bkt", k, b"x").await;
    }
    for _ in 0..60 {
        let prefix = ["", "a", "a/", "b/", "é", "/"][rng.usize(0..6)];
        let delimiter = [None, Some("/"), Some("-"), Some("a/")][rng.usize(0..4)];
        let page_size = rng.usize(1..9);
        let want = model_listing(&keys, prefix, delimiter);
        // Continuation tokens.
        let mut got = Vec::new();
        let mut start = ListStart::First;
        for _ in 0..500 {
            let page = o
                .list_objects(
                    "bkt",
                    ListQuery {
                        prefix: prefix.into(),
                        delimiter: delimiter.map(str::to_string),
                        start: start.clone(),
                        max_keys: page_size,
                    },
                )
                .await
                .unwrap();
            assert!(page.objects.len() + page.common_prefixes.len() <= page_size);
            let mut entries: Vec<String> = page
                .objects
                .iter()
                .map(|r| format!("K:{}", r.key))
                .chain(page.common_prefixes.iter().map(|p| format!("P:{p}")))
                .collect();
            entries.sort_by(|a, b| a[2..].cmp(&b[2..]));
            got.extend(entries);
            if !page.truncated {
                break;
            }
            start = ListStart::At(page.next.clone().unwrap());
        }
        assert_eq!(
            got, want,
            "prefix {prefix:?} delimiter {delimiter:?} page {page_size}"
        );
        // Markers (ListObjects v1): continue after the last entry.
        let mut got = Vec::new();
        let mut start = ListStart::First;
        for _ in 0..500 {
            let page = o
                .list_objects(
                    "bkt",
                    ListQuery {
                        prefix: prefix.into(),
                        delimiter: delimiter.map(str::to_string),
                        start: start.clone(),
                        max_keys: page_size,
                    },
                )
                .await
                .unwrap();
            let mut entries: Vec<String> = page
                .objects
                .iter()
                .map(|r| format!("K:{}", r.key))
                .chain(page.common_prefixes.iter().map(|p| format!("P:{p}")))
                .collect();
            entries.sort_by(|a, b| a[2..].cmp(&b[2..]));
            got.extend(entries);
            if !page.truncated {
                break;
            }
            start = ListStart::After(page.last.clone().unwrap());
        }
        assert_eq!(
            got, want,
            "markers: prefix {prefix:?} delimiter {delimiter:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_sweep_removes_files_a_crash_left() {
    let (o, dir) = store();
    o.create_bucket("bkt", None).await.unwrap();
    put(&o, "bkt", "kept", b"x").await;
    // A file published but never committed (a crash between the two steps).
    let mut w = o
        .begin_put("bkt", "lost", DigestPlan::default(), None)
        .await
        .unwrap();
    w.write(Bytes::from_static(b"orphan")).await.unwrap();
    w.finish().await.unwrap().publish().unwrap();
    assert_eq!(blob_files(dir.path()), 2);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    assert_eq!(o.sweep_blocking(later).unwrap(), 1);
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(o.read_object("bkt", "kept", 10).await.unwrap().1, b"x");
}

/// A blob in [`MemBytes`]: its finished mark and its chunks.
type MemBlob = (Option<kindling_store::StoredBytes>, Vec<Vec<u8>>);

/// Shared bytes kept in memory, as the PostgreSQL store keeps them (chunks, finished blobs).
#[derive(Default)]
struct MemBytes {
    blobs: std::sync::Mutex<std::collections::HashMap<String, MemBlob>>,
}

impl kindling_store::SharedObjectBytes for MemBytes {
    fn begin_object_bytes(&self, id: &str) -> kindling_store::Result<()> {
        self.blobs
            .lock()
            .unwrap()
            .insert(id.to_string(), (None, Vec::new()));
        Ok(())
    }
    fn put_object_chunk(&self, id: &str, seq: u32, data: &[u8]) -> kindling_store::Result<()> {
        let mut blobs = self.blobs.lock().unwrap();
        let chunks = &mut blobs.get_mut(id).unwrap().1;
        assert_eq!(chunks.len(), seq as usize, "chunks in order");
        assert!(data.len() <= 4 * 1024 * 1024, "chunks are bounded");
        chunks.push(data.to_vec());
        Ok(())
    }
    fn finish_object_bytes(
        &self,
        id: &str,
        bytes: &kindling_store::StoredBytes,
    ) -> kindling_store::Result<()> {
        self.blobs.lock().unwrap().get_mut(id).unwrap().0 = Some(bytes.clone());
        Ok(())
    }
    fn object_bytes(
        &self,
        id: &str,
    ) -> kindling_store::Result<Option<kindling_store::StoredBytes>> {
        Ok(self.blobs.lock().unwrap().get(id).and_then(|b| b.0.clone()))
    }
    fn object_chunk(&self, id: &str, seq: u32) -> kindling_store::Result<Option<Vec<u8>>> {
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .get(id)
            .and_then(|b| b.1.get(seq as usize).cloned()))
    }
    fn delete_object_bytes(&self, ids: &[String]) -> kindling_store::Result<()> {
        let mut blobs = self.blobs.lock().unwrap();
        for id in ids {
            blobs.remove(id);
        }
        Ok(())
    }
    fn sweep_object_bytes(&self, _before_ms: i64) -> kindling_store::Result<usize> {
        Ok(0)
    }
}

/// Two nodes: one metadata store, one shared byte store, a file cache each.
fn two_nodes() -> (
    Objects,
    Objects,
    Arc<MemBytes>,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let meta = Arc::new(SqliteStore::in_memory().unwrap());
    let bytes = Arc::new(MemBytes::default());
    let open = |dir: &tempfile::TempDir| {
        Objects::open_with(
            meta.clone(),
            dir.path(),
            ObjectsConfig::default(),
            Some(bytes.clone()),
        )
        .unwrap()
    };
    (open(&da), open(&db), bytes, da, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn objects_put_on_one_node_are_read_on_another_checked_by_their_sha256() {
    let (a, b, bytes, _da, db_dir) = two_nodes();
    a.create_bucket("bkt", None).await.unwrap();
    // 9 MiB and a bit: three chunks in the shared store.
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let rec = put(&a, "bkt", "k", &data).await;
    {
        let blobs = bytes.blobs.lock().unwrap();
        let (head, chunks) = &blobs[&rec.blob];
        assert_eq!(head.as_ref().unwrap().size, data.len() as u64);
        assert_eq!(chunks.len(), 3);
    }
    assert_eq!(blob_files(db_dir.path()), 0);
    let (_, got) = b.read_object("bkt", "k", u64::MAX).await.unwrap();
    assert_eq!(got, data);
    assert_eq!(blob_files(db_dir.path()), 1, "B keeps a cached copy");

    // An overwrite through B: A reads the new bytes; the old blob is gone everywhere.
    let rec2 = put(&b, "bkt", "k", b"second").await;
    assert!(!bytes.blobs.lock().unwrap().contains_key(&rec.blob));
    assert_eq!(
        a.read_object("bkt", "k", u64::MAX).await.unwrap().1,
        b"second"
    );

    // A corrupted shared copy is refused, never served (B does not have it cached yet).
    let rec3 = put(&a, "bkt", "other", b"original bytes").await;
    bytes.blobs.lock().unwrap().get_mut(&rec3.blob).unwrap().1[0] = b"tampered bytes".to_vec();
    let err = b.read_object("bkt", "other", u64::MAX).await.unwrap_err();
    assert!(format!("{err:?}").contains("BlobMismatch"), "{err:?}");
    assert_eq!(
        blob_files(db_dir.path()),
        1,
        "nothing of the bad copy is kept"
    );
    assert!(
        std::fs::read_dir(db_dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );

    // Deleted through A: B's cached copy is swept as unreferenced.
    a.delete_object("bkt", "k").await.unwrap();
    assert!(!bytes.blobs.lock().unwrap().contains_key(&rec2.blob));
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    assert_eq!(b.sweep_blocking(later).unwrap(), 1);
    assert!(matches!(
        b.read_object("bkt", "k", u64::MAX).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_multipart_upload_spans_nodes() {
    let (a, b, bytes, _da, _db) = two_nodes();
    a.create_bucket("bkt", None).await.unwrap();
    let up = a
        .create_upload("bkt", "big", ObjectMeta::default(), None)
        .await
        .unwrap();
    let part1 = vec![b'a'; MIN_PART_SIZE as usize];
    let part2 = b"tail".to_vec();
    let mut etags = Vec::new();
    // Part 1 through A, part 2 through B; B completes it.
    for (o, n, data) in [(&a, 1u32, &part1), (&b, 2, &part2)] {
        let mut w = o
            .begin_part("bkt", "big", &up.upload_id, n, DigestPlan::default(), None)
            .await
            .unwrap();
        w.write(Bytes::copy_from_slice(data)).await.unwrap();
        let staged = w.finish().await.unwrap();
        let p = o
            .commit_part(staged, "bkt", "big", &up.upload_id, n)
            .await
            .unwrap();
        etags.push(CompletePart {
            part_number: n,
            etag: format!("\"{}\"", p.etag),
            checksum: None,
        });
    }
    let rec = b
        .complete_upload("bkt", "big", &up.upload_id, etags)
        .await
        .unwrap();
    let mut whole = part1.clone();
    whole.extend(&part2);
    assert_eq!(
        a.read_object("bkt", "big", u64::MAX).await.unwrap().1,
        whole
    );
    // Only the object's bytes remain shared: the parts went with the upload.
    let blobs = bytes.blobs.lock().unwrap();
    assert_eq!(blobs.keys().collect::<Vec<_>>(), [&rec.blob]);
}
