//! Metadata of the S3-compatible object store behind the [`ObjectStore`] trait: buckets and
//! their configuration, objects, multipart uploads and parts. The bytes are files the caller
//! keeps (named by blob ids); every method that drops a reference to a file returns its blob
//! id, so that the caller deletes the file only after the commit.
//!
//! Each method is one transaction. Object keys are compared as bytes (S3's listing order); a
//! PostgreSQL implementation stores them as `bytea` and gets the same order and ranges.

use kindling_model::objects::{BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord};

use crate::Result;

/// A range of keys to list: those starting with `prefix`, from `start` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange<'a> {
    pub prefix: &'a [u8],
    pub start: KeyStart<'a>,
}

impl<'a> KeyRange<'a> {
    /// The range's first key as a bound: the key, and whether it is excluded (`key > bound`
    /// rather than `key >= bound`). A start before the prefix starts at the prefix.
    pub fn lower_bound(&self) -> (&'a [u8], bool) {
        match self.start {
            KeyStart::First => (self.prefix, false),
            KeyStart::At(k) if k > self.prefix => (k, false),
            KeyStart::After(k) if k >= self.prefix => (k, true),
            KeyStart::At(_) | KeyStart::After(_) => (self.prefix, false),
        }
    }
}

/// Where a listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStart<'a> {
    /// At the first key of the range.
    First,
    /// At the first key strictly after this one.
    After(&'a [u8]),
    /// At the first key equal to or after this one.
    At(&'a [u8]),
}

/// What completing a multipart upload replaced, for the caller to delete after the commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completed {
    /// The blob of the object the new one replaced.
    pub replaced: Option<String>,
    /// The blobs of every part of the upload.
    pub parts: Vec<String>,
}

/// Durable object-store metadata. Each method is atomic.
pub trait ObjectStore: Send + Sync + 'static {
    // --- buckets ---
    /// Creates a bucket; `AlreadyExists(Bucket)` if the name is taken, `LimitExceeded` if
    /// `max_buckets` exist already (checked in the same transaction).
    fn create_bucket(&self, rec: &BucketRecord, max_buckets: usize) -> Result<()>;
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>>;
    /// Every bucket, by name.
    fn buckets(&self) -> Result<Vec<BucketRecord>>;
    /// Replaces one part of a bucket's configuration; `NotFound(Bucket)`.
    fn set_bucket_config(&self, name: &str, config: &BucketConfig) -> Result<()>;
    /// Deletes a bucket without objects, with its unfinished uploads (whose part blobs it
    /// returns); `NotEmpty(Bucket)` while it holds objects, `NotFound(Bucket)`.
    fn delete_bucket(&self, name: &str) -> Result<Vec<String>>;

    // --- objects ---
    /// Stores an object, replacing the key's current one (whose blob it returns);
    /// `NotFound(Bucket)`.
    fn put_object(&self, rec: &ObjectRecord) -> Result<Option<String>>;
    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;
    /// Up to `limit` objects of `range`, in key byte order.
    fn list_objects(
        &self,
        bucket: &str,
        range: KeyRange<'_>,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>>;
    /// Deletes an object; returns its blob, `None` when there was none (deleting a missing key
    /// succeeds, as in S3).
    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<String>>;
    /// Replaces an object's tags if it still has blob `blob` (else `NotFound(Object)`).
    fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        blob: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<()>;

    // --- multipart uploads ---
    /// `NotFound(Bucket)`.
    fn create_upload(&self, rec: &UploadRecord) -> Result<()>;
    fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>>;
    /// Up to `limit` uploads of `bucket` whose key is in `range`, by key then upload id,
    /// starting after (`key`, `upload_id`) when given.
    fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        after: Option<(&[u8], &str)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>>;
    /// Stores a part, replacing one with the same number (whose blob it returns);
    /// `NotFound(Upload)` when the upload is gone.
    fn put_part(&self, rec: &PartRecord) -> Result<Option<String>>;
    /// Up to `limit` parts numbered after `after`, ascending.
    fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<PartRecord>>;
    /// Ends an upload: stores `object` and removes the upload with its parts, in one
    /// transaction; `NotFound(Upload)` when it is gone (completed or aborted meanwhile).
    fn complete_upload(&self, upload_id: &str, object: &ObjectRecord) -> Result<Completed>;
    /// Removes an upload and its parts; returns the parts' blobs; `NotFound(Upload)`.
    fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>>;

    // --- files ---
    /// Those of `blobs` that no object or part refers to (for sweeping files a crash left).
    fn unreferenced_blobs(&self, blobs: &[String]) -> Result<Vec<String>>;
}

/// A blob's bytes as a shared store holds them (complete ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBytes {
    pub size: u64,
    pub chunks: u32,
    /// Lowercase hex SHA-256 of the whole blob.
    pub sha256: String,
}

