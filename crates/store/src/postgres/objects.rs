//! The object store's metadata on PostgreSQL. Keys are `bytea`, so comparisons and ranges are
//! byte-wise (S3's order). A write that replaces a row locks it first, so that of two writers
//! of one key each learns exactly the blob it replaced (none is dropped unreported).

use std::collections::BTreeMap;

use super::connections::Tx;
use kindling_model::objects::{BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord};

use super::records::{limit, strings};
use super::rows::{record, records, to_json};
use crate::objects::{Completed, KeyRange, prefix_end};
use crate::{Entity, Result, StoreError};

/// Serializes bucket creations across nodes, so that the count checked is the count inserted
/// into (a one-key advisory lock, apart from the other modules' keys).
const BUCKETS_LOCK: i64 = 7_361_524_896;

pub(super) fn create_bucket(tx: &mut Tx<'_>, rec: &BucketRecord, max: usize) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BUCKETS_LOCK])?;
    let count: i64 = tx.query_one("SELECT COUNT(*) FROM s3_buckets", &[])?.get(0);
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        let taken = tx
            .query_opt("SELECT 1 FROM s3_buckets WHERE name = $1", &[&rec.name])?
            .is_some();
        return Err(if taken {
            StoreError::AlreadyExists(Entity::Bucket)
        } else {
            StoreError::LimitExceeded
        });
    }
    let n = tx.execute(
        "INSERT INTO s3_buckets (name, created_ms, record) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &[&rec.name, &rec.created_ms, &to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::Bucket));
    }
    Ok(())
}

pub(super) fn bucket(tx: &mut Tx<'_>, name: &str) -> Result<Option<BucketRecord>> {
    record(
        tx,
        "SELECT record FROM s3_buckets WHERE name = $1",
        &[&name],
    )
}

pub(super) fn buckets(tx: &mut Tx<'_>) -> Result<Vec<BucketRecord>> {
    records(tx, "SELECT record FROM s3_buckets ORDER BY name", &[])
}

pub(super) fn set_bucket_config(tx: &mut Tx<'_>, name: &str, config: &BucketConfig) -> Result<()> {
    let mut rec: BucketRecord = record(
        tx,
        "SELECT record FROM s3_buckets WHERE name = $1 FOR NO KEY UPDATE",
        &[&name],
    )?
    .ok_or(StoreError::NotFound(Entity::Bucket))?;
    match config {
        BucketConfig::Versioning(v) => rec.versioning = Some(*v),
        BucketConfig::Policy(p) => rec.policy.clone_from(p),
        BucketConfig::Tags(t) => rec.tags.clone_from(t),
        BucketConfig::Encryption(e) => rec.encryption.clone_from(e),
        BucketConfig::PublicAccessBlock(b) => rec.public_access_block = *b,
    }
    tx.execute(
        "UPDATE s3_buckets SET record = $2 WHERE name = $1",
        &[&name, &to_json(&rec)?],
    )?;
    Ok(())
}

pub(super) fn delete_bucket(tx: &mut Tx<'_>, name: &str) -> Result<Vec<String>> {
    // Locks the bucket: objects and uploads being added wait (their key check), then fail.
    if tx
        .query_opt(
            "SELECT 1 FROM s3_buckets WHERE name = $1 FOR UPDATE",
            &[&name],
        )?
        .is_none()
    {
        return Err(StoreError::NotFound(Entity::Bucket));
    }
    let has_objects: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM s3_objects WHERE bucket = $1)",
            &[&name],
        )?
        .get(0);
    if has_objects {
        return Err(StoreError::NotEmpty(Entity::Bucket));
    }
    let blobs = strings(
        tx,
        "SELECT p.blob FROM s3_parts p JOIN s3_uploads u ON u.upload_id = p.upload_id
         WHERE u.bucket = $1",
        &[&name],
    )?;
    tx.execute("DELETE FROM s3_uploads WHERE bucket = $1", &[&name])?;
    tx.execute("DELETE FROM s3_buckets WHERE name = $1", &[&name])?;
    Ok(blobs)
}

fn require_bucket(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM s3_buckets WHERE name = $1 FOR KEY SHARE",
        &[&name],
    )?
    .map(|_| ())
    .ok_or(StoreError::NotFound(Entity::Bucket))
}

