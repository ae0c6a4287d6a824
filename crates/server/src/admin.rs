//! `kindling queue` and `kindling dlq`: inspection of the asynchronous queue, and a thin helper
//! over SQS queues holding dead letters and destination records (list them without receiving;
//! redrive their events to functions), straight from the store: the data dir's SQLite database
//! (safe while the server runs: SQLite serializes writers) or, with `--store postgres://...`,
//! the database a cluster's nodes share (redriven events run on whichever node leases them).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kindling_model::messaging::{QueueRecord, StoredMessage};
use kindling_queues::dlq;
use kindling_store::{PgStore, QueueStore, SqliteStore, Store};

use crate::cli::{DlqCommand, StateArgs, StoreLocation};

/// Runs `f` on the server's store: the data dir's SQLite database, or the shared PostgreSQL
/// database (`--store postgres://...`: the queues and the asynchronous queue every node of a
/// cluster shares).
fn with_store<T>(
    args: &StateArgs,
    f: impl FnOnce(&dyn AdminStore) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match &args.store {
        StoreLocation::Postgres(url) => {
            let store =
                PgStore::connect_with_pool(url, 1).context("opening the PostgreSQL store")?;
            f(&store)
        }
        StoreLocation::Sqlite => {
            let path = args.data_dir.join("state.db");
            anyhow::ensure!(path.is_file(), "no Kindling state at {}", path.display());
            let store =
                SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
            f(&store)
        }
    }
}

/// What these commands read and write: the asynchronous queue and dead letters, and SQS.
trait AdminStore: Store + QueueStore {}
impl<T: Store + QueueStore> AdminStore for T {}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Prints queue depth, in-flight count and the age of the oldest event per function.
pub fn queue(args: &StateArgs) -> anyhow::Result<()> {
    let stats = with_store(args, |store| Ok(store.queue_stats()?))?;
    let now = now_ms();
    let rows: Vec<[String; 4]> = stats
        .into_iter()
        .map(|s| {
            [
                s.function_name,
                s.depth.to_string(),
                s.in_flight.to_string(),
                format!("{:.1}", (now - s.oldest_enqueued_ms) as f64 / 1000.0),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["FUNCTION", "DEPTH", "IN_FLIGHT", "OLDEST_AGE_S"], &rows)
    );
    Ok(())
}

/// Columns as wide as their widest cell, two spaces apart; the first left-aligned, the others
/// right-aligned (numbers).
fn table(header: &[&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    let mut out = line(*header);
    for row in rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out
}

pub fn dlq(cmd: &DlqCommand) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { queue, dir } => with_store(dir, |store| {
            for (q, m) in messages(store, queue.as_deref())? {
                println!("{}", serde_json::to_string(&dlq::listed(&q, &m))?);
            }
            // Records for EventBridge buses and S3 buckets stay in the built-in store (those
            // for queues and topics are there only until the server forwards them).
            for letter in store.dead_letters(queue.as_deref(), usize::MAX >> 1)? {
                let in_transit = [":sqs:", ":sns:"]
                    .iter()
                    .any(|s| letter.target_arn.contains(s));
                if !in_transit {
                    println!("{}", serde_json::to_string(&letter)?);
                }
            }
            Ok(())
        }),
        DlqCommand::Redrive {
            queue,
            function,
            dir,
        } => with_store(dir, |store| {
            let total = dlq::redrive(store, queue.as_deref(), function.as_deref(), now_ms())?;
            println!("redrove {total} message(s)");
            Ok(())
        }),
    }
}

/// Messages of one queue (or of all), oldest first, without receiving them.
fn messages(
    store: &dyn QueueStore,
    queue: Option<&str>,
) -> anyhow::Result<Vec<(QueueRecord, StoredMessage)>> {
    Ok(dlq::messages(store, queue, usize::MAX >> 1)?)
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn table_columns_never_run_together() {
        let rows = [[
            "a-function-with-a-very-long-name-indeed-longer-than-forty".to_string(),
            "123456789".to_string(),
            "3".to_string(),
            "12.5".to_string(),
        ]];
        let out = table(&["FUNCTION", "DEPTH", "IN_FLIGHT", "OLDEST_AGE_S"], &rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line.split_whitespace().count(), 4, "{line:?}");
        }
        assert_eq!(lines[0].len(), lines[1].len());
    }
}
