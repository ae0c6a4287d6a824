//! The object store's metadata: buckets, objects, multipart uploads and parts. Keys are bound
//! as BLOBs, so comparisons and ranges are byte-wise (S3's order).

use std::collections::BTreeMap;

use kindling_model::objects::{BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{record, records, to_json};
use crate::objects::{Completed, KeyRange, KeyStart, prefix_end};
use crate::{Entity, Result, StoreError};

pub(super) fn create_bucket(conn: &Connection, rec: &BucketRecord) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO s3_buckets (name, created_ms, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        params![rec.name, rec.created_ms, to_json(rec)?],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Bucket));
    }
    Ok(())
}

pub(super) fn bucket(conn: &Connection, name: &str) -> Result<Option<BucketRecord>> {
    record(
        conn,
        "SELECT record FROM s3_buckets WHERE name = ?1",
        [name],
    )
}

pub(super) fn buckets(conn: &Connection) -> Result<Vec<BucketRecord>> {
    records(conn, "SELECT record FROM s3_buckets ORDER BY name", [])
}

pub(super) fn set_bucket_config(
    conn: &Connection,
    name: &str,
    config: &BucketConfig,
) -> Result<()> {
    let mut rec = bucket(conn, name)?.ok_or(StoreError::NotFound(Entity::Bucket))?;
    match config {
        BucketConfig::Versioning(v) => rec.versioning = Some(*v),
        BucketConfig::Policy(p) => rec.policy.clone_from(p),
        BucketConfig::Tags(t) => rec.tags.clone_from(t),
        BucketConfig::Encryption(e) => rec.encryption.clone_from(e),
        BucketConfig::PublicAccessBlock(b) => rec.public_access_block = *b,
    }
    conn.execute(
        "UPDATE s3_buckets SET record = ?2 WHERE name = ?1",
        params![name, to_json(&rec)?],
    )?;
    Ok(())
}

pub(super) fn delete_bucket(conn: &Connection, name: &str) -> Result<Vec<String>> {
    if bucket(conn, name)?.is_none() {
        return Err(StoreError::NotFound(Entity::Bucket));
    }
    let has_objects: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM s3_objects WHERE bucket = ?1)")?
        .query_row([name], |r| r.get(0))?;
    if has_objects {
        return Err(StoreError::NotEmpty(Entity::Bucket));
    }
    let blobs = strings(
        conn,
        "SELECT p.blob FROM s3_parts p JOIN s3_uploads u ON u.upload_id = p.upload_id
         WHERE u.bucket = ?1",
        [name],
    )?;
    conn.execute("DELETE FROM s3_uploads WHERE bucket = ?1", [name])?;
    conn.execute("DELETE FROM s3_buckets WHERE name = ?1", [name])?;
    Ok(blobs)
}

fn strings(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn require_bucket(conn: &Connection, name: &str) -> Result<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM s3_buckets WHERE name = ?1)")?
        .query_row([name], |r| r.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(Entity::Bucket))
    }
}

fn current_blob(conn: &Connection, bucket: &str, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT blob FROM s3_objects WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![bucket, key.as_bytes()], |r| r.get(0))
        .optional()?)
}

/// Inserts or replaces an object row; returns the blob it replaced.
fn upsert_object(conn: &Connection, rec: &ObjectRecord) -> Result<Option<String>> {
    require_bucket(conn, &rec.bucket)?;
    let replaced = current_blob(conn, &rec.bucket, &rec.key)?;
    conn.execute(
        "INSERT INTO s3_objects (bucket, key, blob, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bucket, key) DO UPDATE SET blob = excluded.blob, record = excluded.record",
        params![rec.bucket, rec.key.as_bytes(), rec.blob, to_json(rec)?],
    )?;
    Ok(replaced.filter(|b| *b != rec.blob))
}

pub(super) fn put_object(conn: &Connection, rec: &ObjectRecord) -> Result<Option<String>> {
    upsert_object(conn, rec)
}

pub(super) fn object(conn: &Connection, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
    record(
        conn,
        "SELECT record FROM s3_objects WHERE bucket = ?1 AND key = ?2",
        params![bucket, key.as_bytes()],
    )
}

pub(super) fn list_objects(
    conn: &Connection,
    bucket: &str,
    range: KeyRange<'_>,
    limit: usize,
) -> Result<Vec<ObjectRecord>> {
    let end = prefix_end(range.prefix);
    let (lower, exclusive): (&[u8], bool) = match range.start {
        KeyStart::First => (range.prefix, false),
        KeyStart::At(k) if k > range.prefix => (k, false),
        KeyStart::At(_) => (range.prefix, false),
        KeyStart::After(k) if k >= range.prefix => (k, true),
        KeyStart::After(_) => (range.prefix, false),
    };
    let sql = if exclusive {
        "SELECT record FROM s3_objects
         WHERE bucket = ?1 AND key > ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key LIMIT ?4"
    } else {
        "SELECT record FROM s3_objects
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key LIMIT ?4"
    };
    records(
        conn,
        sql,
        params![bucket, lower, end, limit.min(i64::MAX as usize) as i64],
    )
}

pub(super) fn delete_object(conn: &Connection, bucket: &str, key: &str) -> Result<Option<String>> {
    require_bucket(conn, bucket)?;
    let blob = current_blob(conn, bucket, key)?;
    conn.execute(
        "DELETE FROM s3_objects WHERE bucket = ?1 AND key = ?2",
        params![bucket, key.as_bytes()],
    )?;
    Ok(blob)
}

