//! The server secret: 32 random bytes in `<data-dir>/auth-secret` (mode 0600), made at the
//! first start. Functions' session credentials and presigned code URLs are derived from it;
//! replacing the file revokes them all.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

const LEN: usize = 32;

pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(secret) => {
            anyhow::ensure!(
                secret.len() >= LEN,
                "{} holds {} bytes; a server secret has at least {LEN} (remove the file to make a new one)",
                path.display(),
                secret.len()
            );
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {} to its owner", path.display()))?;
                tracing::warn!(path = %path.display(), "the server secret was readable by others; now 0600");
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn create(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut secret = vec![0u8; LEN];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .context("reading /dev/urandom")?;
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&secret)?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-secret");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), LEN);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(&path).unwrap(), first);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), first);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, b"short").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
