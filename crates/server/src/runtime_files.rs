//! Kindling's own runtime bootstraps, embedded in the binary and written to the data dir at
//! start (they appear at `/var/runtime` inside sandboxes). The Java runtime is embedded as
//! sources: the scheduler compiles it once with the host's JDK.

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
    (
        "ruby/bootstrap.rb",
        include_str!("../../../runtimes/ruby/bootstrap.rb"),
    ),
    (
        "java/src/kindling/runtime/Bean.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Bean.java"),
    ),
    (
        "java/src/kindling/runtime/Binder.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Binder.java"),
    ),
    (
        "java/src/kindling/runtime/Bootstrap.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Bootstrap.java"),
    ),
    (
        "java/src/kindling/runtime/Function.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Function.java"),
    ),
    (
        "java/src/kindling/runtime/FunctionLoader.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/FunctionLoader.java"),
    ),
    (
        "java/src/kindling/runtime/Json.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Json.java"),
    ),
    (
        "java/src/kindling/runtime/RuntimeApi.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/RuntimeApi.java"),
    ),
    (
        "java/src/kindling/runtime/TimeValues.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/TimeValues.java"),
    ),
    (
        "java/src/kindling/runtime/Training.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Training.java"),
    ),
    (
        "java/src/kindling/runtime/Types.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/Types.java"),
    ),
    (
        "java/src/kindling/runtime/UserApi.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/UserApi.java"),
    ),
    (
        "java/src/kindling/runtime/UserFault.java",
        include_str!("../../../runtimes/java/src/kindling/runtime/UserFault.java"),
    ),
];

/// Writes the bootstraps under `dir` (replacing older copies) and returns `dir`.
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for (name, content) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
            let mut d = Some(parent);
            while let Some(p) = d.filter(|p| p.starts_with(dir)) {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
                d = p.parent();
            }
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
