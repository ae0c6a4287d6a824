//! Metrics for `/metrics`: counters, gauges and histograms made of atomics, labelled families
//! whose members are resolved once and then updated without a lock, and the Prometheus text
//! exposition format (version 0.0.4).
//!
//! The hot path holds an `Arc` of a family member and does relaxed atomic adds; only finding a
//! member the first time takes the family's lock. Rendering reads the atomics without stopping
//! writers (a scrape may see a histogram's count one ahead of its sum, as every Prometheus
//! client library allows).
//! *Invariant: no I/O, no clock; std only.*

mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

pub use text::{Exposition, MetricType};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bucket bounds in seconds for durations of invocations and cold starts (1 ms to 15 min).
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];

/// Bucket bounds in seconds for fast internal operations (10 µs to 1 s).
pub const FAST_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

/// Bucket bounds in seconds for ages of queued events and messages (1 s to 6 h).
pub const AGE_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// A distribution of durations in fixed buckets (non-cumulative counts; the text format adds
/// them up), with the sum kept in nanoseconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last; then the sum in seconds and
    /// the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            out.push((
                self.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                cumulative,
            ));
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (out, sum, cumulative)
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Members of a labelled family by their label values; [`Family::get`] resolves a member once,
/// callers keep the `Arc`.
#[derive(Debug)]
pub struct Family<K: Ord + Clone, V> {
    members: RwLock<BTreeMap<K, Arc<V>>>,
    make: fn() -> V,
}

impl<K: Ord + Clone, V> Family<K, V> {
    pub fn new(make: fn() -> V) -> Self {
        Self {
            members: RwLock::new(BTreeMap::new()),
            make,
        }
    }

    /// The member of `key`, made on first use.
    pub fn get(&self, key: &K) -> Arc<V> {
        if let Some(m) = self
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return Arc::clone(m);
        }
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            members
                .entry(key.clone())
                .or_insert_with(|| Arc::new((self.make)())),
        )
    }

    /// Every member, in key order.
    pub fn members(&self) -> Vec<(K, Arc<V>)> {
        self.members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_cumulatively() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(buckets, vec![(0.01, 2), (0.1, 3), (f64::INFINITY, 4)]);
        assert!((sum - 3.065).abs() < 1e-9);
        assert_eq!(count, 4);
    }

    #[test]
    fn family_members_are_shared() {
        let f: Family<String, Counter> = Family::new(Counter::default);
        f.get(&"a".to_string()).inc();
        let a = f.get(&"a".to_string());
        a.add(2);
        assert_eq!(f.get(&"a".to_string()).get(), 3);
        assert_eq!(f.members().len(), 1);
    }
}
