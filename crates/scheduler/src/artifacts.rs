//! Unpacked code and layers on disk: each package is unpacked once and shared, read-only, by
//! every environment of every version that uses it.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kindling_model::limits::CODE_SIZE_UNZIPPED;
use kindling_package::{Limits, PackageError};

/// Unpacks `zips` (in order, later ones win) into `dest` unless it is already there; safe
/// against concurrent callers. Every archive is verified again as it is read (the blob on
/// disk is not trusted to be what was verified at upload) and at most Lambda's unzipped limit
/// of real bytes is written. A package error comes back as an `InvalidData` I/O error whose
/// inner error is the [`PackageError`].
fn unpack_once(zips: &[&Path], dest: &Path) -> io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    private_dir_all(parent)?;
    kindling_package::extract(zips, dest, &Limits::new(CODE_SIZE_UNZIPPED))
        .map(|_| ())
        .map_err(package_io_error)
}

/// Creates `dir` (and its missing parents) readable by Kindling's user only: environments see
/// packages through their bind mounts, never through these paths.
fn private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Removes the temporary directories of interrupted extractions (`.<name>.tmp-<hex>`).
fn remove_interrupted(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.contains(".tmp-")
            && let Err(e) = fs::remove_dir_all(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "could not remove an interrupted unpack");
        }
    }
}

fn package_io_error(e: PackageError) -> io::Error {
    let kind = if e.is_invalid_package() {
        io::ErrorKind::InvalidData
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

/// Where unpacked packages live.
#[derive(Debug, Clone)]
pub struct Artifacts {
    root: PathBuf,
}

impl Artifacts {
    /// Packages under `root` (this node's own work directory). Unpacking that a crash or a
    /// shutdown interrupted left temporary directories behind: they are removed here.
    pub fn new(root: PathBuf) -> Self {
        for kind in ["code", "opt", "images"] {
            remove_interrupted(&root.join(kind));
        }
        Self { root }
    }

    /// The unpacked task root of a code package named by its blob id.
    pub fn code_dir(&self, blob: &str, zip: &Path) -> io::Result<PathBuf> {
        let dest = self.root.join("code").join(blob);
        unpack_once(&[zip], &dest)?;
        Ok(dest)
    }

    /// The unpacked root filesystem of a container image (`sha256:…` manifest digest), its
    /// layers applied in order (see `kindling-oci`'s unpacker: whiteouts, no escape, no
    /// devices, no setuid), at most Lambda's 10 GB. A bad layer is an `InvalidData` error.
    /// Each layer is `(file, digest)`: its bytes are hashed as they are read.
    pub fn image_root(
        &self,
        manifest_digest: &str,
        layers: &[(PathBuf, String)],
    ) -> io::Result<PathBuf> {
        let hex = manifest_digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| io::Error::other(format!("bad image digest {manifest_digest}")))?;
        let dest = self.root.join("images").join(hex);
        if dest.is_dir() {
            return Ok(dest);
        }
        private_dir_all(&self.root.join("images"))?;
        let digests = layers
            .iter()
            .map(|(_, d)| kindling_oci::Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let refs: Vec<kindling_oci::Layer<'_>> = layers
            .iter()
            .zip(&digests)
            .map(|((path, _), digest)| kindling_oci::Layer {
                path,
                digest: Some(digest),
            })
            .collect();
        let limits = kindling_oci::UnpackLimits::new(10 * 1024 * 1024 * 1024);
        kindling_oci::unpack::unpack_layers(&refs, &dest, &limits).map_err(|e| {
            if e.is_invalid_image() {
                io::Error::new(io::ErrorKind::InvalidData, e.to_string())
            } else {
                io::Error::other(e.to_string())
            }
        })?;
        Ok(dest)
    }

    /// The merged `/opt` of an ordered list of layers (later layers overwrite earlier files).
    pub fn opt_dir(&self, layers: &[(String, PathBuf)]) -> io::Result<Option<PathBuf>> {
        if layers.is_empty() {
            return Ok(None);
        }
        let key: Vec<&str> = layers
            .iter()
            .map(|(blob, _)| &blob[..16.min(blob.len())])
            .collect();
        let dest = self.root.join("opt").join(key.join("-"));
        let zips: Vec<&Path> = layers.iter().map(|(_, p)| p.as_path()).collect();
        unpack_once(&zips, &dest)?;
        Ok(Some(dest))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_file(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(name);
        let mut w = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for (n, c) in files {
            w.start_file(
                *n,
                zip::write::SimpleFileOptions::default().unix_permissions(0o700),
            )
            .unwrap();
            w.write_all(c.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn unpacks_once_and_merges_layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = zip_file(dir.path(), "a.zip", &[("bin/tool", "a"), ("lib/x", "a")]);
        let b = zip_file(dir.path(), "b.zip", &[("bin/tool", "b")]);
        let art = Artifacts::new(dir.path().join("run"));
        let code = art.code_dir("abcd", &a).unwrap();
        assert_eq!(fs::read_to_string(code.join("lib/x")).unwrap(), "a");
        let mode = fs::metadata(code.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "readable by everyone, exec bit kept");
        let opt = art
            .opt_dir(&[("aaaa".into(), a.clone()), ("bbbb".into(), b)])
            .unwrap()
            .unwrap();
        assert_eq!(fs::read_to_string(opt.join("bin/tool")).unwrap(), "b");
        assert_eq!(fs::read_to_string(opt.join("lib/x")).unwrap(), "a");
        assert!(art.opt_dir(&[]).unwrap().is_none());
        // A second call reuses the directory.
        assert_eq!(art.code_dir("abcd", &a).unwrap(), code);
    }

    #[test]
    fn package_directories_are_private_and_bad_packages_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.zip");
        let mut w = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        w.start_file(
            "suid",
            zip::write::SimpleFileOptions::default().unix_permissions(0o4755),
        )
        .unwrap();
        w.write_all(b"#!/bin/sh\n").unwrap();
        w.finish().unwrap();
        let art = Artifacts::new(dir.path().join("run"));
        let code = art.code_dir("suid", &path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&code.join("suid")), 0o755, "setuid bit stripped");
        assert_eq!(mode(&dir.path().join("run")), 0o700);
        assert_eq!(mode(&dir.path().join("run/code")), 0o700);
        assert_eq!(
            mode(&code),
            0o755,
            "the package root is what environments mount"
        );

        let bad = zip_file(dir.path(), "bad.zip", &[("../escape", "x")]);
        let err = art.code_dir("bad", &bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.get_ref().is_some_and(|e| e.is::<PackageError>()));
        assert!(!dir.path().join("run/code/bad").exists());
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn interrupted_unpacks_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("run/code/.abcd.tmp-0123456789abcdef");
        fs::create_dir_all(stale.join("sub")).unwrap();
        let kept = dir.path().join("run/code/abcd");
        fs::create_dir_all(&kept).unwrap();
        let _art = Artifacts::new(dir.path().join("run"));
        assert!(!stale.exists());
        assert!(kept.is_dir());
    }
}
