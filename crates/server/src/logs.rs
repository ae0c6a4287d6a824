//! `kindling logs FUNCTION [--follow]`: prints a function's log streams from the data dir.
//! Streams that log retention deletes meanwhile are skipped.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use kindling_logs::stream::FileId;
use kindling_logs::streams::StreamFiles;
use kindling_scheduler::{LogStore, layout};
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

/// How far each stream file was printed, by the file's identity (device, inode, birth time),
/// not its path: a rotation renames an environment's full file `<name>-earlier.log` and a new
/// file takes its name, so the renamed file goes on where it was and the new one from its
/// start (as does a new file given a deleted one's inode number).
type Offsets = HashMap<FileId, u64>;

/// Writes the complete lines of the function's stream files not written yet, oldest file
/// first (a stream's `-earlier` file before its own).
fn print_new(
    store: &LogStore,
    function: &str,
    offsets: &mut Offsets,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let paths = list(store, function)?;
    print_listed(&store.function_dir(function), paths, offsets, out)
}

/// The function's stream files, oldest first, and a stream's `-earlier` file before its own:
/// their modification times can be equal (the kernel's coarse clock).
fn list(store: &LogStore, function: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = store.streams(function)?;
    paths.sort_by_cached_key(|p| {
        let earlier = p
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("-earlier"));
        (
            std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            !earlier,
        )
    });
    Ok(paths)
}

/// [`print_new`] of the files `list` gave (a rotation may have renamed them since). Each
/// listed file's stream is printed whole (its `-earlier` file, then its own, opened own
/// first as the API's readers do), at its first file listed: a rotation after the listing
/// leaves its set-aside file unlisted, and it is still printed from where it was.
fn print_listed(
    dir: &Path,
    paths: Vec<PathBuf>,
    offsets: &mut Offsets,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    let mut streams = HashSet::new();
    for path in paths {
        let Some(name) = layout::stream_name(dir, &path) else {
            continue;
        };
        let own = layout::rotated_from(&name).unwrap_or(&name).to_string();
        if !streams.insert(own.clone()) {
            continue;
        }
        let Some(stream) = StreamFiles::named(dir, &own) else {
            continue;
        };
        for open in stream.open()? {
            if !seen.insert(open.id) {
                continue;
            }
            let offset = offsets.entry(open.id).or_insert(0);
            // Shorter than printed: emptied and written again.
            if *offset > open.len {
                *offset = 0;
            }
            let mut file = open.file;
            file.seek(SeekFrom::Start(*offset))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            // Only complete lines; a partial last line is printed once it is finished.
            let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            out.write_all(&buf[..complete])?;
            *offset += complete as u64;
        }
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

    /// The file of an environment's stream of `f` in `store` (its directory created).
    fn stream_path(store: &LogStore) -> PathBuf {
        let path = stream_file(
            &store.function_dir("f"),
            "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_first_rotation_just_after_the_listing_prints_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let path = stream_path(&store);
        let mut offsets = Offsets::new();
        let mut out = Vec::new();
        append(&path, "a\nb\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        // The files are listed; then the stream rotates for the first time, before they are
        // read: the listed name is the new file's, the set-aside file was not listed.
        let listed = list(&store, "f").unwrap();
        append(&path, "c\n");
        std::fs::rename(&path, earlier_file(&path)).unwrap();
        append(&path, "d\n");
        print_listed(&store.function_dir("f"), listed, &mut offsets, &mut out).unwrap();
        append(&path, "e\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\nb\nc\nd\ne\n");
    }

    #[test]
    fn a_file_shorter_than_its_offset_or_new_in_a_reused_inode_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let path = stream_path(&store);
        let mut offsets = Offsets::new();
        let mut out = Vec::new();
        append(&path, "a\nb\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        // Emptied in place, then written again.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "c\n");
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(std::mem::take(&mut out)).unwrap(),
            "a\nb\nc\n"
        );
        // A file in the inode (device and number) of one deleted after being printed to a
        // byte beyond this one's first line: another file, read from its start.
        let id = FileId::of(&std::fs::metadata(&path).unwrap());
        offsets.clear();
        let gone = FileId {
            born: id.born ^ 1,
            ..id
        };
        offsets.insert(gone, 2);
        print_new(&store, "f", &mut offsets, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "c\n");
    }
}