/// The bytes of objects and parts kept where every node reads them (PostgreSQL when several
/// nodes share one database), in chunks; each node's files are then a cache of them. A blob is
/// written chunk by chunk (never whole in memory) and becomes readable only when
/// [`SharedObjectBytes::finish_object_bytes`] records its size and SHA-256; the metadata that
/// refers to it is committed after that. Each method is one transaction.
pub trait SharedObjectBytes: Send + Sync + 'static {
    /// Starts blob `id` (forgetting any chunks an earlier attempt left).
    fn begin_object_bytes(&self, id: &str) -> Result<()>;
    /// Stores chunk `seq` (from 0) of a blob being written.
    fn put_object_chunk(&self, id: &str, seq: u32, data: &[u8]) -> Result<()>;
    /// Makes a blob readable with its size, chunk count and SHA-256.
    fn finish_object_bytes(&self, id: &str, bytes: &StoredBytes) -> Result<()>;
    /// A complete blob's size, chunk count and SHA-256; `None` when absent or unfinished.
    fn object_bytes(&self, id: &str) -> Result<Option<StoredBytes>>;
    /// Chunk `seq` of a blob; `None` when absent (the blob was deleted).
    fn object_chunk(&self, id: &str, seq: u32) -> Result<Option<Vec<u8>>>;
    /// Deletes blobs (absent ones are fine).
    fn delete_object_bytes(&self, ids: &[String]) -> Result<()>;
    /// Deletes blobs started before `before_ms` that no object or part refers to (what a
    /// crash between storing the bytes and committing the metadata left); returns how many.
    fn sweep_object_bytes(&self, before_ms: i64) -> Result<usize>;
}

/// The first byte string after every string that starts with `prefix` (the exclusive end of
/// the prefix's range); `None` when there is none (empty prefix, or all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Implements [`ObjectStore`] for `$store` with the functions of its dialect's module `$sql`,
/// one per method, each in a read (`$store::read`) or a durable write (`$store::write`):
/// both stores make the same choice for every method.
macro_rules! impl_object_store {
    ($store:ty, $sql:ident) => {
        const _: () = {
            use std::collections::BTreeMap;

            use kindling_model::objects::{
                BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord,
            };

            use $crate::Result;
            use $crate::objects::{Completed, KeyRange, ObjectStore};

            impl ObjectStore for $store {
                fn create_bucket(&self, rec: &BucketRecord, max_buckets: usize) -> Result<()> {
                    self.write(|c| $sql::create_bucket(c, rec, max_buckets))
                }

                fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
                    self.read(|c| $sql::bucket(c, name))
                }

                fn buckets(&self) -> Result<Vec<BucketRecord>> {
                    self.read($sql::buckets)
                }

                fn set_bucket_config(&self, name: &str, config: &BucketConfig) -> Result<()> {
                    self.write(|c| $sql::set_bucket_config(c, name, config))
                }

                fn delete_bucket(&self, name: &str) -> Result<Vec<String>> {
                    self.write(|c| $sql::delete_bucket(c, name))
                }

                fn put_object(&self, rec: &ObjectRecord) -> Result<Option<String>> {
                    self.write(|c| $sql::put_object(c, rec))
                }

                fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
                    self.read(|c| $sql::object(c, bucket, key))
                }

                fn list_objects(
                    &self,
                    bucket: &str,
                    range: KeyRange<'_>,
                    limit: usize,
                ) -> Result<Vec<ObjectRecord>> {
                    self.read(|c| $sql::list_objects(c, bucket, range, limit))
                }

                fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<String>> {
                    self.write(|c| $sql::delete_object(c, bucket, key))
                }

                fn set_object_tags(
                    &self,
                    bucket: &str,
                    key: &str,
                    blob: &str,
                    tags: &BTreeMap<String, String>,
                ) -> Result<()> {
                    self.write(|c| $sql::set_object_tags(c, bucket, key, blob, tags))
                }

                fn create_upload(&self, rec: &UploadRecord) -> Result<()> {
                    self.write(|c| $sql::create_upload(c, rec))
                }

                fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
                    self.read(|c| $sql::upload(c, upload_id))
                }

                fn list_uploads(
                    &self,
                    bucket: &str,
                    prefix: &[u8],
                    after: Option<(&[u8], &str)>,
                    limit: usize,
                ) -> Result<Vec<UploadRecord>> {
                    self.read(|c| $sql::list_uploads(c, bucket, prefix, after, limit))
                }

                fn put_part(&self, rec: &PartRecord) -> Result<Option<String>> {
                    self.write(|c| $sql::put_part(c, rec))
                }

                fn parts(
                    &self,
                    upload_id: &str,
                    after: u32,
                    limit: usize,
                ) -> Result<Vec<PartRecord>> {
                    self.read(|c| $sql::parts(c, upload_id, after, limit))
                }

                fn complete_upload(
                    &self,
                    upload_id: &str,
                    object: &ObjectRecord,
                ) -> Result<Completed> {
                    self.write(|c| $sql::complete_upload(c, upload_id, object))
                }

                fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
                    self.write(|c| $sql::abort_upload(c, upload_id))
                }

                fn unreferenced_blobs(&self, blobs: &[String]) -> Result<Vec<String>> {
                    self.read(|c| $sql::unreferenced_blobs(c, blobs))
                }
            }
        };
    };
}
pub(crate) use impl_object_store;

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends_bound_every_extension() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"a/").as_deref(), Some(&b"a0"[..]));
        assert_eq!(prefix_end(b"a\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        let end = prefix_end("dir/é".as_bytes()).unwrap();
        assert!("dir/é\u{10FFFF}".as_bytes() < end.as_slice());
    }
}
