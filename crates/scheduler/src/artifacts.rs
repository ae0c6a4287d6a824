//! Unpacked code and layers on disk: each package is unpacked once and shared, read-only, by
//! every environment of every version that uses it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Unpacks `zip` into `dest` unless it is already there; safe against concurrent callers.
fn unpack_once(zips: &[&Path], dest: &Path) -> io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.tmp-{:x}",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("unpack"),
        fastrand::u64(..)
    ));
    fs::create_dir_all(&tmp)?;
    let result = (|| {
        for zip in zips {
            let file = fs::File::open(zip)?;
            let mut archive = zip::ZipArchive::new(io::BufReader::new(file))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            archive
                .extract(&tmp)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        make_readable(&tmp)
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => fs::remove_dir_all(&tmp),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Gives everyone read access (and search access to directories), as Lambda's sandbox user
/// must read the code; a file its owner may execute becomes executable by everyone.
fn make_readable(dir: &Path) -> io::Result<()> {
    let mut perms = fs::metadata(dir)?.permissions();
    perms.set_mode(perms.mode() | 0o755);
    fs::set_permissions(dir, perms)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_readable(&entry.path())?;
        } else if kind.is_file() {
            let mut perms = entry.metadata()?.permissions();
            let exec = if perms.mode() & 0o100 != 0 { 0o111 } else { 0 };
            perms.set_mode(perms.mode() | 0o444 | exec);
            fs::set_permissions(entry.path(), perms)?;
        }
    }
    Ok(())
}

/// Where unpacked packages live.
#[derive(Debug, Clone)]
pub struct Artifacts {
    root: PathBuf,
}

impl Artifacts {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The unpacked task root of a code package named by its blob id.
    pub fn code_dir(&self, blob: &str, zip: &Path) -> io::Result<PathBuf> {
        let dest = self.root.join("code").join(blob);
        unpack_once(&[zip], &dest)?;
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
        assert_eq!(mode & 0o755, 0o755, "readable by everyone, exec bit kept");
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
}
