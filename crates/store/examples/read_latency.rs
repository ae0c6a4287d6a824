//! Read latency of the store while asynchronous intake keeps the writer busy.
//!
//! One thread group-commits accepted events back to back (one fsync per batch, as the events
//! intake does under load), a second leases and finishes them (the workers' relaxed
//! bookkeeping), and the main thread measures GetFunction-equivalent reads (`function` +
//! `version`). Run: `cargo run --release -p kindling-store --example read_latency [SECONDS]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kindling_model::events::AsyncEvent;
use kindling_model::function::{CodeInfo, FunctionMeta, FunctionSpec, VersionRecord};
use kindling_store::{SqliteStore, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args().nth(1).map_or(Ok(3.0), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db"))?);
    seed(&*store)?;

    let idle = measure(&*store, Duration::from_secs_f64(seconds / 3.0))?;
    report("reads, store idle", &idle);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let intake = {
        let (store, stop, accepted) =
            (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&accepted));
        std::thread::spawn(move || -> Result<(), kindling_store::StoreError> {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<AsyncEvent> = (0..16)
                    .map(|i| {
                        n += 1;
                        event(&format!("e{n}-{i}"))
                    })
                    .collect();
                store.enqueue_events(&batch)?;
                accepted.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    let workers = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || -> Result<(), kindling_store::StoreError> {
            while !stop.load(Ordering::Relaxed) {
                for e in store.lease_events("bench", i64::MAX / 4, 60_000, 16)? {
                    store.finish_event(&e.id, "bench", &[], &[])?;
                }
            }
            Ok(())
        })
    };
    let started = Instant::now();
    let busy = measure(&*store, Duration::from_secs_f64(seconds))?;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    intake.join().map_err(|_| "intake thread panicked")??;
    workers.join().map_err(|_| "worker thread panicked")??;
    report("reads, during async intake", &busy);
    println!(
        "intake: {:.0} events/s accepted meanwhile",
        accepted.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn measure(
    store: &dyn Store,
    for_how_long: Duration,
) -> Result<Vec<Duration>, kindling_store::StoreError> {
    let mut samples = Vec::new();
    let end = Instant::now() + for_how_long;
    while Instant::now() < end {
        let t = Instant::now();
        let meta = store.function("f")?;
        let latest = store.version("f", None)?;
        assert!(meta.is_some() && latest.is_some());
        samples.push(t.elapsed());
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(samples)
}

fn report(what: &str, samples: &[Duration]) {
    let mut s = samples.to_vec();
    s.sort();
    let pct = |p: f64| s[((s.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "{what}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        s.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}

fn seed(store: &dyn Store) -> Result<(), kindling_store::StoreError> {
    let meta = FunctionMeta {
        name: "f".into(),
        created_ms: 0,
        tags: BTreeMap::new(),
        reserved_concurrency: None,
        last_version: 0,
        provisioned: Default::default(),
    };
    let latest = VersionRecord {
        function_name: "f".into(),
        version: None,
        spec: FunctionSpec {
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            role: "arn:aws:iam::000000000000:role/r".into(),
            ..FunctionSpec::lambda_defaults("f")
        },
        code: CodeInfo {
            sha256: "x".into(),
            size: 100,
            unzipped_size: 200,
            blob: "00".repeat(32),
            image: None,
        },
        revision_id: "r1".into(),
        last_modified_ms: 0,
    };
    store.create_function(&meta, &latest, None)
}

fn event(id: &str) -> AsyncEvent {
    AsyncEvent {
        id: id.into(),
        function_name: "f".into(),
        qualifier: None,
        payload: br#"{"hello":"world"}"#.to_vec(),
        enqueued_ms: 0,
        attempts: 0,
        not_before_ms: 0,
        last_result: None,
        trace_header: None,
    }
}