/// Inserts or replaces an object row; returns the blob it replaced.
fn upsert_object(tx: &mut Tx<'_>, rec: &ObjectRecord) -> Result<Option<String>> {
    require_bucket(tx, &rec.bucket)?;
    let key = rec.key.as_bytes();
    let json = to_json(rec)?;
    loop {
        let current: Option<String> = tx
            .query_opt(
                "SELECT blob FROM s3_objects WHERE bucket = $1 AND key = $2 FOR UPDATE",
                &[&rec.bucket, &key],
            )?
            .map(|r| r.get(0));
        match current {
            Some(replaced) => {
                tx.execute(
                    "UPDATE s3_objects SET blob = $3, record = $4 WHERE bucket = $1 AND key = $2",
                    &[&rec.bucket, &key, &rec.blob, &json],
                )?;
                return Ok(Some(replaced).filter(|b| *b != rec.blob));
            }
            None => {
                let n = tx.execute(
                    "INSERT INTO s3_objects (bucket, key, blob, record) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (bucket, key) DO NOTHING",
                    &[&rec.bucket, &key, &rec.blob, &json],
                )?;
                if n == 1 {
                    return Ok(None);
                }
                // Another writer inserted the key meanwhile: replace its object instead.
            }
        }
    }
}

pub(super) fn put_object(tx: &mut Tx<'_>, rec: &ObjectRecord) -> Result<Option<String>> {
    upsert_object(tx, rec)
}

pub(super) fn object(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
    record(
        tx,
        "SELECT record FROM s3_objects WHERE bucket = $1 AND key = $2",
        &[&bucket, &key.as_bytes()],
    )
}

pub(super) fn list_objects(
    tx: &mut Tx<'_>,
    bucket: &str,
    range: KeyRange<'_>,
    n: usize,
) -> Result<Vec<ObjectRecord>> {
    let end = prefix_end(range.prefix);
    let (lower, exclusive) = range.lower_bound();
    let sql = if exclusive {
        "SELECT record FROM s3_objects
         WHERE bucket = $1 AND key > $2 AND ($3::BYTEA IS NULL OR key < $3)
         ORDER BY key LIMIT $4"
    } else {
        "SELECT record FROM s3_objects
         WHERE bucket = $1 AND key >= $2 AND ($3::BYTEA IS NULL OR key < $3)
         ORDER BY key LIMIT $4"
    };
    records(tx, sql, &[&bucket, &lower, &end, &limit(n)])
}

pub(super) fn delete_object(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<Option<String>> {
    require_bucket(tx, bucket)?;
    Ok(tx
        .query_opt(
            "DELETE FROM s3_objects WHERE bucket = $1 AND key = $2 RETURNING blob",
            &[&bucket, &key.as_bytes()],
        )?
        .map(|r| r.get(0)))
}

pub(super) fn set_object_tags(
    tx: &mut Tx<'_>,
    bucket: &str,
    key: &str,
    blob: &str,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    let mut rec: ObjectRecord = record(
        tx,
        "SELECT record FROM s3_objects WHERE bucket = $1 AND key = $2 AND blob = $3 FOR UPDATE",
        &[&bucket, &key.as_bytes(), &blob],
    )?
    .ok_or(StoreError::NotFound(Entity::Object))?;
    rec.meta.tags.clone_from(tags);
    tx.execute(
        "UPDATE s3_objects SET record = $3 WHERE bucket = $1 AND key = $2",
        &[&bucket, &key.as_bytes(), &to_json(&rec)?],
    )?;
    Ok(())
}

pub(super) fn create_upload(tx: &mut Tx<'_>, rec: &UploadRecord) -> Result<()> {
    require_bucket(tx, &rec.bucket)?;
    tx.execute(
        "INSERT INTO s3_uploads (upload_id, bucket, key, initiated_ms, record)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &rec.upload_id,
            &rec.bucket,
            &rec.key.as_bytes(),
            &rec.initiated_ms,
            &to_json(rec)?,
        ],
    )?;
    Ok(())
}

pub(super) fn upload(tx: &mut Tx<'_>, upload_id: &str) -> Result<Option<UploadRecord>> {
    record(
        tx,
        "SELECT record FROM s3_uploads WHERE upload_id = $1",
        &[&upload_id],
    )
}

/// Locks an upload (against a concurrent completion or abort); `NotFound(Upload)` if gone.
fn lock_upload(tx: &mut Tx<'_>, upload_id: &str) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM s3_uploads WHERE upload_id = $1 FOR UPDATE",
        &[&upload_id],
    )?
    .map(|_| ())
    .ok_or(StoreError::NotFound(Entity::Upload))
}

