//! Python: Kindling's bootstrap compiled once per interpreter into a `.pyc` that the runtime
//! runs instead of `bootstrap.py` (docs/ARCHITECTURE.md, "Density: where an idle Python
//! environment's memory goes").
//!
//! An interpreter that runs a `.py` file compiles it first, and keeps the file's syntax tree
//! (its `PyArena`, ~1.6 MB for the bootstrap) allocated until the file's top-level code
//! returns, which for the bootstrap is never: every idle Python environment carried it. A
//! `.pyc` is only unmarshalled (no tree, no compiler): ~2.2 MB less private memory per
//! environment and ~15 ms less CPU per start. A `.pyc` is only valid for the interpreter
//! version that wrote it, so each interpreter compiles its own, with `py_compile`; when that
//! fails the runtime runs `bootstrap.py` as before.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::java::fnv1a;

/// The `.pyc` of `source` for `python`, made under `<cache>/python` when missing; its code
/// objects name `shown_as` as their file (the path of `bootstrap.py` as the runtime sees it,
/// so tracebacks and the bootstrap's own frame filter look as with the source).
/// Blocking: one interpreter run (~30 ms) the first time, a `stat` afterwards.
pub(crate) fn bootstrap_bytecode(
    python: &Path,
    source: &Path,
    shown_as: &str,
    cache: &Path,
) -> Result<PathBuf, String> {
    let text = std::fs::read(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
    let meta = std::fs::metadata(python).map_err(|e| format!("{}: {e}", python.display()))?;
    // The interpreter's identity: its path, size and modification time (a replaced binary,
    // another minor version at the same path, gets a new file; the `.pyc` carries no check
    // of its own when run directly).
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = fnv1a(&[
        &text,
        python.as_os_str().as_encoded_bytes(),
        &meta.len().to_le_bytes(),
        &modified.to_le_bytes(),
        shown_as.as_bytes(),
    ]);
    let dir = cache.join("python");
    let pyc = dir.join(format!("bootstrap-{key:016x}.pyc"));
    if pyc.is_file() {
        return Ok(pyc);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    set_mode(&dir, 0o755);
    let staged = dir.join(format!(
        ".bootstrap-{key:016x}.tmp-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let result = compile(python, source, &staged, shown_as).and_then(|()| {
        set_mode(&staged, 0o644);
        // Concurrent first starts: whoever renames first wins; never a half-written file.
        std::fs::rename(&staged, &pyc).map_err(|e| format!("installing the .pyc: {e}"))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result.map(|()| pyc)
}

fn compile(python: &Path, source: &Path, target: &Path, shown_as: &str) -> Result<(), String> {
    let out = Command::new(python)
        .args([
            "-I",
            "-S",
            "-c",
            "import py_compile, sys; \
             py_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile=sys.argv[3], doraise=True)",
        ])
        .arg(source)
        .arg(target)
        .arg(shown_as)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if out.status.success() && target.is_file() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        Err(format!("py_compile failed ({}): {last}", out.status))
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some Python 3 on this host, if any (the test says so when there is none).
    fn some_python() -> Option<PathBuf> {
        ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    #[test]
    fn compiles_once_and_the_pyc_runs() {
        let Some(python) = some_python() else {
            panic!("no /usr/bin/python3 on this host: the .pyc path cannot be tested");
        };
        let work = tempfile::tempdir().expect("tempdir");
        let source = work.path().join("bootstrap.py");
        std::fs::write(
            &source,
            "import sys\nprint((lambda: None).__code__.co_filename, sys.argv[1])\n",
        )
        .expect("write");
        let cache = work.path().join("cache");
        let pyc = bootstrap_bytecode(&python, &source, "/var/runtime/python/bootstrap.py", &cache)
            .expect("compiled");
        assert!(pyc.starts_with(cache.join("python")), "{}", pyc.display());
        let modified = std::fs::metadata(&pyc)
            .and_then(|m| m.modified())
            .expect("mtime");
        // Again: the same file, not compiled anew.
        let again =
            bootstrap_bytecode(&python, &source, "/var/runtime/python/bootstrap.py", &cache)
                .expect("cached");
        assert_eq!(again, pyc);
        assert_eq!(
            std::fs::metadata(&again)
                .and_then(|m| m.modified())
                .expect("mtime"),
            modified
        );
        // The interpreter runs it directly, with the file name the runtime would show.
        let out = Command::new(&python)
            .args(["-I", "-S"])
            .arg(&pyc)
            .arg("handler.fn")
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "/var/runtime/python/bootstrap.py handler.fn"
        );
        // Another source (or shown path) is another file.
        std::fs::write(&source, "print('changed')\n").expect("write");
        let changed =
            bootstrap_bytecode(&python, &source, "/var/runtime/python/bootstrap.py", &cache)
                .expect("compiled");
        assert_ne!(changed, pyc);
        // A source that does not compile is an error (the runtime then runs the source).
        std::fs::write(&source, "def (:\n").expect("write");
        let err = bootstrap_bytecode(&python, &source, "/x.py", &cache).expect_err("syntax error");
        assert!(err.contains("py_compile failed"), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(cache.join("python"))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
