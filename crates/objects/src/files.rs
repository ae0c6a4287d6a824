//! The bytes of objects and parts, as files under the store's root:
//!
//! ```text
//! <root>/tmp/<id>            being written (never visible as an object)
//! <root>/blobs/<id[..2]>/<id> complete, fsync'd, referenced by metadata once committed
//! ```
//!
//! A blob id is 32 lowercase hex characters that Kindling generates; object keys and bucket
//! names never enter a path, and [`Files::blob_path`] refuses any id of another shape (a
//! damaged record cannot point outside the root).
//!
//! Writing: bytes go to a temporary file, hashed on the way (each chunk written and hashed on
//! the blocking pool, never on the async runtime); [`BlobWriter::finish`] fsyncs it, and
//! [`Staged::publish`] renames it into `blobs/` and fsyncs the directory. Only then does the
//! caller commit the metadata, so a crash at any point leaves at most an unreferenced file,
//! which [`Files::sweep`] deletes at the next start.
//!
//! With shared bytes ([`SharedObjectBytes`]: several nodes on one PostgreSQL database), the
//! files are this node's cache: publishing a blob also stores it there, in 4 MiB chunks read
//! back from the fsync'd file (the caller commits the metadata only after that), and a blob
//! this node does not have is copied from there into `tmp/`, checked against its size and
//! SHA-256, and renamed into `blobs/` before it is opened. Removing a blob removes it there
//! too. Neither direction ever holds a whole object in memory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use kindling_store::{SharedObjectBytes, StoredBytes};
use sha2::{Digest, Sha256};

use crate::digest::{DigestPlan, Digests, Hasher};
use crate::error::{ObjectError, Result};

/// Bytes gathered before one write to disk (bounds a request's buffered memory).
const WRITE_BATCH: usize = 256 * 1024;
/// Bytes per chunk in the shared store.
const SHARED_CHUNK: usize = 4 * 1024 * 1024;