pub(super) fn set_object_tags(
    conn: &Connection,
    bucket: &str,
    key: &str,
    blob: &str,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    let mut rec = object(conn, bucket, key)?
        .filter(|r| r.blob == blob)
        .ok_or(StoreError::NotFound(Entity::Object))?;
    rec.meta.tags.clone_from(tags);
    conn.execute(
        "UPDATE s3_objects SET record = ?3 WHERE bucket = ?1 AND key = ?2",
        params![bucket, key.as_bytes(), to_json(&rec)?],
    )?;
    Ok(())
}

pub(super) fn create_upload(conn: &Connection, rec: &UploadRecord) -> Result<()> {
    require_bucket(conn, &rec.bucket)?;
    conn.execute(
        "INSERT INTO s3_uploads (upload_id, bucket, key, initiated_ms, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.upload_id,
            rec.bucket,
            rec.key.as_bytes(),
            rec.initiated_ms,
            to_json(rec)?
        ],
    )?;
    Ok(())
}

pub(super) fn upload(conn: &Connection, upload_id: &str) -> Result<Option<UploadRecord>> {
    record(
        conn,
        "SELECT record FROM s3_uploads WHERE upload_id = ?1",
        [upload_id],
    )
}

pub(super) fn list_uploads(
    conn: &Connection,
    bucket: &str,
    prefix: &[u8],
    after: Option<(&[u8], &str)>,
    limit: usize,
) -> Result<Vec<UploadRecord>> {
    let end = prefix_end(prefix);
    let (after_key, after_id): (&[u8], &str) = after.unwrap_or((b"", ""));
    records(
        conn,
        "SELECT record FROM s3_uploads
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
           AND (key > ?4 OR (key = ?4 AND upload_id > ?5))
         ORDER BY key, upload_id LIMIT ?6",
        params![
            bucket,
            prefix,
            end,
            after_key,
            after_id,
            limit.min(i64::MAX as usize) as i64
        ],
    )
}

pub(super) fn put_part(conn: &Connection, rec: &PartRecord) -> Result<Option<String>> {
    if upload(conn, &rec.upload_id)?.is_none() {
        return Err(StoreError::NotFound(Entity::Upload));
    }
    let replaced: Option<String> = conn
        .prepare_cached("SELECT blob FROM s3_parts WHERE upload_id = ?1 AND part_number = ?2")?
        .query_row(params![rec.upload_id, rec.part_number], |r| r.get(0))
        .optional()?;
    conn.execute(
        "INSERT INTO s3_parts (upload_id, part_number, blob, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (upload_id, part_number)
         DO UPDATE SET blob = excluded.blob, record = excluded.record",
        params![rec.upload_id, rec.part_number, rec.blob, to_json(rec)?],
    )?;
    Ok(replaced.filter(|b| *b != rec.blob))
}

pub(super) fn parts(
    conn: &Connection,
    upload_id: &str,
    after: u32,
    limit: usize,
) -> Result<Vec<PartRecord>> {
    records(
        conn,
        "SELECT record FROM s3_parts WHERE upload_id = ?1 AND part_number > ?2
         ORDER BY part_number LIMIT ?3",
        params![upload_id, after, limit.min(i64::MAX as usize) as i64],
    )
}

pub(super) fn complete_upload(
    conn: &Connection,
    upload_id: &str,
    object: &ObjectRecord,
) -> Result<Completed> {
    if upload(conn, upload_id)?.is_none() {
        return Err(StoreError::NotFound(Entity::Upload));
    }
    let parts = strings(
        conn,
        "SELECT blob FROM s3_parts WHERE upload_id = ?1",
        [upload_id],
    )?;
    conn.execute("DELETE FROM s3_uploads WHERE upload_id = ?1", [upload_id])?;
    let replaced = upsert_object(conn, object)?;
    Ok(Completed { replaced, parts })
}

pub(super) fn abort_upload(conn: &Connection, upload_id: &str) -> Result<Vec<String>> {
    if upload(conn, upload_id)?.is_none() {
        return Err(StoreError::NotFound(Entity::Upload));
    }
    let parts = strings(
        conn,
        "SELECT blob FROM s3_parts WHERE upload_id = ?1",
        [upload_id],
    )?;
    conn.execute("DELETE FROM s3_uploads WHERE upload_id = ?1", [upload_id])?;
    Ok(parts)
}

pub(super) fn unreferenced_blobs(conn: &Connection, blobs: &[String]) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT NOT EXISTS (SELECT 1 FROM s3_objects WHERE blob = ?1)
            AND NOT EXISTS (SELECT 1 FROM s3_parts WHERE blob = ?1)",
    )?;
    let mut out = Vec::new();
    for blob in blobs {
        if stmt.query_row([blob], |r| r.get::<_, bool>(0))? {
            out.push(blob.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use kindling_model::objects::{ObjectMeta, Versioning};

    use crate::objects::ObjectStore;
    use crate::sqlite::SqliteStore;
    use crate::{Entity, StoreError};

    use super::*;

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

    #[test]
    fn buckets_are_unique_configurable_and_deleted_only_when_empty() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_bucket(&bucket_rec("b")).unwrap();
        assert!(matches!(
            s.create_bucket(&bucket_rec("b")),
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

    #[test]
    fn objects_replace_and_list_in_byte_order_by_prefix_and_start() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_bucket(&bucket_rec("b")).unwrap();
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

    #[test]
    fn uploads_collect_parts_and_complete_or_abort_atomically() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_bucket(&bucket_rec("b")).unwrap();
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
}
