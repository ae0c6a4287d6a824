//! `kindling logs FUNCTION [--follow]`: prints a function's log streams from the data dir.
//! Streams that log retention deletes meanwhile are skipped.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
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
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let stdout = io::stdout();
    loop {
        let mut out = stdout.lock();
        let streams = store.streams(&args.function)?;
        let live: HashSet<&PathBuf> = streams.iter().collect();
        offsets.retain(|p, _| live.contains(p));
        for path in streams {
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let offset = offsets.entry(path.clone()).or_insert(0);
            file.seek(SeekFrom::Start(*offset))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            // Only complete lines; a partial last line is printed once it is finished.
            let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            out.write_all(&buf[..complete])?;
            *offset += complete as u64;
        }
        out.flush()?;
        drop(out);
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
