//! The S3-compatible object store, as a domain: buckets with their configuration, objects
//! whose bytes stream to fsync'd files, multipart uploads, listings and checksums. No wire
//! format: `kindling-s3` speaks S3's REST protocol over it, the control plane reads function
//! code from it, and CloudFormation creates buckets and reads templates through it.
//!
//! # Using it from other crates
//!
//! ```no_run
//! # async fn demo(objects: kindling_objects::Objects) -> kindling_objects::Result<()> {
//! objects.create_bucket("templates", None).await?;
//! objects
//!     .put_bytes("templates", "stack.yaml", bytes::Bytes::from_static(b"Resources: {}"), Default::default())
//!     .await?;
//! let (_record, body) = objects.read_object("templates", "stack.yaml", 1 << 20).await?;
//! assert_eq!(body, b"Resources: {}");
//! # Ok(()) }
//! ```
//!
//! *Invariants:* an object is visible only after its bytes are fsync'd under their final name
//! and its metadata is committed, so a crash never shows a partial object; object keys never
//! become file names; every store call runs on the blocking pool.

mod buckets;
pub mod digest;
mod error;
mod files;
mod list;
mod multipart;
pub mod names;
mod objects;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use kindling_store::{ObjectStore, SharedObjectBytes};

pub use buckets::CreatedBucket;
pub use digest::{DigestPlan, Digests};
pub use error::{ObjectError, Result};
pub use files::{BlobWriter, Staged};
pub use list::{ListPage, ListQuery, ListStart};
pub use multipart::{CompletePart, PartsPage, UploadsPage};
pub use objects::{Expectations, MetadataDirective, NewObject, OpenedObject};

/// The most a single PUT, UploadPart or CopyObject may store (S3: 5 GiB).
pub const MAX_SINGLE_OBJECT: u64 = 5 * 1024 * 1024 * 1024;
/// The largest object a multipart upload may complete (S3: 5 TiB).
pub const MAX_MULTIPART_OBJECT: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Smallest part of a multipart upload except the last (S3: 5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Most buckets (S3's default quota of general purpose buckets per account).
pub const MAX_BUCKETS: usize = 10_000;

/// How old unreferenced shared bytes must be before a sweep deletes them (a node may still be
/// storing a large object's chunks before it commits the metadata).
pub const SHARED_SWEEP_AGE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Settings, passed in by the binary.
#[derive(Debug, Clone)]
pub struct ObjectsConfig {
    /// The region buckets report when created without a `LocationConstraint`.
    pub region: String,
    /// Largest single PUT / part / copy.
    pub max_object_size: u64,
    /// Largest object a multipart upload may complete.
    pub max_multipart_size: u64,
    /// Most buckets; CreateBucket beyond it answers `TooManyBuckets`.
    pub max_buckets: usize,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            max_object_size: MAX_SINGLE_OBJECT,
            max_multipart_size: MAX_MULTIPART_OBJECT,
            max_buckets: MAX_BUCKETS,
        }
    }
}

/// The object store: cheap to clone and share.
#[derive(Clone)]
pub struct Objects {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    files: files::Files,
    config: ObjectsConfig,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("root", &self.inner.files.root())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Objects {
    /// An object store keeping metadata in `store` and bytes under `root` (created if
    /// needed; what an interrupted write left in `root/tmp` is removed).
    pub fn open(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        config: ObjectsConfig,
    ) -> std::io::Result<Self> {
        Self::open_with(store, root, config, None)
    }

    /// Like [`Self::open`]; with `shared`, the bytes live there (every node of a cluster reads
    /// them) and the files under `root` are this node's cache of them.
    pub fn open_with(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        config: ObjectsConfig,
        shared: Option<Arc<dyn SharedObjectBytes>>,
    ) -> std::io::Result<Self> {
        let mut files = files::Files::open(root)?;
        if let Some(shared) = shared {
            files = files.with_shared(shared);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                files,
                config,
            }),
        })
    }

    pub fn config(&self) -> &ObjectsConfig {
        &self.inner.config
    }

    /// Deletes object files that no metadata refers to and that were written before
    /// `before` (what a crash between writing a file and committing it left). Blocking: run
    /// it on a thread of its own at start.
    ///
    /// With shared bytes, the files are a cache: those of objects deleted through other nodes
    /// go too; and shared bytes that no metadata refers to, stored more than
    /// [`SHARED_SWEEP_AGE`] before `before` (a node died between storing and committing),
    /// are deleted from the shared store.
    pub fn sweep_blocking(&self, before: SystemTime) -> Result<usize> {
        let store = Arc::clone(&self.inner.store);
        let mut deleted = self
            .inner
            .files
            .sweep(before, |batch| Ok(store.unreferenced_blobs(batch)?))?;
        if let Some(shared) = self.inner.files.shared() {
            let cutoff = before
                .checked_sub(SHARED_SWEEP_AGE)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            deleted += shared.sweep_object_bytes(cutoff)?;
        }
        Ok(deleted)
    }

    /// Whether the bytes live in a store shared by several nodes.
    pub fn is_shared(&self) -> bool {
        self.inner.files.shared().is_some()
    }

    /// Runs `f` with the store and files on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
