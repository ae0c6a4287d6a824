//! `--cpu-latency-qos`: while invocations run, ask the kernel's cpuidle governor to keep idle
//! CPUs polling instead of halting, through the PM QoS CPU latency request
//! (`/dev/cpu_dma_latency`: a request of 0 µs holds for as long as its descriptor is open).
//!
//! A warm invoke wakes three sleeping threads (the runtime, Kindling on the result, the
//! client). On a virtual machine whose idle vCPUs halt at once (cpuidle `haltpoll` with
//! `guest_halt_poll_ns=0`, as on this project's machines), each wake-up is an exit to the
//! hypervisor: 16-21 µs, and the woken thread starts on cold caches. Measured
//! (benches/results/haltpoll-2026-12-07.txt): single-client p50 167 → 53 µs, 4 clients 14.5k
//! → 20k invokes/s. The price is CPU: a polling CPU burns its time while it waits, so the
//! request is held only while there is work, and released after a [`TICK`] without any.
//!
//! A thread of its own (blocking file calls, a sleep per tick), never the async runtime.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The kernel's CPU latency request device.
pub const DEVICE: &str = "/dev/cpu_dma_latency";

/// How often activity is sampled; the request is released after one tick without any.
pub const TICK: Duration = Duration::from_millis(20);

/// An open CPU latency request of 0 µs; closing it (dropping) withdraws it.
#[derive(Debug)]
struct Request {
    _file: File,
}

impl Request {
    fn open(device: &Path) -> io::Result<Request> {
        let mut file = OpenOptions::new().write(true).open(device)?;
        // The device takes a binary s32 (µs).
        file.write_all(&0i32.to_ne_bytes())?;
        Ok(Request { _file: file })
    }
}

/// Starts the thread that holds the request while `activity` (a count of work started, e.g.
/// invocations) moves. Fails at once, with the reason, when the device cannot be used (not
/// root, no PM QoS).
pub fn start(activity: impl Fn() -> u64 + Send + 'static) -> io::Result<()> {
    start_with(PathBuf::from(DEVICE), TICK, activity)
}

fn start_with(
    device: PathBuf,
    tick: Duration,
    activity: impl Fn() -> u64 + Send + 'static,
) -> io::Result<()> {
    drop(
        Request::open(&device)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", device.display())))?,
    );
    std::thread::Builder::new()
        .name("cpu-latency-qos".into())
        .spawn(move || hold_while_busy(&device, tick, activity))?;
    Ok(())
}

/// Samples `activity` every `tick`: opens the request when it moved, closes it after a tick
/// in which it did not. Runs for the process's life.
fn hold_while_busy(device: &Path, tick: Duration, activity: impl Fn() -> u64) {
    let mut seen = activity();
    let mut held: Option<Request> = None;
    loop {
        std::thread::sleep(tick);
        let now = activity();
        let busy = now != seen;
        seen = now;
        if busy && held.is_none() {
            match Request::open(device) {
                Ok(request) => held = Some(request),
                Err(e) => {
                    tracing::warn!(device = %device.display(), error = %e, "CPU latency request failed")
                }
            }
        } else if !busy {
            held = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// Whether this process has `path` open (its descriptors' links in /proc/self/fd).
    fn is_open(path: &Path) -> bool {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Held while the count moves, released once it stops, held again when it moves again.
    /// A regular file stands in for the device (it takes the same write).
    #[test]
    fn the_request_is_held_only_while_work_starts() {
        let dir = std::env::temp_dir().join(format!("kindling-qos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let device = dir.join("cpu_dma_latency");
        std::fs::write(&device, b"").unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&count);
        start_with(device.clone(), Duration::from_millis(5), move || {
            c.load(Ordering::Relaxed)
        })
        .unwrap();
        assert_eq!(std::fs::read(&device).unwrap(), 0i32.to_ne_bytes());
        assert!(!is_open(&device), "held before any work");
        for _ in 0..2 {
            // Busy: work starts every millisecond.
            let busy_until = Instant::now() + Duration::from_millis(200);
            let mut held = false;
            while Instant::now() < busy_until {
                count.fetch_add(1, Ordering::Relaxed);
                held |= is_open(&device);
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(held, "not held while busy");
            wait_until("the request to be released", || !is_open(&device));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unusable_device_fails_at_start_with_its_path() {
        let err =
            start_with(PathBuf::from("/nonexistent/cpu_dma_latency"), TICK, || 0).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/cpu_dma_latency"),
            "{err}"
        );
    }
}
