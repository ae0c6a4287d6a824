//! Execution environments' lifecycle: the scheduler admits an invocation against the account's
//! and the function's concurrency, takes a warm environment of that exact function version or
//! starts one (cold start: unpack code and layers, spawn the runtime in the sandbox, wait for
//! Init), hands the event over the Runtime API, enforces the timeout, writes the
//! START/END/REPORT log lines, and returns the environment to the warm pool.
//!
//! It knows nothing of HTTP or storage: the caller resolves which version to run and passes its
//! record and package paths in an [`InvokeTarget`].
//!
//! Modules, from the handle down (no module depends on one above it):
//! `scheduler` (the [`Scheduler`] handle: admission, detached invocations, reaper, shutdown) →
//! `invocation` (one invocation: warm environment, hand-over or cold start, the run) →
//! `shared` (state shared by invocations) → `pool` (warm pool and waiters, generic),
//! `start` (cold starts: prepare → spawn → await Init), `env` (a started environment) →
//! `freezer`, `logs`, `launch`, `artifacts`, `users`, `concurrency`, `trace`.

pub mod activity;
mod arch;
mod artifacts;
mod concurrency;
mod config;
mod detach;
mod env;
mod error;
mod freezer;
mod image;
mod inflight;
mod invocation;
mod java;
mod launch;
mod locate;
mod logs;
pub mod metrics;
mod pool;
mod provisioned;
mod python;
mod request;
mod scheduler;
mod shared;
mod spans;
mod start;
mod trace;
mod users;

pub use concurrency::{
    Concurrency, GrantBroker, HealthFn, Refused, ScopeDemand, ThrottleReason, UNRESERVED_SCOPE,
};
pub use config::{
    ConnectionBudget, CredentialsProvider, SchedulerConfig, ServiceEndpoint, StreamLimits,
};
pub use error::SchedulerError;
pub use kindling_model::invoke::{FunctionError, InvokeTarget};
pub use kindling_runtime_api::DEFAULT_STREAM_BURST_BYTES;
pub use launch::{NODE_SDK, PYTHON_SDK};
pub use locate::{RuntimeLocator, RuntimePaths};
pub use logs::{
    LogRetention, LogStore, RetentionOverrides, RetentionTask, SweepReport, layout, log_stream_name,
};
pub use provisioned::{INIT_FAILURE_REASON, ProvisionedSpec, ProvisionedState, ProvisionedStatus};
pub use python::sweep_python_bytecode;
pub use request::{InvokeRequest, InvokeResponse, InvokeResult, InvokeStream, StreamOutcome};
pub use scheduler::{PoolStats, Scheduler};
pub use trace::{accept_trace_header, invocation_trace_header};
pub use users::{UserPoolError, UserRange};
