//! Recent activity for the web console: the last [`RECENT`] invocations (function, version,
//! request id, status, Duration, Init Duration) and, per function, 10-second buckets of the last
//! hour (invocations, errors, cold starts and a log-scale duration histogram for p50/p99).
//!
//! Bounded: the ring holds [`RECENT`] records, each function at most [`BUCKETS`] buckets, and
//! at most [`MAX_FUNCTIONS`] functions are charted (the least recently invoked is dropped).
//! Recording takes one short lock; nothing is read from it on the invoke path.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Invocations kept in the ring.
pub const RECENT: usize = 500;
/// Width of a chart bucket.
pub const BUCKET_MS: i64 = 10_000;
/// Buckets kept per function (one hour).
pub const BUCKETS: usize = 360;
/// Functions charted at once.
pub const MAX_FUNCTIONS: usize = 1000;

/// Duration histogram: bucket `i` holds durations below `FIRST_BOUND_MS * RATIO^i`; the last
/// bucket holds the rest. 1.25 apart, so a percentile is within 12 % of the true value.
const HIST: usize = 80;
const FIRST_BOUND_MS: f64 = 0.05;
const RATIO: f64 = 1.25;

/// One finished invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// When it ended (ms since the epoch).
    pub at_ms: i64,
    pub function: String,
    /// The version that ran (`$LATEST`, `3`).
    pub version: String,
    /// What the caller invoked: `fn`, `fn:alias`, `fn:3`.
    pub resource: String,
    pub request_id: String,
    /// `None` when it succeeded; else the function error's type (`Unhandled`,
    /// `Sandbox.Timedout`, ...).
    pub error: Option<String>,
    pub duration: Duration,
    /// The environment's Init Duration when this invocation cold-started it.
    pub init: Option<Duration>,
    /// Invoked asynchronously (an event), not by a waiting caller.
    pub asynchronous: bool,
}

/// One bucket of a function's chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (ms since the epoch, a multiple of [`BUCKET_MS`]).
    pub start_ms: i64,
    pub invocations: u32,
    pub errors: u32,
    pub cold_starts: u32,
    hist: Box<[u32; HIST]>,
}

impl Bucket {
    fn new(start_ms: i64) -> Self {
        Self {
            start_ms,
            invocations: 0,
            errors: 0,
            cold_starts: 0,
            hist: Box::new([0; HIST]),
        }
    }

    fn add(&mut self, r: &InvocationRecord) {
        self.invocations += 1;
        self.errors += u32::from(r.error.is_some());
        self.cold_starts += u32::from(r.init.is_some());
        self.hist[hist_index(r.duration)] += 1;
    }

    /// Adds another bucket's counts (for the all-functions chart).
    pub fn merge(&mut self, other: &Bucket) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.cold_starts += other.cold_starts;
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            *a += b;
        }
    }

    /// The `q` quantile (0..=1) of the durations in milliseconds: the upper bound of the
    /// histogram bucket holding it; `None` for an empty bucket.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.hist.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.hist.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(bound_ms(i));
            }
        }
        Some(bound_ms(HIST - 1))
    }
}

fn bound_ms(i: usize) -> f64 {
    FIRST_BOUND_MS * RATIO.powi(i as i32)
}

fn hist_index(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < FIRST_BOUND_MS {
        return 0;
    }
    let i = ((ms / FIRST_BOUND_MS).ln() / RATIO.ln()).floor() as usize + 1;
    i.min(HIST - 1)
}

#[derive(Default)]
struct Inner {
    recent: VecDeque<InvocationRecord>,
    charts: HashMap<String, VecDeque<Bucket>>,
}

