//! Execution environments' lifecycle: the scheduler admits an invocation against the account's
//! and the function's concurrency, takes a warm environment of that exact function version or
//! starts one (cold start: unpack code and layers, spawn the runtime in the sandbox, wait for
//! Init), hands the event over the Runtime API, enforces the timeout, writes the
//! START/END/REPORT log lines, and returns the environment to the warm pool.
//!
//! It knows nothing of HTTP or storage: the caller resolves which version to run and passes its
//! record and package paths in an [`InvokeTarget`].

mod artifacts;
mod concurrency;
mod env;
mod error;
mod launch;
mod logs;
mod pool;
mod scheduler;
mod users;

pub use concurrency::ThrottleReason;
pub use error::SchedulerError;
pub use kindling_model::invoke::InvokeTarget;
pub use launch::{RuntimeLocator, RuntimePaths};
pub use logs::{
    LogRetention, LogStore, RetentionOverrides, RetentionTask, SweepReport, log_stream_name,
};
pub use scheduler::{
    CredentialsProvider, InvokeRequest, InvokeResult, PoolStats, Scheduler, SchedulerConfig,
};
pub use users::UserRange;
