//! Python: Kindling's bootstrap compiled once per interpreter into a `.pyc` next to
//! `bootstrap.py` (`/var/runtime/python/bootstrap-<key>.pyc` inside sandboxes) that the runtime
//! runs instead of the source (docs/ARCHITECTURE.md, "Density: where an idle Python
//! environment's memory goes").
//!
//! An interpreter that runs a `.py` file compiles it first, and keeps the file's syntax tree
//! (its `PyArena`, ~1.6 MB for the bootstrap) allocated until the file's top-level code
//! returns, which for the bootstrap is never: every idle Python environment carried it. A
//! `.pyc` is only unmarshalled (no tree, no compiler): ~2.2 MB less private memory per
//! environment and ~15 ms less CPU per start. A `.pyc` is only valid for the interpreter
//! version that wrote it, so each interpreter compiles its own, with `py_compile`; when that
//! fails the runtime runs `bootstrap.py` as before.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::java::fnv1a;

/// The `.pyc` of `<runtime_dir>/python/bootstrap.py` for `python`, made when missing, as a path
/// relative to `runtime_dir`; its code objects name `shown_as` as their file (the path of
/// `bootstrap.py` as the runtime sees it, so tracebacks and the bootstrap's own frame filter
/// look as with the source). Blocking: one interpreter run (~30 ms) the first time, a `stat`
/// afterwards.
pub(crate) fn bootstrap_bytecode(
    python: &Path,
    runtime_dir: &Path,
    shown_as: &str,
) -> Result<String, String> {
    let source = runtime_dir.join("python/bootstrap.py");
    let source = source.as_path();
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
    let relative = format!("python/{PREFIX}{key:016x}.pyc");
    let pyc = runtime_dir.join(&relative);
    if pyc.is_file() {
        return Ok(relative);
    }
    let dir = runtime_dir.join("python");
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
    result.map(|()| relative)
}

/// How the compiled bootstraps' file names begin.
const PREFIX: &str = "bootstrap-";

/// Removes the compiled bootstraps (and staged files) an earlier Kindling left in
/// `<runtime_dir>/python`: they are keyed by source and interpreter, so each new bootstrap or
/// interpreter would otherwise add a file for good. Called at start, before any runtime
/// starts; each interpreter then compiles once again (~30 ms).
pub fn sweep_python_bytecode(runtime_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(runtime_dir.join("python")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.strip_prefix('.').unwrap_or(&name).starts_with(PREFIX)
            && (name.ends_with(".pyc") || name.contains(".tmp-"));
        if ours && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::warn!(file = %entry.path().display(), error = %e, "could not remove an old compiled Python bootstrap");
        }
    }
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
    use std::path::PathBuf;

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
        let runtime_dir = work.path();
        std::fs::create_dir_all(runtime_dir.join("python")).expect("mkdir");
        let source = runtime_dir.join("python/bootstrap.py");
        std::fs::write(
            &source,
            "import sys\nprint((lambda: None).__code__.co_filename, sys.argv[1])\n",
        )
        .expect("write");
        let shown = "/var/runtime/python/bootstrap.py";
        let pyc = bootstrap_bytecode(&python, runtime_dir, shown).expect("compiled");
        assert!(
            pyc.starts_with("python/bootstrap-") && pyc.ends_with(".pyc"),
            "{pyc}"
        );
        let file = runtime_dir.join(&pyc);
        let modified = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .expect("mtime");
        // Again: the same file, not compiled anew.
        let again = bootstrap_bytecode(&python, runtime_dir, shown).expect("cached");
        assert_eq!(again, pyc);
        assert_eq!(
            std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .expect("mtime"),
            modified
        );
        // The interpreter runs it directly, with the file name the runtime would show.
        let out = Command::new(&python)
            .args(["-I", "-S"])
            .arg(&file)
            .arg("handler.fn")
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "/var/runtime/python/bootstrap.py handler.fn"
        );
        // Another shown path, or another source, is another file.
        let elsewhere =
            bootstrap_bytecode(&python, runtime_dir, "/x/bootstrap.py").expect("compiled");
        assert_ne!(elsewhere, pyc);
        std::fs::write(&source, "print('changed')\n").expect("write");
        let changed = bootstrap_bytecode(&python, runtime_dir, shown).expect("compiled");
        assert_ne!(changed, pyc);
        // A source that does not compile is an error (the runtime then runs the source), and
        // leaves no staged file behind.
        std::fs::write(&source, "def (:\n").expect("write");
        let err = bootstrap_bytecode(&python, runtime_dir, shown).expect_err("syntax error");
        assert!(err.contains("py_compile failed"), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(runtime_dir.join("python"))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Kindling's next start removes the compiled files, nothing else.
        sweep_python_bytecode(runtime_dir);
        let left: Vec<String> = std::fs::read_dir(runtime_dir.join("python"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["bootstrap.py"]);
    }
}