/// The root of the object files, and the shared store they cache (if any).
#[derive(Clone)]
pub(crate) struct Files {
    root: Arc<PathBuf>,
    shared: Option<Arc<dyn SharedObjectBytes>>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("root", &self.root)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn store_error(e: kindling_store::StoreError) -> std::io::Error {
    std::io::Error::other(e)
}

/// A fresh random blob id.
pub(crate) fn new_blob_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` has the shape of a blob id Kindling generates.
pub(crate) fn is_blob_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn fsync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

impl Files {
    /// Opens (creating) the directories under `root` and removes what an interrupted write
    /// left in `tmp/`.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("blobs"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Self {
            root: Arc::new(root.to_path_buf()),
            shared: None,
        })
    }

    /// Makes the files a cache of `shared`: blobs are published to it and read from it.
    pub fn with_shared(mut self, shared: Arc<dyn SharedObjectBytes>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn shared(&self) -> Option<&Arc<dyn SharedObjectBytes>> {
        self.shared.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `id` lives; an error for anything that is not a blob id.
    pub fn blob_path(&self, id: &str) -> std::io::Result<PathBuf> {
        if !is_blob_id(id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a blob id: {id:?}"),
            ));
        }
        Ok(self.root.join("blobs").join(&id[..2]).join(id))
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    /// Starts writing a new blob of at most `limit` bytes (blocking: creates the temporary
    /// file).
    pub fn create(&self, plan: &DigestPlan, limit: u64) -> std::io::Result<BlobWriter> {
        let id = new_blob_id();
        let path = self.tmp_path(&id);
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(BlobWriter {
            files: self.clone(),
            id,
            path,
            state: Some((file, Hasher::new(plan))),
            pending: BytesMut::new(),
            written: 0,
            limit,
            done: false,
        })
    }

    /// A new temporary file for a synchronous writer (blocking); deleted if dropped before
    /// [`TmpFile::into_staged`].
    pub fn create_sync(&self) -> std::io::Result<TmpFile> {
        let id = new_blob_id();
        let path = self.tmp_path(&id);
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(TmpFile {
            files: self.clone(),
            id,
            path: Some(path),
            file,
        })
    }

    /// Opens a blob for reading (blocking), copying it from the shared store first when this
    /// node does not have it. `NotFound` when it is nowhere (deleted meanwhile).
    pub fn open_blob(&self, id: &str) -> std::io::Result<File> {
        let path = self.blob_path(id)?;
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.shared.is_some() => {
                self.fetch(id)?;
                File::open(&path)
            }
            other => other,
        }
    }

    /// Copies a blob from the shared store into place: into `tmp/` chunk by chunk, checked
    /// against the stored size and SHA-256 (a blob that does not match is an error, never
    /// served), fsync'd, renamed into `blobs/`.
    fn fetch(&self, id: &str) -> std::io::Result<()> {
        let Some(shared) = &self.shared else {
            return Err(std::io::ErrorKind::NotFound.into());
        };
        let gone = || {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("object blob {id} is not stored"),
            )
        };
        let head = shared
            .object_bytes(id)
            .map_err(store_error)?
            .ok_or_else(gone)?;
        let mut tmp = self.create_sync()?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        for seq in 0..head.chunks {
            let chunk = shared
                .object_chunk(id, seq)
                .map_err(store_error)?
                .ok_or_else(gone)?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            tmp.file.write_all(&chunk)?;
        }
        if size != head.size || hex(&hasher.finalize()) != head.sha256 {
            return Err(store_error(kindling_store::StoreError::BlobMismatch(
                id.to_string(),
            )));
        }
        tmp.file.sync_all()?;
        let staged = Staged {
            files: self.clone(),
            id: id.to_string(),
            tmp: tmp.path.take(),
            digests: crate::digest::Hasher::new(&DigestPlan::default()).finish(),
        };
        staged.place()?;
        Ok(())
    }

    /// Stores a published blob's bytes in the shared store (nothing to do without one): read
    /// back from its fsync'd file in chunks, finished with its size and SHA-256.
    fn share(&self, id: &str) -> std::io::Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut file = File::open(self.blob_path(id)?)?;
        shared.begin_object_bytes(id).map_err(store_error)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; SHARED_CHUNK];
        let (mut size, mut chunks) = (0u64, 0u32);
        loop {
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            shared
                .put_object_chunk(id, chunks, &buf[..n])
                .map_err(store_error)?;
            size += n as u64;
            chunks += 1;
            if n < buf.len() {
                break;
            }
        }
        shared
            .finish_object_bytes(
                id,
                &StoredBytes {
                    size,
                    chunks,
                    sha256: hex(&hasher.finalize()),
                },
            )
            .map_err(store_error)
    }

    /// Deletes blobs no longer referenced (blocking), here and in the shared store. Failures
    /// are logged: the next sweep removes what is left.
    pub fn remove(&self, ids: &[String]) {
        self.remove_local(ids);
        if let Some(shared) = &self.shared
            && !ids.is_empty()
            && let Err(e) = shared.delete_object_bytes(ids)
        {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not delete shared object bytes; the sweep will"
            );
        }
    }

    /// Deletes this node's files of blobs (the shared store keeps its copy).
    fn remove_local(&self, ids: &[String]) {
        for id in ids {
            let result = self.blob_path(id).and_then(std::fs::remove_file);
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(blob = %id, error = %e, "could not delete an object file"),
            }
        }
    }

    /// Every blob file modified before `before` (blocking), in batches for `unreferenced`,
    /// which names those to delete (this node's files only). Returns how many were deleted.
    pub fn sweep(
        &self,
        before: SystemTime,
        mut unreferenced: impl FnMut(&[String]) -> Result<Vec<String>>,
    ) -> Result<usize> {
        let mut deleted = 0;
        let mut batch: Vec<String> = Vec::new();
        let mut flush = |batch: &mut Vec<String>| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let gone = unreferenced(batch)?;
            deleted += gone.len();
            // Only this node's files: a blob published here but not committed yet may be
            // unreferenced for a moment, and its shared bytes must stay.
            self.remove_local(&gone);
            batch.clear();
            Ok(())
        };
        for shard in std::fs::read_dir(self.root.join("blobs"))? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if !is_blob_id(&name) {
                    continue;
                }
                let modified = entry.metadata()?.modified()?;
                if modified < before {
                    batch.push(name);
                }
                if batch.len() >= 500 {
                    flush(&mut batch)?;
                }
            }
        }
        flush(&mut batch)?;
        Ok(deleted)
    }
}

/// A blob being written. Dropped before [`BlobWriter::finish`], it deletes its file.
pub struct BlobWriter {
    files: Files,
    id: String,
    path: PathBuf,
    /// `None` while a write is on the blocking pool (or after a failed one).
    state: Option<(File, Hasher)>,
    pending: BytesMut,
    /// Bytes received so far, and the most allowed.
    written: u64,
    limit: u64,
    done: bool,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// Appends bytes; they reach the disk in batches. Past the writer's limit:
    /// `EntityTooLarge`.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        self.written += data.len() as u64;
        if self.written > self.limit {
            return Err(ObjectError::EntityTooLarge {
                size: self.written,
                max: self.limit,
            });
        }
        if self.pending.is_empty() && data.len() >= WRITE_BATCH {
            return self.flush(data).await;
        }
        self.pending.extend_from_slice(&data);
        if self.pending.len() >= WRITE_BATCH {
            let batch = std::mem::take(&mut self.pending).freeze();
            self.flush(batch).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, batch: Bytes) -> Result<()> {
        let (mut file, mut hasher) = self
            .state
            .take()
            .ok_or_else(|| ObjectError::Io(std::io::Error::other("a previous write failed")))?;
        let (file, hasher) = tokio::task::spawn_blocking(move || {
            file.write_all(&batch)?;
            hasher.update(&batch);
            Ok::<_, std::io::Error>((file, hasher))
        })
        .await??;
        self.state = Some((file, hasher));
        Ok(())
    }

    /// Writes what is left, fsyncs the file and returns it with its digests.
    pub async fn finish(mut self) -> Result<Staged> {
        let rest = std::mem::take(&mut self.pending).freeze();
        if !rest.is_empty() {
            self.flush(rest).await?;
        }
        let (file, hasher) = self
            .state
            .take()
            .ok_or_else(|| ObjectError::Io(std::io::Error::other("a previous write failed")))?;
        let digests = tokio::task::spawn_blocking(move || {
            file.sync_all()?;
            Ok::<_, std::io::Error>(hasher.finish())
        })
        .await??;
        self.done = true;
        Ok(Staged {
            files: self.files.clone(),
            id: self.id.clone(),
            tmp: Some(self.path.clone()),
            digests,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A temporary file written synchronously (copies, multipart completion).
pub(crate) struct TmpFile {
    files: Files,
    id: String,
    path: Option<PathBuf>,
    pub file: File,
}

impl TmpFile {
    /// Fsyncs the file and hands it over as staged, with the digests of what was written.
    pub fn into_staged(mut self, digests: Digests) -> std::io::Result<Staged> {
        self.file.sync_all()?;
        Ok(Staged {
            files: self.files.clone(),
            id: self.id.clone(),
            tmp: self.path.take(),
            digests,
        })
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A complete, fsync'd temporary file and its digests; dropped unpublished, it is deleted.
pub struct Staged {
    files: Files,
    id: String,
    tmp: Option<PathBuf>,
    digests: Digests,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("id", &self.id)
            .field("digests", &self.digests)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Staged {
    pub fn digests(&self) -> &Digests {
        &self.digests
    }

    /// Moves the file into `blobs/` (blocking: rename and directory fsyncs) and, with a shared
    /// store, stores its bytes there; returns its id. On error nothing of it is left.
    pub(crate) fn publish(self) -> std::io::Result<String> {
        let files = self.files.clone();
        let id = self.id.clone();
        self.place()?;
        if let Err(e) = files.share(&id) {
            files.remove(std::slice::from_ref(&id));
            return Err(e);
        }
        Ok(id)
    }

    /// Moves the file into `blobs/` and fsyncs the directories.
    fn place(mut self) -> std::io::Result<()> {
        let target = self.files.blob_path(&self.id)?;
        let dir = target
            .parent()
            .ok_or_else(|| std::io::Error::other("blob path without parent"))?
            .to_path_buf();
        let created = !dir.exists();
        std::fs::create_dir_all(&dir)?;
        if created {
            fsync_dir(&self.files.root.join("blobs"))?;
        }
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &target)?;
        }
        fsync_dir(&dir)?;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_stay_under_the_root_and_refuse_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let id = new_blob_id();
            let path = files.blob_path(&id).unwrap();
            assert!(path.starts_with(dir.path().join("blobs")));
            assert_eq!(
                path.components().count(),
                dir.path().components().count() + 3
            );
            // Anything else, however it is made, is refused.
            let len = rng.usize(0..40);
            let junk: String = (0..len)
                .map(|_| ['.', '/', '\0', 'a', 'F', '0', '\\', '%'][rng.usize(0..8)])
                .collect();
            if !is_blob_id(&junk) {
                assert!(files.blob_path(&junk).is_err(), "{junk:?}");
            }
        }
        for bad in [
            "../../../../etc/passwd",
            "",
            "..",
            &"A".repeat(32),
            &"0".repeat(31),
        ] {
            assert!(files.blob_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn writes_publish_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        let mut w = files.create(&DigestPlan::default(), u64::MAX).unwrap();
        w.write(Bytes::from_static(b"hello ")).await.unwrap();
        w.write(Bytes::from(vec![b'x'; WRITE_BATCH + 10]))
            .await
            .unwrap();
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.digests().size, 6 + WRITE_BATCH as u64 + 10);
        let id = staged.publish().unwrap();
        let data = std::fs::read(files.blob_path(&id).unwrap()).unwrap();
        assert!(data.starts_with(b"hello xxx"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );

        // Dropped writers and staged files leave nothing behind.
        let mut w = files.create(&DigestPlan::default(), u64::MAX).unwrap();
        w.write(Bytes::from_static(b"partial")).await.unwrap();
        drop(w);
        let staged = files
            .create(&DigestPlan::default(), u64::MAX)
            .unwrap()
            .finish()
            .await
            .unwrap();
        drop(staged);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );

        let mut small = files.create(&DigestPlan::default(), 4).unwrap();
        small.write(Bytes::from_static(b"1234")).await.unwrap();
        assert!(matches!(
            small.write(Bytes::from_static(b"5")).await,
            Err(ObjectError::EntityTooLarge { size: 5, max: 4 })
        ));

        // The sweep deletes what the store does not know.
        let keep = id.clone();
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let mut w = files.create(&DigestPlan::default(), u64::MAX).unwrap();
        w.write(Bytes::from_static(b"orphan")).await.unwrap();
        let orphan = w.finish().await.unwrap().publish().unwrap();
        let deleted = files
            .sweep(later, |batch| {
                Ok(batch.iter().filter(|b| **b != keep).cloned().collect())
            })
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(!files.blob_path(&orphan).unwrap().exists());
        assert!(files.blob_path(&id).unwrap().exists());
    }
}
