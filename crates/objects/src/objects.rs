//! Objects: streamed writes, reads, copies, deletes and tags.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};

use bytes::Bytes;
use kindling_model::objects::{
    ChecksumAlgorithm, ObjectChecksum, ObjectMeta, ObjectRecord, Versioning,
};
use kindling_store::{Entity, StoreError};

use crate::buckets::no_such_bucket;
use crate::digest::{DigestPlan, Hasher};
use crate::error::{ObjectError, Result};
use crate::files::{BlobWriter, Staged};
use crate::names::validate_key;
use crate::{Inner, Objects, now_ms};

/// What a new object carries besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewObject {
    pub meta: ObjectMeta,
    /// The checksum to keep and report (one the writer computed).
    pub checksum: Option<ChecksumAlgorithm>,
}

/// What the client claims about the bytes it sent; [`Staged::verify`] checks each claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The decoded length (`Content-Length`, `x-amz-decoded-content-length`).
    pub size: Option<u64>,
    /// `Content-MD5`.
    pub content_md5: Option<[u8; 16]>,
    /// A hex `x-amz-content-sha256` (the signed payload hash of a plain body).
    pub sha256: Option<[u8; 32]>,
    /// `x-amz-checksum-*` headers or trailers.
    pub checksums: Vec<(ChecksumAlgorithm, Vec<u8>)>,
}

impl Staged {
    /// Checks the bytes against what the client said about them: `IncompleteBody`,
    /// `BadDigest`, `ContentSha256Mismatch` or `ChecksumMismatch`.
    pub fn verify(&self, expect: &Expectations) -> Result<()> {
        let d = self.digests();
        if let Some(size) = expect.size
            && size != d.size
        {
            return Err(ObjectError::IncompleteBody {
                expected: size,
                received: d.size,
            });
        }
        if let Some(md5) = expect.content_md5
            && md5 != d.md5
        {
            return Err(ObjectError::BadDigest);
        }
        if let Some(sha) = expect.sha256
            && Some(sha) != d.sha256
        {
            return Err(ObjectError::ContentSha256Mismatch);
        }
        for (algorithm, value) in &expect.checksums {
            let computed = d.checksums.iter().find(|(a, _)| a == algorithm);
            if computed.is_none_or(|(_, c)| c != value) {
                return Err(ObjectError::ChecksumMismatch {
                    algorithm: *algorithm,
                });
            }
        }
        Ok(())
    }
}

/// How CopyObject sets the new object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataDirective {
    /// The source's metadata and tags.
    Copy,
    /// These instead.
    Replace(Box<ObjectMeta>),
}

/// An object opened for reading: its record and its file, opened before the record could be
/// replaced (a concurrent overwrite or delete does not affect this read).
#[derive(Debug)]
pub struct OpenedObject {
    pub record: ObjectRecord,
    pub file: File,
}

fn no_such_key(bucket: &str, key: &str) -> ObjectError {
    let _ = bucket;
    ObjectError::NoSuchKey {
        key: key.to_string(),
    }
}

