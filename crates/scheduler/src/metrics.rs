//! The scheduler's metrics: Lambda's per-function set (invocations, errors, throttles,
//! durations, init durations, concurrency) and Kindling's own (environments by state, cold
//! starts by cause, sandbox setup time).
//!
//! A warm invocation updates members its environment resolved before (`Env` keeps them), with
//! relaxed atomic adds only; a family's lock is taken when a member is first needed (a cold
//! start, a first invocation through a new alias, a throttle). Concurrency and environment
//! counts are read from the admission and the pool when `/metrics` is scraped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use kindling_metrics::{
    Counter, DURATION_BUCKETS, Exposition, FAST_BUCKETS, Family, Gauge, Histogram, MetricType,
};
use kindling_runtime_api::ShutdownReason;

/// Figures of invocations through one resource (`fn`, `fn:alias`, `fn:3`) that ran one version.
#[derive(Debug)]
pub struct InvokeMetrics {
    pub invocations: Counter,
    pub errors: Counter,
    pub duration: Histogram,
    pub init_duration: Histogram,
}

impl InvokeMetrics {
    fn new() -> Self {
        Self {
            invocations: Counter::default(),
            errors: Counter::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            init_duration: Histogram::new(DURATION_BUCKETS),
        }
    }
}

/// Invocations of one provisioned concurrency configuration (function, `function:qualifier`,
/// the version its environments run).
#[derive(Debug, Default)]
pub struct ProvisionedMetrics {
    /// Served by one of its provisioned environments (Lambda's
    /// `ProvisionedConcurrencyInvocations`).
    pub invocations: Counter,
    /// Served on demand because every provisioned environment was busy or still starting
    /// (`ProvisionedConcurrencySpilloverInvocations`).
    pub spillover: Counter,
}

/// Why an environment ended, as the next cold start's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EnvEnd {
    Never = 0,
    Idle = 1,
    Failure = 2,
    Timeout = 3,
    Update = 4,
}

impl EnvEnd {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Idle,
            2 => Self::Failure,
            3 => Self::Timeout,
            4 => Self::Update,
            _ => Self::Never,
        }
    }

    pub fn of(reason: ShutdownReason) -> Self {
        match reason {
            ShutdownReason::Spindown => Self::Idle,
            ShutdownReason::Timeout => Self::Timeout,
            ShutdownReason::Failure => Self::Failure,
        }
    }
}

/// One function's environments.
#[derive(Debug, Default)]
pub struct FunctionState {
    /// Environments started and not yet ended.
    pub live: Gauge,
    last_ended: AtomicU8,
}

impl FunctionState {
    pub fn ended(&self, why: EnvEnd) {
        self.live.add(-1);
        self.last_ended.store(why as u8, Ordering::Relaxed);
    }

    /// The cause of a cold start now: more environments needed while some run
    /// (`scale_out`), none ever started (`first`), or what ended the last one.
    pub fn cold_start_cause(&self) -> &'static str {
        if self.live.get() > 0 {
            return "scale_out";
        }
        match EnvEnd::from_u8(self.last_ended.load(Ordering::Relaxed)) {
            EnvEnd::Never => "first",
            EnvEnd::Idle => "idle_timeout",
            EnvEnd::Failure => "crash",
            EnvEnd::Timeout => "timeout",
            EnvEnd::Update => "code_or_config_update",
        }
    }
}

/// Every metric the scheduler keeps.
#[derive(Debug)]
pub struct SchedulerMetrics {
    /// By (function, resource, executed version).
    pub invokes: Family<(String, String, String), InvokeMetrics>,
    pub functions: Family<String, FunctionState>,
    /// By (function, reason).
    pub throttles: Family<(String, &'static str), Counter>,
    /// By (function, cause).
    pub cold_starts: Family<(String, &'static str), Counter>,
    /// By (function, resource, executed version) of a provisioned concurrency configuration.
    pub provisioned: Family<(String, String, String), ProvisionedMetrics>,
    /// From the start of a cold start to the runtime's process running (unpacking, uid,
    /// network, Runtime API, sandbox).
    pub sandbox_setup: Histogram,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        Self {
            invokes: Family::new(InvokeMetrics::new),
            functions: Family::new(FunctionState::default),
            throttles: Family::new(Counter::default),
            cold_starts: Family::new(Counter::default),
            provisioned: Family::new(ProvisionedMetrics::default),
            sandbox_setup: Histogram::new(FAST_BUCKETS),
        }
    }
}

/// What `/metrics` reads from the scheduler besides its counters.
pub(crate) struct Live {
    pub idle_environments: usize,
    pub running: Vec<(String, u32)>,
    pub unreserved_running: u32,
    /// Every provisioned concurrency configuration kept now.
    pub provisioned: Vec<ProvisionedLive>,
}

/// A provisioned concurrency configuration's environments when `/metrics` is scraped.
pub(crate) struct ProvisionedLive {
    /// (function, resource, executed version), as [`SchedulerMetrics::provisioned`].
    pub key: (String, String, String),
    /// Members serving an invocation now.
    pub busy: u32,
    /// Members alive (initialized, idle or busy).
    pub allocated: u32,
}

impl SchedulerMetrics {
    pub fn invoke(&self, function: &str, resource: &str, version: &str) -> Arc<InvokeMetrics> {
        self.invokes.get(&(
            function.to_string(),
            resource.to_string(),
            version.to_string(),
        ))
    }

