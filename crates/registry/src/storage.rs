//! The registry on disk (blocking calls: the HTTP side runs them on the blocking pool):
//!
//! ```text
//! <root>/blobs/sha256/<hex>                          content-addressed blobs and manifests
//! <root>/uploads/<uuid>                              uploads in progress (removed at start)
//! <root>/repositories/<name>/_layers/<hex>           the blobs a repository holds (links)
//! <root>/repositories/<name>/_manifests/revisions/<hex>   its manifests (file: media type)
//! <root>/repositories/<name>/_manifests/tags/<tag>   its tags (file: the digest)
//! ```
//!
//! Every file is written to a temporary name, fsync'd, renamed, and its directory fsync'd
//! before the request is acknowledged. Repository names are ECR's (`a/b-c`), whose components
//! start with a letter or digit: they never clash with `_layers`/`_manifests`, never are `..`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kindling_oci::{Digest, Reference};
use sha2::{Digest as _, Sha256};

use crate::error::RegistryError;

/// Limits of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest blob (a layer).
    pub max_blob: u64,
    /// Bytes of blobs stored, all repositories together.
    pub max_total: u64,
}

/// The files of the registry.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    pub(crate) limits: Limits,
    used: AtomicU64,
    /// Bytes in upload files (not yet blobs): they count against `max_total` too.
    pending: AtomicU64,
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` to `path` durably (temporary file, fsync, rename, fsync of the directory).
fn write_durably(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Hashes a file.
pub fn sha256_file(path: &Path) -> io::Result<Digest> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

impl Storage {
    /// Opens (creating) the registry under `root`; uploads a previous run left are removed.
    pub fn open(root: &Path, limits: Limits) -> io::Result<Self> {
        for dir in ["blobs/sha256", "uploads", "repositories"] {
            fs::create_dir_all(root.join(dir))?;
        }
        if let Ok(entries) = fs::read_dir(root.join("uploads")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let used = dir_size(&root.join("blobs/sha256"));
        Ok(Self {
            root: root.to_path_buf(),
            limits,
            used: AtomicU64::new(used),
            pending: AtomicU64::new(0),
        })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub(crate) fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repositories").join(repo)
    }

    fn layer_link(&self, repo: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_layers").join(digest.hex())
    }

    fn revision(&self, repo: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_manifests/revisions")
            .join(digest.hex())
    }

    fn tag_path(&self, repo: &str, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("_manifests/tags").join(tag)
    }

    /// Bytes of blobs stored.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Refuses `more` bytes that would take the store over its total limit.
    pub(crate) fn check_room(&self, more: u64) -> Result<(), RegistryError> {
        if more > self.limits.max_blob {
            return Err(RegistryError::TooLarge(format!(
                "the blob is larger than the registry's limit of {} bytes",
                self.limits.max_blob
            )));
        }
        if self.used().saturating_add(more) > self.limits.max_total {
            return Err(RegistryError::Denied(format!(
                "the registry's storage limit of {} bytes would be exceeded",
                self.limits.max_total
            )));
        }
        Ok(())
    }

    /// Takes room for `n` more bytes of an upload in progress (released with
    /// [`Storage::release`] when the upload ends): blobs and uploads together stay within
    /// `max_total`.
    pub(crate) fn reserve(&self, n: u64) -> Result<(), RegistryError> {
        let max = self.limits.max_total;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                let total = self.used().saturating_add(p).saturating_add(n);
                (total <= max).then_some(p + n)
            })
            .map(|_| ())
            .map_err(|_| {
                RegistryError::Denied(format!(
                    "the registry's storage limit of {max} bytes would be exceeded \
                     (blobs and uploads in progress)"
                ))
            })
    }

    /// Gives back room taken by [`Storage::reserve`].
    pub(crate) fn release(&self, n: u64) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(n))
            });
    }

    /// Whether `repo` has any manifest or blob.
    pub fn repo_exists(&self, repo: &str) -> bool {
        self.repo_dir(repo).join("_manifests").is_dir()
            || self.repo_dir(repo).join("_layers").is_dir()
    }

    /// The size of blob `digest` if `repo` holds it.
    pub fn blob_in_repo(&self, repo: &str, digest: &Digest) -> Option<u64> {
        if !self.layer_link(repo, digest).exists() {
            return None;
        }
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    /// Links an existing blob into `repo` (cross-repository mount, or a re-push).
    pub fn link_blob(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        if !self.blob_path(digest).is_file() {
            return Ok(false);
        }
        write_durably(&self.layer_link(repo, digest), b"")?;
        Ok(true)
    }

    /// Moves a finished upload (already fsync'd, its digest verified) into the blob store
    /// and links it into `repo`.
    pub fn commit_upload(
        &self,
        upload: &Path,
        repo: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            let _ = fs::remove_file(upload);
        } else {
            let size = fs::metadata(upload)?.len();
            self.check_room(size)?;
            fs::rename(upload, &dest)?;
            fsync_dir(dest.parent().unwrap_or(Path::new(".")))?;
            self.used.fetch_add(size, Ordering::Relaxed);
        }
        write_durably(&self.layer_link(repo, digest), b"")?;
        Ok(())
    }

    /// Unlinks a blob from `repo` (the data stays while other repositories hold it).
    pub fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<(), RegistryError> {
        match fs::remove_file(self.layer_link(repo, digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(RegistryError::BlobUnknown(digest.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a manifest (already validated) under its digest, and `tag` if given.
    pub fn put_manifest(
        &self,
        repo: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let blob = self.blob_path(&digest);
        if !blob.is_file() {
            self.check_room(bytes.len() as u64)?;
            write_durably(&blob, bytes)?;
            self.used.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        write_durably(&self.revision(repo, &digest), media_type.as_bytes())?;
        if let Some(tag) = tag {
            write_durably(&self.tag_path(repo, tag), digest.to_string().as_bytes())?;
        }
        Ok(digest)
    }

    /// The digest a reference names in `repo`, if it has that manifest.
    pub fn manifest_digest(
        &self,
        repo: &str,
        reference: &Reference,
    ) -> Result<Option<Digest>, RegistryError> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match fs::read_to_string(self.tag_path(repo, t)) {
                Ok(text) => Digest::parse(text.trim())
                    .map_err(|e| RegistryError::Internal(format!("tag file of {repo}:{t}: {e}")))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            },
        };
        Ok(self.revision(repo, &digest).is_file().then_some(digest))
    }

    /// A manifest of `repo`: its digest, media type and bytes (verified against the digest).
    pub fn manifest(
        &self,
        repo: &str,
        reference: &Reference,
    ) -> Result<Option<(Digest, String, Vec<u8>)>, RegistryError> {
        let Some(digest) = self.manifest_digest(repo, reference)? else {
            return Ok(None);
        };
        let media_type = fs::read_to_string(self.revision(repo, &digest))?;
        let bytes = match fs::read(self.blob_path(&digest)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if Digest::of(&bytes) != digest {
            return Err(RegistryError::Internal(format!(
                "the stored manifest {digest} does not match its digest"
            )));
        }
        Ok(Some((digest, media_type, bytes)))
    }

    /// Deletes a manifest by digest (with the tags that point at it), or one tag.
    pub fn delete_manifest(&self, repo: &str, reference: &Reference) -> Result<(), RegistryError> {
        match reference {
            Reference::Tag(t) => match fs::remove_file(self.tag_path(repo, t)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(RegistryError::ManifestUnknown(format!("{repo}:{t}")))
                }
                Err(e) => Err(e.into()),
            },
            Reference::Digest(d) => {
                match fs::remove_file(self.revision(repo, d)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(RegistryError::ManifestUnknown(format!("{repo}@{d}")));
                    }
                    Err(e) => return Err(e.into()),
                }
                for tag in self.tags(repo)? {
                    let p = self.tag_path(repo, &tag);
                    if fs::read_to_string(&p).is_ok_and(|t| t.trim() == d.to_string()) {
                        let _ = fs::remove_file(p);
                    }
                }
                Ok(())
            }
        }
    }

    /// The tags of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let dir = self.repo_dir(repo).join("_manifests/tags");
        let mut tags: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        tags.sort();
        Ok(tags)
    }

    /// Every repository name, sorted.
    pub fn repositories(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join("repositories"), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('_') || name.starts_with('.') {
                    continue;
                }
                let full = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if e.path().join("_manifests").is_dir() {
                    out.push(full.clone());
                }
                if e.path().is_dir() {
                    stack.push((e.path(), full));
                }
            }
        }
        out.sort();
        out
    }
}
