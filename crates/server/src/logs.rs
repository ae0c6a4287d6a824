//! `kindling logs FUNCTION [--follow]`: prints a function's log streams from the data dir.
//! Streams that log retention deletes meanwhile are skipped.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::Context;
use kindling_scheduler::LogStore;
use kindling_store::{PgStore, SqliteStore, Store};

use crate::cli::{LogsArgs, StoreLocation};

pub fn run(args: &LogsArgs) -> anyhow::Result<()> {
    let store = LogStore::new(args.data_dir.join("logs"));
    if store.streams(&args.function)?.is_empty() {
        // No log yet: say whether the function exists at all, as `aws logs` would.
        ensure_function_exists(args)?;
    }
    match print(&store, args) {
        // A closed pipe (`kindling logs f | head`) is the reader being done, not an error.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn print(store: &LogStore, args: &LogsArgs) -> anyhow::Result<()> {
    let mut offsets = Offsets::new();
    let stdout = io::stdout();
    loop {
        let mut out = stdout.lock();
        print_new(store, &args.function, &mut offsets, &mut out)?;
        out.flush()?;
        drop(out);
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How far each stream file was printed, by the file's identity (device, inode), not its
/// path: a rotation renames an environment's full file `<name>-earlier.log` and a new file
/// takes its name, so the renamed file goes on where it was and the new one from its start.
type Offsets = HashMap<(u64, u64), u64>;

/// Writes the complete lines of the function's stream files not written yet, oldest file
/// first (a stream's `-earlier` file before its own).
fn print_new(
    store: &LogStore,
    function: &str,
    offsets: &mut Offsets,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut paths = store.streams(function)?;
    // Oldest first, and a stream's `-earlier` file before its own: their modification times
    // can be equal (the kernel's coarse clock).
    paths.sort_by_cached_key(|p| {
        let earlier = p
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("-earlier"));
        (
            std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            !earlier,
        )
    });
    for path in paths {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata()?;
        let id = (meta.dev(), meta.ino());
        seen.insert(id);
        let offset = offsets.entry(id).or_insert(0);
        file.seek(SeekFrom::Start(*offset))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        // Only complete lines; a partial last line is printed once it is finished.
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        out.write_all(&buf[..complete])?;
        *offset += complete as u64;
    }
    // Files deleted meanwhile (retention) are forgotten.
    offsets.retain(|id, _| seen.contains(id));
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Fails with a clear message when the data dir (or the shared store) holds no such function.
fn ensure_function_exists(args: &LogsArgs) -> anyhow::Result<()> {
    if let StoreLocation::Postgres(url) = &args.store {
        let store = PgStore::connect_with_pool(url, 1).context("opening the PostgreSQL store")?;
        anyhow::ensure!(
            store.function(&args.function)?.is_some(),
            "function not found: {} (no such function in the PostgreSQL store)",
            args.function
        );
        return Ok(());
    }
    let db = args.data_dir.join("state.db");
    anyhow::ensure!(
        db.is_file(),
        "no Kindling state at {} (is --data-dir right?)",
        args.data_dir.display()
    );
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    anyhow::ensure!(
        store.function(&args.function)?.is_some(),
        "function not found: {} (no such function in {})",
        args.function,
        args.data_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_scheduler::layout::{earlier_file, stream_file};

    #[test]
    fn follow_goes_on_across_a_rotation_printing_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let path = stream_file(
            &store.function_dir("f"),
            "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let append = |text: &str| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        let mut offsets = Offsets::new();
        let mut out = Vec::new();
        append("a\nb\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        // More lines, then the file is set aside and a new one takes its name.
        append("c\n");
        std::fs::rename(&path, earlier_file(&path)).unwrap();
        append("d\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        append("e\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\nb\nc\nd\ne\n");
    }
}
