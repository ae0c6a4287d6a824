//! Metrics of asynchronous invocation, as Lambda's `AsyncEventsReceived`, `AsyncEventAge` and
//! `AsyncEventsDropped`, plus the latency of the queue's store calls.

use std::time::Duration;

use kindling_metrics::{
    AGE_BUCKETS, Counter, Exposition, FAST_BUCKETS, Family, Histogram, MetricType,
};

#[derive(Debug)]
pub struct EventsMetrics {
    /// Events accepted (stored), by function.
    pub received: Family<String, Counter>,
    /// Events given up without a successful run, by (function, reason).
    pub dropped: Family<(String, &'static str), Counter>,
    /// From acceptance to each attempt's start, by function.
    pub age: Family<String, Histogram>,
    /// Store calls of the queue, by operation.
    pub store: Family<&'static str, Histogram>,
}

fn age_histogram() -> Histogram {
    Histogram::new(AGE_BUCKETS)
}

fn store_histogram() -> Histogram {
    Histogram::new(FAST_BUCKETS)
}

impl Default for EventsMetrics {
    fn default() -> Self {
        Self {
            received: Family::new(Counter::default),
            dropped: Family::new(Counter::default),
            age: Family::new(age_histogram),
            store: Family::new(store_histogram),
        }
    }
}

impl EventsMetrics {
    pub fn dropped(&self, function: &str, reason: &'static str) {
        self.dropped.get(&(function.to_string(), reason)).inc();
    }

    pub fn store_call(&self, what: &'static str, took: Duration) {
        self.store.get(&what).observe(took);
    }

    pub fn render(&self, e: &mut Exposition) {
        e.header(
            "kindling_lambda_async_events_received_total",
            MetricType::Counter,
            "Events accepted for asynchronous invocation.",
        );
        for (f, c) in self.received.members() {
            e.sample(
                "kindling_lambda_async_events_received_total",
                &[("function", &f)],
                c.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_async_events_dropped_total",
            MetricType::Counter,
            "Events dropped without a successful invocation, by reason.",
        );
        for ((f, reason), c) in self.dropped.members() {
            e.sample(
                "kindling_lambda_async_events_dropped_total",
                &[("function", &f), ("reason", reason)],
                c.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_async_event_age_seconds",
            MetricType::Histogram,
            "Time from an event's acceptance to each attempt to invoke it.",
        );
        for (f, h) in self.age.members() {
            e.histogram(
                "kindling_lambda_async_event_age_seconds",
                &[("function", &f)],
                &h,
            );
        }
        e.header(
            "kindling_store_call_seconds",
            MetricType::Histogram,
            "Latency of the store calls of the asynchronous invocation queue, by operation.",
        );
        for (op, h) in self.store.members() {
            e.histogram("kindling_store_call_seconds", &[("operation", op)], &h);
        }
    }
}