pub(super) fn list_uploads(
    tx: &mut Tx<'_>,
    bucket: &str,
    prefix: &[u8],
    after: Option<(&[u8], &str)>,
    n: usize,
) -> Result<Vec<UploadRecord>> {
    let end = prefix_end(prefix);
    let (after_key, after_id): (&[u8], &str) = after.unwrap_or((b"", ""));
    records(
        tx,
        "SELECT record FROM s3_uploads
         WHERE bucket = $1 AND key >= $2 AND ($3::BYTEA IS NULL OR key < $3)
           AND (key > $4 OR (key = $4 AND upload_id > $5))
         ORDER BY key, upload_id LIMIT $6",
        &[&bucket, &prefix, &end, &after_key, &after_id, &limit(n)],
    )
}

pub(super) fn put_part(tx: &mut Tx<'_>, rec: &PartRecord) -> Result<Option<String>> {
    // A shared lock: parts of one upload are stored at once, a completion waits for them.
    if tx
        .query_opt(
            "SELECT 1 FROM s3_uploads WHERE upload_id = $1 FOR SHARE",
            &[&rec.upload_id],
        )?
        .is_none()
    {
        return Err(StoreError::NotFound(Entity::Upload));
    }
    let part = i32::try_from(rec.part_number).map_err(|_| StoreError::Invalid("part number"))?;
    let json = to_json(rec)?;
    loop {
        let current: Option<String> = tx
            .query_opt(
                "SELECT blob FROM s3_parts WHERE upload_id = $1 AND part_number = $2 FOR UPDATE",
                &[&rec.upload_id, &part],
            )?
            .map(|r| r.get(0));
        if let Some(replaced) = current {
            tx.execute(
                "UPDATE s3_parts SET blob = $3, record = $4
                 WHERE upload_id = $1 AND part_number = $2",
                &[&rec.upload_id, &part, &rec.blob, &json],
            )?;
            return Ok(Some(replaced).filter(|b| *b != rec.blob));
        }
        let n = tx.execute(
            "INSERT INTO s3_parts (upload_id, part_number, blob, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (upload_id, part_number) DO NOTHING",
            &[&rec.upload_id, &part, &rec.blob, &json],
        )?;
        if n == 1 {
            return Ok(None);
        }
    }
}

pub(super) fn parts(
    tx: &mut Tx<'_>,
    upload_id: &str,
    after: u32,
    n: usize,
) -> Result<Vec<PartRecord>> {
    let after = i32::try_from(after).unwrap_or(i32::MAX);
    records(
        tx,
        "SELECT record FROM s3_parts WHERE upload_id = $1 AND part_number > $2
         ORDER BY part_number LIMIT $3",
        &[&upload_id, &after, &limit(n)],
    )
}

pub(super) fn complete_upload(
    tx: &mut Tx<'_>,
    upload_id: &str,
    object: &ObjectRecord,
) -> Result<Completed> {
    lock_upload(tx, upload_id)?;
    let parts = strings(
        tx,
        "SELECT blob FROM s3_parts WHERE upload_id = $1",
        &[&upload_id],
    )?;
    tx.execute("DELETE FROM s3_uploads WHERE upload_id = $1", &[&upload_id])?;
    let replaced = upsert_object(tx, object)?;
    Ok(Completed { replaced, parts })
}

pub(super) fn abort_upload(tx: &mut Tx<'_>, upload_id: &str) -> Result<Vec<String>> {
    lock_upload(tx, upload_id)?;
    let parts = strings(
        tx,
        "SELECT blob FROM s3_parts WHERE upload_id = $1",
        &[&upload_id],
    )?;
    tx.execute("DELETE FROM s3_uploads WHERE upload_id = $1", &[&upload_id])?;
    Ok(parts)
}

pub(super) fn unreferenced_blobs(tx: &mut Tx<'_>, blobs: &[String]) -> Result<Vec<String>> {
    // One query for the whole list, in the caller's order.
    strings(
        tx,
        "SELECT b FROM unnest($1::TEXT[]) WITH ORDINALITY AS t(b, i)
         WHERE NOT EXISTS (SELECT 1 FROM s3_objects WHERE blob = t.b)
           AND NOT EXISTS (SELECT 1 FROM s3_parts WHERE blob = t.b)
         ORDER BY t.i",
        &[&blobs],
    )
}
