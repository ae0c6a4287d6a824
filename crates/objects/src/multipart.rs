//! Multipart uploads: parts are files of their own; completing an upload concatenates the
//! chosen parts into one new file (computing its full-object checksum), then commits the
//! object and drops the upload in one transaction.

use kindling_model::objects::{
    ChecksumAlgorithm, ObjectChecksum, ObjectMeta, ObjectRecord, PartRecord, UploadRecord,
    Versioning,
};
use kindling_store::{Entity, StoreError};

use crate::buckets::no_such_bucket;
use crate::digest::{DigestPlan, Hasher, md5, unhex};
use crate::error::{ObjectError, Result};
use crate::files::{BlobWriter, Staged};
use crate::names::validate_key;
use crate::objects::append;
use crate::{Inner, MAX_PART_NUMBER, MIN_PART_SIZE, Objects, now_ms};

/// Most parts or uploads one listing page holds.
const MAX_LIST: usize = 1000;

/// A part named in CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePart {
    pub part_number: u32,
    /// The part's ETag, quotes allowed.
    pub etag: String,
    /// The part's checksum in the upload's algorithm (base64), when the client sent one.
    pub checksum: Option<String>,
}

/// A page of ListParts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsPage {
    pub upload: UploadRecord,
    pub parts: Vec<PartRecord>,
    pub truncated: bool,
    /// The last part number of this page.
    pub next_marker: Option<u32>,
}

/// A page of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadsPage {
    pub uploads: Vec<UploadRecord>,
    pub truncated: bool,
    /// The (key, upload id) to continue after.
    pub next: Option<(String, String)>,
}

fn no_such_upload(upload_id: &str) -> ObjectError {
    ObjectError::NoSuchUpload {
        upload_id: upload_id.to_string(),
    }
}

/// The upload `upload_id` of `bucket`/`key`.
fn upload_of(inner: &Inner, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
    match inner.store.upload(upload_id)? {
        Some(u) if u.bucket == bucket && u.key == key => Ok(u),
        _ if inner.store.bucket(bucket)?.is_none() => Err(ObjectError::NoSuchBucket {
            bucket: bucket.to_string(),
        }),
        _ => Err(no_such_upload(upload_id)),
    }
}

fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(ObjectError::InvalidArgument(format!(
            "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
        )))
    }
}

fn strip_quotes(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

impl Objects {
    /// CreateMultipartUpload.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<UploadRecord> {
        validate_key(key)?;
        let rec = UploadRecord {
            upload_id: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            bucket: bucket.to_string(),
            key: key.to_string(),
            initiated_ms: now_ms(),
            meta,
            checksum_algorithm,
        };
        self.blocking(move |inner| {
            inner
                .store
                .create_upload(&rec)
                .map_err(no_such_bucket(&rec.bucket))?;
            Ok(rec)
        })
        .await
    }

    /// Starts an UploadPart: checks the upload and the part number, returns the writer.
    /// The upload's checksum algorithm is always computed.
    pub async fn begin_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        mut plan: DigestPlan,
        declared_size: Option<u64>,
    ) -> Result<BlobWriter> {
        check_part_number(part_number)?;
        let limit = self.inner.config.max_object_size;
        if let Some(size) = declared_size
            && size > limit
        {
            return Err(ObjectError::EntityTooLarge { size, max: limit });
        }
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.blocking(move |inner| {
            let upload = upload_of(inner, &bucket, &key, &upload_id)?;
            if let Some(a) = upload.checksum_algorithm
                && !plan.checksums.contains(&a)
            {
                plan.checksums.push(a);
            }
            Ok(inner.files.create(&plan, limit)?)
        })
        .await
    }

    /// Stores a verified, staged part (replacing one with the same number).
    pub async fn commit_part(
        &self,
        staged: Staged,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
    ) -> Result<PartRecord> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.blocking(move |inner| {
            let upload = upload_of(inner, &bucket, &key, &upload_id)?;
            let digests = staged.digests().clone();
            let blob = staged.publish()?;
            let rec = PartRecord {
                upload_id: upload_id.clone(),
                part_number,
                blob: blob.clone(),
                size: digests.size,
                etag: digests.etag(),
                last_modified_ms: now_ms(),
                checksum: upload
                    .checksum_algorithm
                    .and_then(|a| digests.checksum_b64(a)),
            };
            match inner.store.put_part(&rec) {
                Ok(replaced) => {
                    inner
                        .files
                        .remove(&replaced.into_iter().collect::<Vec<_>>());
                    Ok(rec)
                }
                Err(e) => {
                    inner.files.remove(&[blob]);
                    Err(match e {
                        StoreError::NotFound(Entity::Upload) => no_such_upload(&upload_id),
                        e => e.into(),
                    })
                }
            }
        })
        .await
    }

    /// ListParts: parts numbered after `marker`, at most `max` (capped at 1000).
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<PartsPage> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let max = max.min(MAX_LIST);
        self.blocking(move |inner| {
            let upload = upload_of(inner, &bucket, &key, &upload_id)?;
            let mut parts = inner.store.parts(&upload_id, marker, max + 1)?;
            let truncated = parts.len() > max;
            parts.truncate(max);
            let next_marker = parts.last().map(|p| p.part_number);
            Ok(PartsPage {
                upload,
                parts,
                truncated,
                next_marker,
            })
        })
        .await
    }

    /// ListMultipartUploads: uploads whose key starts with `prefix`, after (`key`,
    /// `upload id`) markers, at most `max` (capped at 1000).
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, String)>,
        max: usize,
    ) -> Result<UploadsPage> {
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        let max = max.min(MAX_LIST);
        self.blocking(move |inner| {
            if inner.store.bucket(&bucket)?.is_none() {
                return Err(ObjectError::NoSuchBucket { bucket });
            }
            let after_ref = after.as_ref().map(|(k, u)| (k.as_bytes(), u.as_str()));
            let mut uploads =
                inner
                    .store
                    .list_uploads(&bucket, prefix.as_bytes(), after_ref, max + 1)?;
            let truncated = uploads.len() > max;
            uploads.truncate(max);
            let next = truncated
                .then(|| uploads.last().map(|u| (u.key.clone(), u.upload_id.clone())))
                .flatten();
            Ok(UploadsPage {
                uploads,
                truncated,
                next,
            })
        })
        .await
    }

    /// AbortMultipartUpload.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.blocking(move |inner| {
            upload_of(inner, &bucket, &key, &upload_id)?;
            let blobs = inner.store.abort_upload(&upload_id).map_err(|e| match e {
                StoreError::NotFound(_) => no_such_upload(&upload_id),
                e => e.into(),
            })?;
            inner.files.remove(&blobs);
            Ok(())
        })
        .await
    }

    /// CompleteMultipartUpload: the named parts, in ascending order, become the object.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> Result<ObjectRecord> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let max_size = self.inner.config.max_multipart_size;
        self.blocking(move |inner| {
            let upload = upload_of(inner, &bucket, &key, &upload_id)?;
            let chosen = choose_parts(inner, &upload, &parts, max_size)?;
            let staged = concatenate(inner, &upload, &chosen)?;
            let mut md5s = Vec::with_capacity(chosen.len() * 16);
            for p in &chosen {
                md5s.extend(unhex(&p.etag).unwrap_or_default());
            }
            let etag = format!("{}-{}", crate::digest::hex(&md5(&md5s)), chosen.len());
            let versioned = inner
                .store
                .bucket(&bucket)?
                .is_some_and(|b| b.versioning == Some(Versioning::Enabled));
            let digests = staged.digests().clone();
            let checksum = upload.checksum_algorithm.and_then(|algorithm| {
                digests.checksum_b64(algorithm).map(|value| ObjectChecksum {
                    algorithm,
                    value,
                    composite: false,
                })
            });
            let blob = staged.publish()?;
            let record = ObjectRecord {
                bucket: bucket.clone(),
                key: key.clone(),
                blob: blob.clone(),
                size: digests.size,
                etag,
                last_modified_ms: now_ms(),
                version_id: versioned.then(|| uuid::Uuid::new_v4().simple().to_string()),
                meta: upload.meta.clone(),
                checksum,
                parts: Some(chosen.len() as u32),
            };
            match inner.store.complete_upload(&upload_id, &record) {
                Ok(done) => {
                    let mut gone = done.parts;
                    gone.extend(done.replaced);
                    inner.files.remove(&gone);
                    Ok(record)
                }
                Err(e) => {
                    inner.files.remove(&[blob]);
                    Err(match e {
                        StoreError::NotFound(Entity::Upload) => no_such_upload(&upload_id),
                        e => no_such_bucket(&bucket)(e),
                    })
                }
            }
        })
        .await
    }
}

