//! Content-addressed storage of code packages: each zip lives once, named by its SHA-256.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// A directory of immutable blobs, written atomically and durably.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("tmp"))?;
        Ok(Self { root })
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
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<(BlobId, [u8; 32])> {
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
            .join(format!("{}.{}", id.0, std::process::id()));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        sync_dir(&dir)?;
        Ok((id, digest))
    }

    pub fn read(&self, id: &BlobId) -> std::io::Result<Vec<u8>> {
        fs::read(self.path(id))
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