    pub fn throttled(&self, function: &str, reason: &'static str) {
        self.throttles.get(&(function.to_string(), reason)).inc();
    }

    pub fn cold_start(&self, function: &str, setup: Duration) -> Arc<FunctionState> {
        let state = self.functions.get(&function.to_string());
        let cause = state.cold_start_cause();
        self.cold_starts.get(&(function.to_string(), cause)).inc();
        self.sandbox_setup.observe(setup);
        state.live.add(1);
        state
    }

    pub(crate) fn render(&self, live: &Live, e: &mut Exposition) {
        let invokes = self.invokes.members();
        let labels = |k: &(String, String, String)| {
            [
                ("function", k.0.clone()),
                ("resource", k.1.clone()),
                ("executed_version", k.2.clone()),
            ]
        };
        e.header(
            "kindling_lambda_invocations_total",
            MetricType::Counter,
            "Invocations that ran (function errors included), as Lambda's Invocations.",
        );
        for (k, m) in &invokes {
            let l = labels(k);
            e.sample(
                "kindling_lambda_invocations_total",
                &as_refs(&l),
                m.invocations.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_errors_total",
            MetricType::Counter,
            "Invocations that ended in a function error (timeouts and crashes included).",
        );
        for (k, m) in &invokes {
            let l = labels(k);
            e.sample(
                "kindling_lambda_errors_total",
                &as_refs(&l),
                m.errors.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_duration_seconds",
            MetricType::Histogram,
            "Time the function spent on an invocation (Lambda's Duration).",
        );
        for (k, m) in &invokes {
            let l = labels(k);
            e.histogram(
                "kindling_lambda_duration_seconds",
                &as_refs(&l),
                &m.duration,
            );
        }
        e.header(
            "kindling_lambda_init_duration_seconds",
            MetricType::Histogram,
            "Init phase of the environments that cold-started for an invocation.",
        );
        for (k, m) in &invokes {
            let l = labels(k);
            e.histogram(
                "kindling_lambda_init_duration_seconds",
                &as_refs(&l),
                &m.init_duration,
            );
        }
        e.header(
            "kindling_lambda_throttles_total",
            MetricType::Counter,
            "Invocations refused for concurrency (429), by reason.",
        );
        for ((f, reason), c) in self.throttles.members() {
            e.sample(
                "kindling_lambda_throttles_total",
                &[("function", &f), ("reason", reason)],
                c.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_concurrent_executions",
            MetricType::Gauge,
            "Invocations in progress.",
        );
        for (f, n) in &live.running {
            e.sample(
                "kindling_lambda_concurrent_executions",
                &[("function", f)],
                f64::from(*n),
            );
        }
        self.render_provisioned(live, e);
        e.header(
            "kindling_lambda_unreserved_concurrent_executions",
            MetricType::Gauge,
            "Invocations in progress of functions without reserved concurrency.",
        );
        e.sample(
            "kindling_lambda_unreserved_concurrent_executions",
            &[],
            f64::from(live.unreserved_running),
        );
        let live_total: i64 = self
            .functions
            .members()
            .iter()
            .map(|(_, s)| s.live.get().max(0))
            .sum();
        let idle = live.idle_environments as i64;
        e.header(
            "kindling_environments",
            MetricType::Gauge,
            "Execution environments by state (idle: warm in the pool; busy: running or being retired).",
        );
        e.sample("kindling_environments", &[("state", "idle")], idle as f64);
        e.sample(
            "kindling_environments",
            &[("state", "busy")],
            (live_total - idle).max(0) as f64,
        );
        e.header(
            "kindling_cold_starts_total",
            MetricType::Counter,
            "Environments started, by what made one necessary.",
        );
        for ((f, cause), c) in self.cold_starts.members() {
            e.sample(
                "kindling_cold_starts_total",
                &[("function", &f), ("cause", cause)],
                c.get() as f64,
            );
        }
        e.header(
            "kindling_sandbox_setup_seconds",
            MetricType::Histogram,
            "From a cold start's beginning to its runtime process running.",
        );
        e.histogram("kindling_sandbox_setup_seconds", &[], &self.sandbox_setup);
    }
}

impl SchedulerMetrics {
    /// Lambda's provisioned concurrency metrics, per configuration (function, its
    /// `function:qualifier` resource, the version its environments run).
    fn render_provisioned(&self, live: &Live, e: &mut Exposition) {
        let labels = |k: &(String, String, String)| {
            [
                ("function", k.0.clone()),
                ("resource", k.1.clone()),
                ("executed_version", k.2.clone()),
            ]
        };
        e.header(
            "kindling_lambda_provisioned_concurrent_executions",
            MetricType::Gauge,
            "Provisioned environments serving an invocation now (Lambda's ProvisionedConcurrentExecutions).",
        );
        for p in &live.provisioned {
            let l = labels(&p.key);
            e.sample(
                "kindling_lambda_provisioned_concurrent_executions",
                &as_refs(&l),
                f64::from(p.busy),
            );
        }
        e.header(
            "kindling_lambda_provisioned_concurrency_utilization",
            MetricType::Gauge,
            "Provisioned environments serving an invocation over those allocated (0 to 1).",
        );
        for p in &live.provisioned {
            let l = labels(&p.key);
            let ratio = if p.allocated == 0 {
                0.0
            } else {
                f64::from(p.busy) / f64::from(p.allocated)
            };
            e.sample(
                "kindling_lambda_provisioned_concurrency_utilization",
                &as_refs(&l),
                ratio,
            );
        }
        let members = self.provisioned.members();
        e.header(
            "kindling_lambda_provisioned_concurrency_invocations_total",
            MetricType::Counter,
            "Invocations served by a provisioned environment.",
        );
        for (k, m) in &members {
            let l = labels(k);
            e.sample(
                "kindling_lambda_provisioned_concurrency_invocations_total",
                &as_refs(&l),
                m.invocations.get() as f64,
            );
        }
        e.header(
            "kindling_lambda_provisioned_concurrency_spillover_invocations_total",
            MetricType::Counter,
            "Invocations of a provisioned version or alias served on demand (every provisioned environment busy).",
        );
        for (k, m) in &members {
            let l = labels(k);
            e.sample(
                "kindling_lambda_provisioned_concurrency_spillover_invocations_total",
                &as_refs(&l),
                m.spillover.get() as f64,
            );
        }
    }
}

fn as_refs<'a>(l: &'a [(&'static str, String); 3]) -> [(&'static str, &'a str); 3] {
    [(l[0].0, &l[0].1), (l[1].0, &l[1].1), (l[2].0, &l[2].1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_start_causes() {
        let m = SchedulerMetrics::default();
        let s = m.cold_start("f", Duration::from_millis(3));
        assert_eq!(s.live.get(), 1);
        assert_eq!(
            m.functions.get(&"f".to_string()).cold_start_cause(),
            "scale_out"
        );
        s.ended(EnvEnd::Timeout);
        assert_eq!(s.cold_start_cause(), "timeout");
        m.cold_start("f", Duration::from_millis(3))
            .ended(EnvEnd::Update);
        assert_eq!(s.cold_start_cause(), "code_or_config_update");
        let key = ("f".to_string(), "f:live".to_string(), "3".to_string());
        m.provisioned.get(&key).invocations.add(5);
        m.provisioned.get(&key).spillover.inc();
        let mut e = Exposition::default();
        m.render(
            &Live {
                idle_environments: 0,
                running: vec![("f".into(), 2)],
                unreserved_running: 2,
                provisioned: vec![ProvisionedLive {
                    key: ("f".into(), "f:live".into(), "3".into()),
                    busy: 1,
                    allocated: 4,
                }],
            },
            &mut e,
        );
        let text = e.finish();
        assert!(text.contains("kindling_cold_starts_total{function=\"f\",cause=\"first\"} 1\n"));
        assert!(text.contains("kindling_cold_starts_total{function=\"f\",cause=\"timeout\"} 1\n"));
        assert!(text.contains("kindling_lambda_concurrent_executions{function=\"f\"} 2\n"));
        let l = "{function=\"f\",resource=\"f:live\",executed_version=\"3\"}";
        for line in [
            format!("kindling_lambda_provisioned_concurrent_executions{l} 1\n"),
            format!("kindling_lambda_provisioned_concurrency_utilization{l} 0.25\n"),
            format!("kindling_lambda_provisioned_concurrency_invocations_total{l} 5\n"),
            format!("kindling_lambda_provisioned_concurrency_spillover_invocations_total{l} 1\n"),
        ] {
            assert!(text.contains(&line), "{line} missing from {text}");
        }
    }
}
