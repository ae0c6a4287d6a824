//! `kindling queue` and `kindling dlq`: inspection and redrive of the asynchronous queue,
//! straight from the data dir (safe while the server runs: SQLite serializes writers).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kindling_model::events::AsyncEvent;
use kindling_store::{SqliteStore, Store};

use crate::cli::{DataDirArgs, DlqCommand};

fn open(dir: &DataDirArgs) -> anyhow::Result<SqliteStore> {
    let path = dir.data_dir.join("state.db");
    anyhow::ensure!(path.is_file(), "no Kindling state at {}", path.display());
    SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Prints queue depth, in-flight count and the age of the oldest event per function.
pub fn queue(dir: &DataDirArgs) -> anyhow::Result<()> {
    let store = open(dir)?;
    let stats = store.queue_stats()?;
    println!(
        "{:<40} {:>8} {:>10} {:>14}",
        "FUNCTION", "DEPTH", "IN FLIGHT", "OLDEST AGE (s)"
    );
    let now = now_ms();
    for s in stats {
        println!(
            "{:<40} {:>8} {:>10} {:>14.1}",
            s.function_name,
            s.depth,
            s.in_flight,
            (now - s.oldest_enqueued_ms) as f64 / 1000.0
        );
    }
    Ok(())
}

pub fn dlq(cmd: &DlqCommand) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { queue, dir } => {
            let store = open(dir)?;
            for letter in store.dead_letters(queue.as_deref(), usize::MAX >> 1)? {
                println!("{}", serde_json::to_string(&letter)?);
            }
            Ok(())
        }
        DlqCommand::Redrive { queue, dir } => {
            let store = open(dir)?;
            let letters = store.dead_letters(queue.as_deref(), usize::MAX >> 1)?;
            let now = now_ms();
            let ids: Vec<String> = letters.iter().map(|l| l.id.clone()).collect();
            let events: Vec<AsyncEvent> = letters
                .iter()
                .map(|l| AsyncEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    function_name: l.function_name.clone(),
                    qualifier: l.qualifier.clone(),
                    payload: l.request_payload.to_string().into_bytes(),
                    enqueued_ms: now,
                    attempts: 0,
                    not_before_ms: now,
                    last_result: None,
                    trace_header: None,
                })
                .collect();
            store.redrive(&ids, &events)?;
            println!("redrove {} message(s)", events.len());
            Ok(())
        }
    }
}