/// The current object of a key, checked against a requested version.
fn current(
    inner: &Inner,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<ObjectRecord> {
    let Some(rec) = inner.store.object(bucket, key)? else {
        if inner.store.bucket(bucket)?.is_none() {
            return Err(ObjectError::NoSuchBucket {
                bucket: bucket.to_string(),
            });
        }
        return Err(match version_id {
            Some(v) => ObjectError::NoSuchVersion {
                key: key.to_string(),
                version_id: v.to_string(),
            },
            None => no_such_key(bucket, key),
        });
    };
    if let Some(v) = version_id {
        let matches = match &rec.version_id {
            Some(id) => id == v,
            None => v == "null",
        };
        if !matches {
            return Err(ObjectError::NoSuchVersion {
                key: key.to_string(),
                version_id: v.to_string(),
            });
        }
    }
    Ok(rec)
}

/// Opens the current object's file; retries when a concurrent overwrite removed the file
/// between reading the record and opening it.
fn open(inner: &Inner, bucket: &str, key: &str, version_id: Option<&str>) -> Result<OpenedObject> {
    for _ in 0..3 {
        let record = current(inner, bucket, key, version_id)?;
        match inner.files.open_blob(&record.blob) {
            Ok(file) => return Ok(OpenedObject { record, file }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ObjectError::MissingData {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// A new version id for a versioning-enabled bucket.
fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// How the bytes of a new object were assembled.
pub(crate) struct Assembled {
    pub etag: String,
    /// Parts of a multipart object.
    pub parts: Option<u32>,
    /// Whether its checksum is a checksum of part checksums.
    pub composite: bool,
}

impl Assembled {
    fn single(staged: &Staged) -> Self {
        Self {
            etag: staged.digests().etag(),
            parts: None,
            composite: false,
        }
    }
}

/// Publishes a staged file and commits it as the key's object; deletes what it replaced.
pub(crate) fn commit(
    inner: &Inner,
    staged: Staged,
    bucket: &str,
    key: &str,
    new: NewObject,
    how: Assembled,
) -> Result<ObjectRecord> {
    let b = inner
        .store
        .bucket(bucket)?
        .ok_or_else(|| ObjectError::NoSuchBucket {
            bucket: bucket.to_string(),
        })?;
    let digests = staged.digests().clone();
    let checksum = new.checksum.and_then(|algorithm| {
        digests.checksum_b64(algorithm).map(|value| ObjectChecksum {
            algorithm,
            value,
            composite: how.composite,
        })
    });
    let blob = staged.publish()?;
    let record = ObjectRecord {
        bucket: bucket.to_string(),
        key: key.to_string(),
        blob: blob.clone(),
        size: digests.size,
        etag: how.etag,
        last_modified_ms: now_ms(),
        version_id: (b.versioning == Some(Versioning::Enabled)).then(new_version_id),
        meta: new.meta,
        checksum,
        parts: how.parts,
    };
    match inner.store.put_object(&record) {
        Ok(replaced) => {
            inner
                .files
                .remove(&replaced.into_iter().collect::<Vec<_>>());
            Ok(record)
        }
        Err(e) => {
            inner.files.remove(&[blob]);
            Err(no_such_bucket(bucket)(e))
        }
    }
}

impl Objects {
    /// Starts a PutObject: checks the key, the declared size and the bucket, then returns the
    /// writer the body goes to (at most the single-object limit).
    pub async fn begin_put(
        &self,
        bucket: &str,
        key: &str,
        plan: DigestPlan,
        declared_size: Option<u64>,
    ) -> Result<BlobWriter> {
        validate_key(key)?;
        let limit = self.inner.config.max_object_size;
        if let Some(size) = declared_size
            && size > limit
        {
            return Err(ObjectError::EntityTooLarge { size, max: limit });
        }
        let bucket = bucket.to_string();
        self.blocking(move |inner| {
            if inner.store.bucket(&bucket)?.is_none() {
                return Err(ObjectError::NoSuchBucket { bucket });
            }
            Ok(inner.files.create(&plan, limit)?)
        })
        .await
    }

    /// Makes a verified, staged body the key's object.
    pub async fn commit_put(
        &self,
        staged: Staged,
        bucket: &str,
        key: &str,
        new: NewObject,
    ) -> Result<ObjectRecord> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.blocking(move |inner| {
            let how = Assembled::single(&staged);
            commit(inner, staged, &bucket, &key, new, how)
        })
        .await
    }

    /// Stores `data` as an object in one call (templates, small files).
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        new: NewObject,
    ) -> Result<ObjectRecord> {
        let plan = DigestPlan {
            sha256: false,
            checksums: new.checksum.into_iter().collect(),
        };
        let mut writer = self
            .begin_put(bucket, key, plan, Some(data.len() as u64))
            .await?;
        writer.write(data).await?;
        let staged = writer.finish().await?;
        self.commit_put(staged, bucket, key, new).await
    }

    /// An object's record (HeadObject).
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectRecord> {
        let (bucket, key, version) = owned(bucket, key, version_id);
        self.blocking(move |inner| current(inner, &bucket, &key, version.as_deref()))
            .await
    }

    /// Opens an object for reading (GetObject).
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<OpenedObject> {
        let (bucket, key, version) = owned(bucket, key, version_id);
        self.blocking(move |inner| open(inner, &bucket, &key, version.as_deref()))
            .await
    }

    /// The whole object in memory, if it is at most `max` bytes (else `EntityTooLarge`).
    pub async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        max: u64,
    ) -> Result<(ObjectRecord, Vec<u8>)> {
        let this = self.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || this.read_object_blocking(&bucket, &key, None, max))
            .await?
    }

    /// [`Objects::read_object`] for callers already on a blocking thread (the control plane),
    /// with an optional version.
    pub fn read_object_blocking(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max: u64,
    ) -> Result<(ObjectRecord, Vec<u8>)> {
        let OpenedObject { record, file } = open(&self.inner, bucket, key, version_id)?;
        if record.size > max {
            return Err(ObjectError::EntityTooLarge {
                size: record.size,
                max,
            });
        }
        let mut data = Vec::with_capacity(record.size as usize);
        file.take(max.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 != record.size {
            return Err(ObjectError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "object {bucket}/{key} holds {} bytes, its record says {}",
                    data.len(),
                    record.size
                ),
            )));
        }
        Ok((record, data))
    }

    /// CopyObject: the source's bytes under a new key (or the same key with new metadata).
    pub async fn copy_object(
        &self,
        source: (&str, &str, Option<&str>),
        bucket: &str,
        key: &str,
        directive: MetadataDirective,
    ) -> Result<ObjectRecord> {
        validate_key(key)?;
        let (src_bucket, src_key, src_version) = owned(source.0, source.1, source.2);
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let limit = self.inner.config.max_object_size;
        self.blocking(move |inner| {
            if inner.store.bucket(&bucket)?.is_none() {
                return Err(ObjectError::NoSuchBucket { bucket });
            }
            let OpenedObject { record, mut file } =
                open(inner, &src_bucket, &src_key, src_version.as_deref())?;
            if src_bucket == bucket && src_key == key && directive == MetadataDirective::Copy {
                return Err(ObjectError::InvalidRequest(
                    "This copy request is illegal because it is trying to copy an object to \
                     itself without changing the object's metadata, storage class, website \
                     redirect location or encryption attributes."
                        .into(),
                ));
            }
            if record.size > limit {
                return Err(ObjectError::InvalidRequest(format!(
                    "The specified copy source is larger than the maximum allowable size for a \
                     copy source: {limit}"
                )));
            }
            let checksum = record.checksum.as_ref().map(|c| c.algorithm);
            let plan = DigestPlan {
                sha256: false,
                checksums: checksum.into_iter().collect(),
            };
            let staged = copy_into(inner, &mut file, &plan)?;
            let meta = match directive {
                MetadataDirective::Copy => record.meta,
                MetadataDirective::Replace(meta) => *meta,
            };
            let how = Assembled::single(&staged);
            commit(
                inner,
                staged,
                &bucket,
                &key,
                NewObject { meta, checksum },
                how,
            )
        })
        .await
    }

    /// DeleteObject: succeeds for a missing key, `NoSuchBucket` for a missing bucket.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.blocking(move |inner| {
            let blob = inner
                .store
                .delete_object(&bucket, &key)
                .map_err(no_such_bucket(&bucket))?;
            inner.files.remove(&blob.into_iter().collect::<Vec<_>>());
            Ok(())
        })
        .await
    }

    /// DeleteObjects: each key's outcome, in order.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Result<()>)>> {
        let bucket = bucket.to_string();
        self.blocking(move |inner| {
            if inner.store.bucket(&bucket)?.is_none() {
                return Err(ObjectError::NoSuchBucket { bucket });
            }
            Ok(keys
                .into_iter()
                .map(|key| {
                    let outcome = validate_key(&key).and_then(|()| {
                        let blob = inner
                            .store
                            .delete_object(&bucket, &key)
                            .map_err(no_such_bucket(&bucket))?;
                        inner.files.remove(&blob.into_iter().collect::<Vec<_>>());
                        Ok(())
                    });
                    (key, outcome)
                })
                .collect())
        })
        .await
    }

    /// Replaces an object's tags.
    pub async fn put_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<ObjectRecord> {
        let (bucket, key, version) = owned(bucket, key, version_id);
        self.blocking(move |inner| {
            for _ in 0..3 {
                let mut rec = current(inner, &bucket, &key, version.as_deref())?;
                match inner.store.set_object_tags(&bucket, &key, &rec.blob, &tags) {
                    Ok(()) => {
                        rec.meta.tags = tags;
                        return Ok(rec);
                    }
                    // Overwritten meanwhile: tag the new object.
                    Err(StoreError::NotFound(Entity::Object)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(no_such_key(&bucket, &key))
        })
        .await
    }
}

/// Copies `file` into a new staged blob, hashing it (blocking).
fn copy_into(inner: &Inner, file: &mut File, plan: &DigestPlan) -> Result<Staged> {
    let mut out = inner.files.create_sync()?;
    let mut hasher = Hasher::new(plan);
    append(file, &mut out.file, &mut hasher)?;
    Ok(out.into_staged(hasher.finish())?)
}

/// Appends all of `from` to `to`, hashing it on the way (blocking).
pub(crate) fn append(from: &mut File, to: &mut File, hasher: &mut Hasher) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn owned(bucket: &str, key: &str, version: Option<&str>) -> (String, String, Option<String>) {
    (
        bucket.to_string(),
        key.to_string(),
        version.map(str::to_string),
    )
}
