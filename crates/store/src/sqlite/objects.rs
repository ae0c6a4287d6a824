//! The object store's metadata: buckets, objects, multipart uploads and parts. Keys are bound
//! as BLOBs, so comparisons and ranges are byte-wise (S3's order).

use std::collections::BTreeMap;

use kindling_model::objects::{BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{record, records, to_json};
use crate::objects::{Completed, KeyRange, prefix_end};
use crate::{Entity, Result, StoreError};

pub(super) fn create_bucket(conn: &Connection, rec: &BucketRecord, max: usize) -> Result<()> {
    // (Writes are serialized: the count cannot change before the insert.)
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM s3_buckets", [], |r| r.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        let taken = conn
            .query_row(
                "SELECT 1 FROM s3_buckets WHERE name = ?1",
                [&rec.name],
                |_| Ok(()),
            )
            .optional()?;
        return Err(match taken {
            Some(()) => StoreError::AlreadyExists(Entity::Bucket),
            None => StoreError::LimitExceeded,
        });
    }
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
    let (lower, exclusive) = range.lower_bound();
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
