//! Kindling's own runtime bootstraps, embedded in the binary and written to the data dir at
//! start (they appear at `/var/runtime` inside sandboxes).

use std::path::{Path, PathBuf};

const FILES: &[(&str, &str)] = &[
    (
        "python/bootstrap.py",
        include_str!("../../../runtimes/python/bootstrap.py"),
    ),
    (
        "node/bootstrap.js",
        include_str!("../../../runtimes/node/bootstrap.js"),
    ),
];

/// Writes the bootstraps under `dir` (replacing older copies) and returns `dir`.
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for (name, content) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content) {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, content)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
            std::fs::rename(&tmp, &path)?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir.to_path_buf())
}
