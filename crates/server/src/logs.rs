//! `kindling logs FUNCTION [--follow]`: prints a function's log streams from the data dir.
//! Streams that log retention deletes meanwhile are skipped.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use kindling_scheduler::LogStore;

use crate::cli::LogsArgs;

pub fn run(args: &LogsArgs) -> anyhow::Result<()> {
    let store = LogStore::new(args.data_dir.join("logs"));
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let stdout = std::io::stdout();
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
