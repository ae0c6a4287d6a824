//! The scheduler's settings, passed in by the binary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use kindling_runtime_api::StreamLimits;
pub use kindling_runtime_api::connections::ConnectionBudget;

use crate::users::UserRange;

/// Settings of the scheduler, passed in by the binary.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Unpacked code, layers and environments' `/tmp` directories.
    pub work_dir: PathBuf,
    /// Host directory holding Kindling's runtime bootstraps (`python/bootstrap.py`,
    /// `node/bootstrap.js`); appears at `/var/runtime` inside sandboxes.
    pub runtime_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Idle environments are shut down after this long.
    pub idle_timeout: Duration,
    /// Limit of the Init phase.
    pub init_timeout: Duration,
    /// Host paths the runtimes need, visible read-only inside namespaced sandboxes.
    pub readonly_host_paths: Vec<PathBuf>,
    /// Credentials given to functions (`AWS_ACCESS_KEY_ID`, ...), per function.
    pub credentials: CredentialsProvider,
    /// Idle environments are frozen after this long (`None`: never).
    pub freeze_after: Option<Duration>,
    /// Namespaced sandboxes: every environment runs as a user (and group) of its own from this
    /// range, and its Runtime API (on the host's loopback when the network is shared) serves
    /// only that user's sockets, so no environment can use another's. `None`: every
    /// environment runs as the sandbox's configured user. Not used in Process mode.
    pub environment_users: Option<UserRange>,
    /// Environments that may be starting at once (the cold-start gate). Further cold starts
    /// wait for a slot without their Init clock running, and take a warm environment of
    /// their function instead if one frees up first. See [`Self::cold_starts_for_cores`].
    pub max_concurrent_cold_starts: usize,
    /// Longest an invocation waits for a cold-start slot or a warm environment; then it is
    /// throttled (429, `FunctionInvocationRateLimitExceeded`).
    pub cold_start_wait_limit: Duration,
    /// Size and bandwidth of streamed responses (Lambda: 200 MB; the first 6 MB at full
    /// speed, then 2 MB/s).
    pub stream_limits: StreamLimits,
    /// The Runtime API connections environments hold beyond their guaranteed few, shared by
    /// all of them (sized by the binary from its open-file limit).
    pub runtime_api_connections: Arc<ConnectionBudget>,
    /// How environments reach Kindling's own API (`AWS_ENDPOINT_URL`); `None`: they are not
    /// pointed at it.
    pub endpoint: Option<ServiceEndpoint>,
    /// Namespaces mode: pre-initialized environments kept ready per Python and Node.js
    /// runtime (sandbox built, interpreter and bootstrap loaded, waiting for a function), so
    /// a cold start only attaches the code and imports the handler. 0: none. A runtime's pool
    /// fills from its first cold start, or from the start for `prewarm_runtimes`.
    pub prewarm_per_runtime: usize,
    /// Runtimes whose pre-initialized environments are started with the scheduler.
    pub prewarm_runtimes: Vec<String>,
    /// Environments this node keeps at most (idle, busy, pre-initialized and provisioned):
    /// a cold start beyond it first retires the environment idle the longest, of any
    /// function, and is throttled when none is idle. `None`: no limit of Kindling's own (the
    /// host's descriptors, memory and processes still are).
    pub max_environments: Option<usize>,
}

/// Kindling's API as execution environments reach it: SDK calls from functions go there
/// (`AWS_ENDPOINT_URL`), signed with the environment's own credentials.
#[derive(Clone)]
pub struct ServiceEndpoint {
    /// The URL for environments sharing the host's network (`http://127.0.0.1:9001`).
    pub host_url: String,
    /// The API's port. An environment with a network namespace of its own gets a listener on
    /// its loopback at this port (`AWS_ENDPOINT_URL=http://127.0.0.1:<port>`) whose
    /// connections are handed to `relay` with the environment's user id.
    pub port: u16,
    pub relay: Arc<dyn Fn(tokio::net::TcpStream, u32) + Send + Sync>,
}

impl std::fmt::Debug for ServiceEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEndpoint")
            .field("host_url", &self.host_url)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl SchedulerConfig {
    /// The default size of the cold-start gate on a host with `cores` cores: two starts per
    /// core (a start alternates between CPU work and waiting on the kernel), at least two.
    pub fn cold_starts_for_cores(cores: usize) -> usize {
        cores.saturating_mul(2).max(2)
    }
}

/// The credentials an environment's runtime gets (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...), asked for at each cold start with the
/// function's unqualified ARN and its execution role.
#[derive(Clone)]
pub struct CredentialsProvider(Arc<CredentialsFn>);

type CredentialsFn = dyn Fn(&str, &str) -> Vec<(String, String)> + Send + Sync;

impl CredentialsProvider {
    /// `provide(function_arn, role_arn)` gives the variables to set.
    pub fn new(
        provide: impl Fn(&str, &str) -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(provide))
    }

    /// The same variables for every function.
    pub fn fixed(vars: Vec<(String, String)>) -> Self {
        Self::new(move |_, _| vars.clone())
    }

    pub(crate) fn for_function(&self, function_arn: &str, role_arn: &str) -> Vec<(String, String)> {
        (self.0)(function_arn, role_arn)
    }
}

impl std::fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsProvider(..)")
    }
}