/// The console's view of recent invocations (see the module doc).
#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Activity {
    pub fn record(&self, r: InvocationRecord) {
        let start = r.at_ms - r.at_ms.rem_euclid(BUCKET_MS);
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        // The name is copied only for a function not charted yet (not once per invocation).
        if !inner.charts.contains_key(&r.function) {
            if inner.charts.len() >= MAX_FUNCTIONS {
                let stalest = inner
                    .charts
                    .iter()
                    .min_by_key(|(_, b)| b.back().map_or(i64::MIN, |b| b.start_ms))
                    .map(|(f, _)| f.clone());
                if let Some(f) = stalest {
                    inner.charts.remove(&f);
                }
            }
            inner.charts.insert(r.function.clone(), VecDeque::new());
        }
        if let Some(buckets) = inner.charts.get_mut(&r.function) {
            match buckets.back_mut() {
                Some(b) if b.start_ms == start => b.add(&r),
                // A record that ended out of order (a long invocation): its own bucket if still
                // kept, else dropped from the chart (it stays in the ring).
                Some(b) if b.start_ms > start => {
                    if let Some(b) = buckets.iter_mut().rev().find(|b| b.start_ms == start) {
                        b.add(&r);
                    }
                }
                _ => {
                    let mut b = Bucket::new(start);
                    b.add(&r);
                    buckets.push_back(b);
                    let horizon = start - BUCKET_MS * BUCKETS as i64;
                    while buckets.front().is_some_and(|b| b.start_ms <= horizon) {
                        buckets.pop_front();
                    }
                }
            }
        }
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(r);
    }

    /// Recent invocations, newest first, of `function` (or all), at most `limit`.
    pub fn recent(&self, function: Option<&str>, limit: usize) -> Vec<InvocationRecord> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .recent
            .iter()
            .rev()
            .filter(|r| function.is_none_or(|f| r.function == f))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The chart buckets since `since_ms` of `function` (or of all functions merged), oldest
    /// first; buckets without invocations are absent.
    pub fn chart(&self, function: Option<&str>, since_ms: i64) -> Vec<Bucket> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut merged: std::collections::BTreeMap<i64, Bucket> = Default::default();
        let series = inner
            .charts
            .iter()
            .filter(|(f, _)| function.is_none_or(|want| want == f.as_str()));
        for (_, buckets) in series {
            for b in buckets.iter().filter(|b| b.start_ms >= since_ms) {
                merged
                    .entry(b.start_ms)
                    .and_modify(|m| m.merge(b))
                    .or_insert_with(|| b.clone());
            }
        }
        merged.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_ms: i64, function: &str, ms: u64, error: bool, cold: bool) -> InvocationRecord {
        InvocationRecord {
            at_ms,
            function: function.into(),
            version: "$LATEST".into(),
            resource: function.into(),
            request_id: format!("r{at_ms}"),
            error: error.then(|| "Unhandled".into()),
            duration: Duration::from_millis(ms),
            init: cold.then(|| Duration::from_millis(100)),
            asynchronous: false,
        }
    }

    #[test]
    fn ring_is_bounded_and_newest_first() {
        let a = Activity::default();
        for i in 0..(RECENT as i64 + 10) {
            a.record(rec(
                1_000_000 + i,
                if i % 2 == 0 { "f" } else { "g" },
                1,
                false,
                false,
            ));
        }
        let all = a.recent(None, usize::MAX);
        assert_eq!(all.len(), RECENT);
        assert_eq!(all[0].at_ms, 1_000_000 + RECENT as i64 + 9);
        let f = a.recent(Some("f"), 3);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|r| r.function == "f"));
    }

    #[test]
    fn buckets_count_and_estimate_percentiles() {
        let a = Activity::default();
        let t = 1_700_000_000_000;
        for i in 0..100 {
            a.record(rec(
                t + i,
                "f",
                if i < 98 { 10 } else { 1000 },
                i == 0,
                i < 2,
            ));
        }
        a.record(rec(t + BUCKET_MS, "g", 5, true, false));
        let f = a.chart(Some("f"), 0);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].invocations, f[0].errors, f[0].cold_starts),
            (100, 1, 2)
        );
        let p50 = f[0].quantile_ms(0.5).unwrap();
        assert!((10.0..=12.5).contains(&p50), "p50 {p50}");
        let p99 = f[0].quantile_ms(0.99).unwrap();
        assert!((1000.0..=1250.0).contains(&p99), "p99 {p99}");
        let all = a.chart(None, 0);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].errors, 1);
        assert!(a.chart(None, t + 2 * BUCKET_MS).is_empty());
    }

    #[test]
    fn old_buckets_fall_off() {
        let a = Activity::default();
        let t = 1_700_000_000_000;
        a.record(rec(t, "f", 1, false, false));
        a.record(rec(
            t + BUCKET_MS * (BUCKETS as i64 + 1),
            "f",
            1,
            false,
            false,
        ));
        assert_eq!(a.chart(Some("f"), 0).len(), 1);
    }
}
