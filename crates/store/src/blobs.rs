//! Content-addressed storage of code packages: each zip lives once, named by its SHA-256.
//! With a shared store ([`SharedBlobs`], PostgreSQL when several nodes share one database)
//! the local directory is each node's cache of it: packages are written through to the
//! shared store and fetched from it on first use, checked against their SHA-256.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The lowercase hex SHA-256 naming a blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// Accepts 64 lowercase hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_string()))
    }

    pub fn of(bytes: &[u8]) -> (Self, [u8; 32]) {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (Self(hex), digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Code packages kept where every node reads them.
pub trait SharedBlobs: Send + Sync {
    /// Stores a blob under its id (a no-op when present).
    fn put_blob(&self, id: &BlobId, bytes: &[u8]) -> crate::Result<()>;
    /// The blob's bytes, checked against its id (`BlobMismatch` otherwise); `None` if absent.
    fn get_blob(&self, id: &BlobId) -> crate::Result<Option<Vec<u8>>>;
}

/// A directory of immutable blobs, written atomically and durably; optionally the local cache
/// of a shared store.
#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
    shared: Option<Arc<dyn SharedBlobs>>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("root", &self.root)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("tmp"))?;
        Ok(Self { root, shared: None })
    }

    /// Writes every new blob through to `shared` and reads missing ones from it.
    pub fn with_shared(mut self, shared: Arc<dyn SharedBlobs>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The blob's local path, copying it from the shared store first when it is only there
    /// (checked against its SHA-256 before it is written). `NotFound` when it is nowhere.
    pub fn ensure(&self, id: &BlobId) -> std::io::Result<PathBuf> {
        let path = self.path(id);
        if path.is_file() {
            return Ok(path);
        }
        let Some(shared) = &self.shared else {
            return Ok(path);
        };
        let bytes = shared
            .get_blob(id)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("code blob {} is not stored", id.as_str()),
                )
            })?;
        let (local, _) = self.write_local(&bytes)?;
        if local != *id {
            return Err(std::io::Error::other(crate::StoreError::BlobMismatch(
                id.as_str().into(),
            )));
        }
        Ok(path)
    }

    /// Path of a blob (which may not exist).
    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.root.join(&id.0[..2]).join(format!("{}.zip", id.0))
    }

    pub fn exists(&self, id: &BlobId) -> bool {
        self.path(id).is_file()
    }

    /// Stores `bytes` (a no-op when already present) and returns its id and raw digest.
    /// The file is fsync'd and renamed into place, and its directory fsync'd, before this returns.
    /// With a shared store, the blob is stored there too before this returns.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<(BlobId, [u8; 32])> {
        let (id, digest) = self.write_local(bytes)?;
        if let Some(shared) = &self.shared {
            shared.put_blob(&id, bytes).map_err(std::io::Error::other)?;
        }
        Ok((id, digest))
    }

    fn write_local(&self, bytes: &[u8]) -> std::io::Result<(BlobId, [u8; 32])> {
        let (id, digest) = BlobId::of(bytes);
        let dest = self.path(&id);
        if dest.is_file() {
            return Ok((id, digest));
        }
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}.{}", id.0, uuid::Uuid::new_v4().simple()));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        sync_dir(&dir)?;
        Ok((id, digest))
    }

    /// The blob's bytes (from the shared store when not yet local).
    pub fn read(&self, id: &BlobId) -> std::io::Result<Vec<u8>> {
        fs::read(self.ensure(id)?)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (id, digest) = store.put(b"hello").unwrap();
        assert_eq!(
            id.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(digest[0], 0x2c);
        assert_eq!(store.read(&id).unwrap(), b"hello");
        let (again, _) = store.put(b"hello").unwrap();
        assert_eq!(again, id);
        assert!(BlobId::parse(id.as_str()).is_some());
        assert!(BlobId::parse("../etc/passwd").is_none());
    }
}