/// The stored parts the client named, checked: ascending numbers, known parts with matching
/// ETags (and checksums), every part but the last at least 5 MiB, the total within limits.
fn choose_parts(
    inner: &Inner,
    upload: &UploadRecord,
    requested: &[CompletePart],
    max_size: u64,
) -> Result<Vec<PartRecord>> {
    if requested.is_empty() {
        return Err(ObjectError::InvalidRequest(
            "You must specify at least one part".into(),
        ));
    }
    if requested
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(ObjectError::InvalidPartOrder);
    }
    let stored = inner
        .store
        .parts(&upload.upload_id, 0, MAX_PART_NUMBER as usize + 1)?;
    let mut chosen = Vec::with_capacity(requested.len());
    let mut total = 0u64;
    for (i, want) in requested.iter().enumerate() {
        let part = stored
            .iter()
            .find(|p| p.part_number == want.part_number)
            .filter(|p| p.etag.eq_ignore_ascii_case(strip_quotes(&want.etag)))
            .ok_or(ObjectError::InvalidPart {
                part_number: want.part_number,
            })?;
        if let (Some(sent), Some(have)) = (&want.checksum, &part.checksum)
            && sent.trim() != have
        {
            return Err(ObjectError::InvalidPart {
                part_number: want.part_number,
            });
        }
        if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
            return Err(ObjectError::EntityTooSmall {
                part_number: part.part_number,
                size: part.size,
            });
        }
        total += part.size;
        if total > max_size {
            return Err(ObjectError::EntityTooLarge {
                size: total,
                max: max_size,
            });
        }
        chosen.push(part.clone());
    }
    Ok(chosen)
}

/// One new file of the parts' bytes in order, with the upload's checksum over all of it.
fn concatenate(inner: &Inner, upload: &UploadRecord, parts: &[PartRecord]) -> Result<Staged> {
    let plan = DigestPlan {
        sha256: false,
        checksums: upload.checksum_algorithm.into_iter().collect(),
    };
    let mut out = inner.files.create_sync()?;
    let mut hasher = Hasher::new(&plan);
    for part in parts {
        let mut file = inner.files.open_blob(&part.blob).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ObjectError::MissingData {
                    bucket: upload.bucket.clone(),
                    key: format!("{} (part {})", upload.key, part.part_number),
                }
            } else {
                e.into()
            }
        })?;
        let n = append(&mut file, &mut out.file, &mut hasher)?;
        if n != part.size {
            return Err(ObjectError::MissingData {
                bucket: upload.bucket.clone(),
                key: format!("{} (part {})", upload.key, part.part_number),
            });
        }
    }
    Ok(out.into_staged(hasher.finish())?)
}
