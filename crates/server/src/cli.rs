//! Command-line interface: every setting is a flag with a `KINDLING_*` environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kindling",
    version,
    about = "A self-hosted AWS Lambda: the Lambda API, runtimes and lifecycle on your machine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kindling server (Lambda API, data plane and execution environments).
    Serve(Box<ServeArgs>),
    /// Print a function's logs (all log streams, oldest first).
    Logs(LogsArgs),
    /// Show the asynchronous-invocation queue: depth and oldest event per function.
    Queue(StateArgs),
    /// List the messages of SQS queues (dead-letter queues, destinations) or send their events
    /// back to their functions.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Language runtimes: the AWS SDKs Lambda's managed runtimes bundle.
    #[command(subcommand)]
    Runtimes(RuntimesCommand),
    /// Deploy a CloudFormation or SAM template: package local code, upload it, create and
    /// execute a change set, stream each resource event, print the outputs.
    Deploy(DeployArgs),
    /// Delete a stack and everything it made, streaming each resource event.
    DeleteStack(DeleteStackArgs),
    /// Show the nodes sharing this server's database: heartbeats, load, leased events, and
    /// which node owns each event source mapping and schedule.
    Nodes(NodesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NodesArgs {
    /// A node's endpoint.
    #[arg(
        long,
        env = "KINDLING_ENDPOINT",
        default_value = "http://127.0.0.1:9001"
    )]
    pub endpoint: String,
    /// Region the server presents itself as (for the request's signature).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Print the JSON the node serves instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// Kindling's endpoint.
    #[arg(
        long,
        env = "KINDLING_ENDPOINT",
        default_value = "http://127.0.0.1:9001"
    )]
    pub endpoint: String,
    /// Region the server presents itself as (for request signatures).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The template (YAML or JSON; SAM or plain CloudFormation). Default: the one `sam build`
    /// wrote (`.aws-sam/build/template.yaml`) if present, else `template.yaml`.
    #[arg(short = 't', long = "template-file")]
    pub template_file: Option<PathBuf>,
    /// The stack (default: the template's folder name).
    #[arg(long)]
    pub stack_name: Option<String>,
    /// Parameter values, `KEY=VALUE` each.
    #[arg(long, num_args = 1..)]
    pub parameter_overrides: Vec<String>,
    /// The bucket artifacts are uploaded to (created when missing).
    #[arg(long, default_value = "kindling-deploy-artifacts")]
    pub bucket: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteStackArgs {
    /// The stack to delete.
    #[arg(long)]
    pub stack_name: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RuntimesCommand {
    /// Install, once, the AWS SDKs functions expect (boto3 for Python with pip, the AWS SDK for
    /// JavaScript v3 clients for Node.js with npm) into the data directory. Functions see them
    /// after their own code and layers. Works offline once installed.
    InstallSdks(InstallSdksArgs),
}

#[derive(Debug, Clone, Args)]
pub struct InstallSdksArgs {
    /// Only this SDK (default: both).
    #[arg(long, value_enum)]
    pub only: Option<SdkKind>,
    /// Download again even when installed (newest versions).
    #[arg(long)]
    pub upgrade: bool,
    /// Python whose pip installs boto3.
    #[arg(long, default_value = "/usr/bin/python3")]
    pub python: PathBuf,
    /// npm that installs the JavaScript clients.
    #[arg(long, default_value = "npm")]
    pub npm: PathBuf,
    #[command(flatten)]
    pub dir: DataDirArgs,
}

/// An SDK `install-sdks` provides.
/// Where `kindling serve` keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `<data-dir>/state.db`.
    Sqlite,
    /// A PostgreSQL connection URL.
    Postgres(String),
}

fn parse_store(s: &str) -> Result<StoreLocation, String> {
    if s == "sqlite" {
        Ok(StoreLocation::Sqlite)
    } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(StoreLocation::Postgres(s.to_string()))
    } else {
        Err("expected `sqlite` or `postgres://USER@HOST:PORT/DB`".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SdkKind {
    /// boto3 (and botocore), for Python functions.
    Python,
    /// @aws-sdk/client-* v3, for Node.js functions.
    Node,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Directory holding Kindling's state.
    #[arg(long, env = "KINDLING_DATA_DIR", default_value = ".kindling")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// Print the messages of SQS queues as JSON lines, oldest first, without receiving them.
    List {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        dir: StateArgs,
    },
    /// Delete a queue's messages and invoke their functions again with the original events
    /// (destination records name their function; dead-letter queue messages need --function).
    Redrive {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// The function that gets dead-letter queue messages (original events).
        #[arg(long)]
        function: Option<String>,
        #[command(flatten)]
        dir: StateArgs,
    },
}

/// Where a command finds the server's state: the data dir's SQLite database, or the
/// PostgreSQL database a cluster shares.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Directory holding Kindling's state (with `--store sqlite`).
    #[arg(long, env = "KINDLING_DATA_DIR", default_value = ".kindling")]
    pub data_dir: PathBuf,
    /// Where the server keeps its state (as `kindling serve --store`): `sqlite`
    /// (`<data-dir>/state.db`) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "KINDLING_STORE", default_value = "sqlite", value_parser = parse_store)]
    pub store: StoreLocation,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Function name.
    pub function: String,
    /// Keep printing new lines as they are written.
    #[arg(long, short)]
    pub follow: bool,
    /// Directory holding Kindling's state.
    #[arg(long, env = "KINDLING_DATA_DIR", default_value = ".kindling")]
    pub data_dir: PathBuf,
    /// Where the server keeps its functions (as `kindling serve --store`); the log files are
    /// the node's own, under `--data-dir`.
    #[arg(long, env = "KINDLING_STORE", default_value = "sqlite", value_parser = parse_store)]
    pub store: StoreLocation,
}

/// How execution environments are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// Namespaces and cgroups when running as root and available, else plain processes.
    Auto,
    /// Plain child processes (no root needed, no isolation).
    Process,
    /// Mount/PID/IPC/UTS namespaces, cgroup limits, an unprivileged user (root only).
    Namespaces,
    /// Like `namespaces`, with a private network namespace (no network at all).
    NamespacesNoNetwork,
}

/// What functions' own credentials may do through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FunctionApiAccess {
    /// Invoke any function; read only their own configuration.
    Invoke,
    /// Also read the whole control plane.
    Read,
    /// Everything an operator may do.
    Full,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the Lambda API listens on.
    #[arg(long, env = "KINDLING_LISTEN", default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Directory holding state (SQLite) and code packages.
    #[arg(long, env = "KINDLING_DATA_DIR", default_value = ".kindling")]
    pub data_dir: PathBuf,
    /// Where the control plane's state lives: `sqlite` (`<data-dir>/state.db`, one node) or
    /// `postgres://USER@HOST:PORT/DB`, one database that several nodes share (functions,
    /// versions, aliases, layers, code packages, URLs and the asynchronous queue).
    #[arg(long, env = "KINDLING_STORE", default_value = "sqlite", value_parser = parse_store)]
    pub store: StoreLocation,
    /// Test setting: a PostgreSQL store call made on an async worker thread panics instead of
    /// being moved off it (finds callers that skipped the blocking pool).
    #[arg(long, hide = true)]
    pub store_strict_blocking: bool,
    /// With `--store postgres://...`: connections this node's pool keeps open to PostgreSQL at
    /// most (1 to 1000). Each node also holds one more for the change listener: N nodes use up
    /// to N x (pool size + 1) of the server's `max_connections` (PostgreSQL's default: 100).
    #[arg(
        long,
        env = "KINDLING_STORE_POOL_SIZE",
        default_value_t = kindling_store::DEFAULT_POOL_SIZE,
        value_parser = parse_pool_size,
        value_name = "CONNECTIONS"
    )]
    pub store_pool_size: u32,
    /// Region this server presents itself as (in ARNs): like `us-east-1` or `us-gov-west-1`
    /// (two lowercase letters, '-'-separated lowercase words, then '-' and one digit; at most
    /// 32 characters).
    #[arg(long, env = "KINDLING_REGION", default_value = "us-east-1", value_parser = parse_region)]
    pub region: String,
    /// Account id this server presents itself as (in ARNs): 12 digits.
    #[arg(
        long,
        env = "KINDLING_ACCOUNT_ID",
        default_value = "000000000000",
        value_parser = parse_account_id
    )]
    pub account_id: String,
    /// Account concurrency limit (ConcurrentExecutions).
    #[arg(long, env = "KINDLING_ACCOUNT_CONCURRENCY", default_value_t = 1000)]
    pub account_concurrency: u32,
    /// Concurrency that reservations must leave unreserved.
    #[arg(
        long,
        env = "KINDLING_MIN_UNRESERVED_CONCURRENCY",
        default_value_t = 100
    )]
    pub min_unreserved_concurrency: u32,
    /// How execution environments are isolated.
    #[arg(long, env = "KINDLING_ISOLATION", value_enum, default_value_t = Isolation::Auto)]
    pub isolation: Isolation,
    /// First user id of namespaced environments: each runs as a user (and group) of its own,
    /// from this id up, and only that user may use its Runtime API.
    #[arg(long, env = "KINDLING_ENV_UID_BASE", default_value_t = 100_000)]
    pub env_uid_base: u32,
    /// How many user ids from `--env-uid-base` environments may use at once (with other
    /// Kindling processes of the host: they share the ids through locks in
    /// /run/kindling-uids). 0 runs every environment as uid/gid 993 (then environments
    /// sharing the host network can reach each other's Runtime API).
    #[arg(long, env = "KINDLING_ENV_UID_COUNT", default_value_t = 65_536)]
    pub env_uid_count: u32,
    /// Seconds an idle execution environment is kept warm before it is shut down.
    #[arg(long, env = "KINDLING_IDLE_TIMEOUT", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Verify SigV4 signatures of every API request against these access keys (see README:
    /// "Shared mode"); without it, unsigned requests are accepted.
    #[arg(long, env = "KINDLING_CREDENTIALS_FILE")]
    pub credentials: Option<PathBuf>,
    /// Shared mode: refuse to start without `--credentials`.
    #[arg(long, env = "KINDLING_SHARED")]
    pub shared: bool,
    /// What functions may do through the API with the credentials Kindling gives them:
    /// `invoke` (invoke any function, read their own configuration), `read` (also read the
    /// control plane) or `full` (everything).
    #[arg(long, env = "KINDLING_FUNCTION_API_ACCESS", value_enum, default_value_t = FunctionApiAccess::Invoke)]
    pub function_api_access: FunctionApiAccess,
    /// An execution role whose functions may do everything through the API (repeatable).
    #[arg(
        long = "admin-role",
        env = "KINDLING_ADMIN_ROLES",
        value_delimiter = ','
    )]
    pub admin_roles: Vec<String>,
    /// Without `--credentials`: a host name, besides `localhost`, `*.localhost` and IP
    /// addresses, that requests may be addressed to (`NAME`, or `*.NAME` for its subdomains;
    /// repeatable). Requests for any other name are refused: a web page whose name resolves
    /// to this machine (DNS rebinding) would send them.
    #[arg(
        long = "allowed-host",
        env = "KINDLING_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_parser = parse_allowed_host
    )]
    pub allowed_hosts: Vec<String>,
    /// Seconds a client has to send a request's headers (also the longest a keep-alive
    /// connection may stay idle).
    #[arg(long, env = "KINDLING_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a request body may stop arriving before the request is cut.
    #[arg(long, env = "KINDLING_BODY_TIMEOUT", default_value_t = 10.0)]
    pub body_timeout: f64,
    /// Slowest a request body may arrive on average, in bytes per second with the units of
    /// sizes (`16KiB`), after a grace of twice `--body-timeout` (time waiting for
    /// `--max-body-memory` not counted): a body trickled a byte at a time is cut. 0: no
    /// average rate, only `--body-timeout` between pieces.
    #[arg(long, env = "KINDLING_BODY_MIN_RATE", default_value = "16KiB", value_parser = parse_size)]
    pub body_min_rate: u64,
    /// Execution environments this node keeps at most (idle, busy, pre-initialized and
    /// provisioned). A cold start beyond it retires the environment idle the longest, of any
    /// function, or is throttled (429) when none is idle. Default: what the open-file limit
    /// allows (about 16 descriptors each, after room for --max-connections). 0: no limit.
    #[arg(long, env = "KINDLING_MAX_ENVIRONMENTS")]
    pub max_environments: Option<usize>,
    /// Namespaces mode: processes and threads all execution environments of this node may
    /// have at once (`pids.max` on the node's cgroup, above each environment's own 1,024); a
    /// fork beyond it fails with EAGAIN in the function, and the host keeps pids for itself.
    /// Default: three quarters of the smaller of `kernel.pid_max` and `kernel.threads-max`.
    /// 0: no node-wide cap.
    #[arg(long, env = "KINDLING_MAX_PROCESSES")]
    pub max_processes: Option<u64>,
    /// Namespaces mode: MiB of memory all execution environments of this node may use
    /// together (the node's memory cgroup); past it the OOM killer ends a function (Lambda's
    /// out-of-memory error), never Kindling. Default: the host's total memory less an eighth
    /// (at least 1 GiB, at most half) left to the host. 0: no node-wide cap.
    #[arg(long, env = "KINDLING_MAX_MEMORY")]
    pub max_memory: Option<u64>,
    /// Open API connections at once. One beyond it closes the connection idle the longest
    /// (waiting for a first request, or between requests); it waits to be accepted only while
    /// every connection has a request in progress.
    #[arg(long, env = "KINDLING_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Open API connections at once from one remote address (loopback clients have no cap
    /// of their own): one beyond it closes that address's connection idle the longest, or is
    /// closed at once when all of them have a request in progress. 0: no cap.
    #[arg(long, env = "KINDLING_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// API requests in progress at once (more get 429).
    #[arg(long, env = "KINDLING_MAX_REQUESTS", default_value_t = 2048)]
    pub max_requests: usize,
    /// MiB of request bodies buffered at once (requests wait for room).
    #[arg(long, env = "KINDLING_MAX_BODY_MEMORY", default_value_t = 512)]
    pub max_body_memory: usize,
    /// While invocations run, keep idle CPUs polling instead of halting (a 0 µs CPU latency
    /// request through /dev/cpu_dma_latency, root; released 20 ms after the last invocation
    /// started). Costs CPU while busy; on a virtual machine whose idle vCPUs halt it cuts a
    /// warm invoke's latency about threefold (each of its three wake-ups is an exit to the
    /// hypervisor otherwise).
    #[arg(long, env = "KINDLING_CPU_LATENCY_QOS")]
    pub cpu_latency_qos: bool,
    /// Leave the host's cgroup mounts as they are (by default Kindling turns on cgroup v2
    /// `favordynmods` when running namespaced as root: cold starts get 5-20 ms faster).
    #[arg(long, env = "KINDLING_NO_TUNE_CGROUPS")]
    pub no_tune_cgroups: bool,
    /// Execution environments that may be starting at once (default: two per core); further
    /// cold starts wait for a slot, without their Init clock running, and take a warm
    /// environment of their function if one frees up first.
    #[arg(long, env = "KINDLING_MAX_CONCURRENT_COLD_STARTS")]
    pub max_concurrent_cold_starts: Option<usize>,
    /// Namespaces mode: pre-initialized environments kept ready per Python, Node.js and
    /// custom (`provided`) runtime (sandbox built; interpreter and Kindling's bootstrap loaded,
    /// or for a custom runtime a program waiting just before its execve; each serves exactly
    /// one function). A cold start then only attaches the code and imports the handler (or
    /// executes the function's bootstrap). 0 turns this off. A runtime's pool fills from its
    /// first cold start, or from the start with --prewarm-runtimes.
    #[arg(long, env = "KINDLING_PREWARM", default_value_t = 2)]
    pub prewarm: usize,
    /// Runtimes (comma-separated, e.g. `python3.12,nodejs20.x`) whose pre-initialized
    /// environments are started with the server rather than at their first cold start.
    #[arg(long, env = "KINDLING_PREWARM_RUNTIMES", value_delimiter = ',')]
    pub prewarm_runtimes: Vec<String>,
    /// Seconds an invocation may wait for a cold-start slot or a warm environment before it
    /// is throttled (429 TooManyRequestsException, FunctionInvocationRateLimitExceeded).
    #[arg(long, env = "KINDLING_COLD_START_WAIT_LIMIT", default_value_t = 30.0)]
    pub cold_start_wait_limit: f64,
    /// Largest streamed response (InvokeWithResponseStream, RESPONSE_STREAM function URLs;
    /// Lambda: 200 MB): past it the stream ends with `Function.ResponseSizeTooLarge`.
    #[arg(long, env = "KINDLING_MAX_STREAM_SIZE", default_value = "200MiB", value_parser = parse_size)]
    pub max_stream_size: u64,
    /// Bandwidth of a streamed response past its first 6 MiB (Lambda: 2 MB/s), in bytes per
    /// second with the units of sizes (`2MiB`); 0: uncapped.
    #[arg(long, env = "KINDLING_STREAM_BANDWIDTH", default_value = "2MiB", value_parser = parse_size)]
    pub stream_bandwidth: u64,
    /// Async worker threads (default: one per core, one on hosts with two cores or fewer).
    #[arg(long, env = "KINDLING_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Seconds in-flight invocations may finish after SIGTERM/SIGINT before they are cut.
    #[arg(long, env = "KINDLING_SHUTDOWN_GRACE", default_value_t = 10.0)]
    pub shutdown_grace: f64,
    /// Most asynchronous events this node runs at once.
    #[arg(long, env = "KINDLING_ASYNC_WORKERS", default_value_t = 64)]
    pub async_workers: usize,
    /// Seconds between a node's heartbeats to the shared database (with `--store
    /// postgres://...`; each heartbeat also looks for dead nodes).
    #[arg(long, env = "KINDLING_NODE_HEARTBEAT_INTERVAL", default_value_t = 1.0)]
    pub node_heartbeat_interval: f64,
    /// Seconds without a heartbeat after which a node is declared dead and its work (leased
    /// events, event source mappings, schedules) taken over. A node that cannot reach the
    /// database stops taking work after half of this.
    #[arg(long, env = "KINDLING_NODE_DEAD_AFTER", default_value_t = 10.0)]
    pub node_dead_after: f64,
    /// Seconds before the 2nd, 3rd... attempt of a failed asynchronous event (Lambda: 60,120).
    #[arg(
        long,
        env = "KINDLING_ASYNC_RETRY_DELAYS",
        value_delimiter = ',',
        default_value = "60,120"
    )]
    pub async_retry_delays: Vec<f64>,
    /// Seconds one "minute" of a SAM DeploymentPreference (Canary10Percent5Minutes,
    /// Linear10PercentEvery1Minute...) lasts while Kindling shifts an alias's traffic. 60 as on
    /// AWS; tests shorten it.
    #[arg(long, env = "KINDLING_TRAFFIC_SHIFT_MINUTE", default_value_t = 60.0, value_parser = parse_positive_seconds)]
    pub traffic_shift_minute: f64,
    /// First backoff in seconds for throttled asynchronous events (doubles up to 5 minutes).
    #[arg(long, env = "KINDLING_ASYNC_BACKOFF_MIN", default_value_t = 1.0)]
    pub async_backoff_min: f64,
    /// Days a log stream is kept after its last line; 0 keeps streams regardless of age.
    #[arg(long, env = "KINDLING_LOG_RETENTION_DAYS", default_value_t = 7.0, value_parser = parse_days)]
    pub log_retention_days: f64,
    /// Most disk space all log streams may take together (`1GiB`, `500MB`, bytes; 0: no limit);
    /// the oldest streams are deleted first. Streams of running environments are never deleted;
    /// one keeps its newest lines, at most a sixteenth of the limit, in its own file and the
    /// sixteenth before in `<stream>-earlier` (which retention may delete); older ones go.
    #[arg(long, env = "KINDLING_LOG_MAX_SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub log_max_size: u64,
    /// Seconds between log retention sweeps (the first runs at start).
    #[arg(long, env = "KINDLING_LOG_SWEEP_INTERVAL", default_value_t = 60.0, value_parser = parse_positive_seconds)]
    pub log_sweep_interval: f64,
    /// Bytes of log streams one FilterLogEvents request reads before it answers a partial
    /// (empty) page whose nextToken resumes the search. A page whose paused search was pushed
    /// out restarts with one budget more than it had read, at most 16 budgets.
    #[arg(long, env = "KINDLING_LOGS_SEARCH_BUDGET", default_value = "64MiB", value_parser = parse_size)]
    pub logs_search_budget: u64,
    /// OpenTelemetry collector to send invocation spans to, over OTLP/HTTP
    /// (`http://host:4318`; requests go to `<url>/v1/traces`). Unset: no spans.
    #[arg(long, env = "KINDLING_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<kindling_otel::Endpoint>,
    /// OTLP/HTTP encoding of exported spans: `http/protobuf` (binary protobuf, the OTel SDKs'
    /// and the Collector's default) or `http/json`.
    #[arg(long, env = "KINDLING_OTLP_PROTOCOL", default_value = "http/protobuf", value_parser = parse_otlp_protocol)]
    pub otlp_protocol: kindling_otel::Encoding,
    /// `service.name` of the exported spans' resource.
    #[arg(long, env = "KINDLING_OTLP_SERVICE_NAME", default_value = "kindling")]
    pub otlp_service_name: String,
    /// Largest object a single S3 PutObject, UploadPart or CopyObject may store (S3: 5GiB).
    #[arg(long, env = "KINDLING_S3_MAX_OBJECT_SIZE", default_value = "5GiB", value_parser = parse_size)]
    pub s3_max_object_size: u64,
    /// Largest object an S3 multipart upload may complete (S3: 5TiB; bounded by the disk).
    #[arg(long, env = "KINDLING_S3_MAX_UPLOAD_SIZE", default_value = "5TiB", value_parser = parse_size)]
    pub s3_max_upload_size: u64,
    /// Largest blob (image layer) the container registry accepts.
    #[arg(long, env = "KINDLING_REGISTRY_MAX_BLOB_SIZE", default_value = "10GiB", value_parser = parse_size)]
    pub registry_max_blob_size: u64,
    /// Most bytes the container registry stores, all repositories together.
    #[arg(long, env = "KINDLING_REGISTRY_MAX_SIZE", default_value = "100GiB", value_parser = parse_size)]
    pub registry_max_size: u64,
    /// Host names under which `<bucket>.<host>` addresses a bucket (virtual-hosted style;
    /// `<bucket>.localhost` and `<bucket>.s3.<anything>` always do). Repeatable.
    #[arg(
        long = "s3-virtual-host",
        env = "KINDLING_S3_VIRTUAL_HOSTS",
        value_delimiter = ','
    )]
    pub s3_virtual_hosts: Vec<String>,
    /// Interpreter for a runtime, e.g. `--runtime python3.12=/usr/bin/python3.12` (repeatable).
    #[arg(long = "runtime", env = "KINDLING_RUNTIMES", value_delimiter = ',', value_parser = parse_runtime)]
    pub runtimes: Vec<(String, PathBuf)>,
    /// A RabbitMQ broker event source mappings may read, `NAME=amqp://USER:PASS@HOST:PORT/VHOST`
    /// (repeatable): a mapping's `EventSourceArn` `arn:aws:mq:<region>:<account>:broker:NAME:<id>`
    /// selects it.
    #[arg(long = "mq-broker", env = "KINDLING_MQ_BROKERS", value_delimiter = ',', value_parser = parse_broker)]
    pub mq_brokers: Vec<(String, String)>,
}

fn parse_pool_size(s: &str) -> Result<u32, String> {
    let max = kindling_store::MAX_POOL_SIZE;
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of connections from 1 to {max}, got {s:?}"
        )),
    }
}

/// A region for ARNs (`arn:aws:lambda:REGION:...`): one the server's own ARN parser accepts
/// back ([`kindling_model::arn::is_region`]), so that a client may pass a `FunctionArn` it was
/// given as a `FunctionName`.
/// The longest region taken: AWS's are under 20 characters; past ~100 the ARNs built from it
/// (a layer version's) pass the 140-character limits of the server's own checks no more.
const MAX_REGION_LEN: usize = 32;

fn parse_region(s: &str) -> Result<String, String> {
    if s.len() <= MAX_REGION_LEN && kindling_model::arn::is_region(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a region like us-east-1 or us-gov-west-1 (two lowercase letters, \
             '-'-separated lowercase words, then '-' and one digit; at most \
             {MAX_REGION_LEN} characters), got {s:?}"
        ))
    }
}

/// An account id for ARNs: 12 digits, as AWS's.
fn parse_account_id(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("expected 12 digits, got {s:?}"))
    }
}

fn parse_days(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        // Up to 100 years, so that the age always fits a Duration.
        Ok(d) if (0.0..=36_500.0).contains(&d) => Ok(d),
        _ => Err(format!(
            "expected a number of days from 0 to 36500, got {s:?}"
        )),
    }
}

/// A host name for `--allowed-host`: `NAME` or `*.NAME`, letters, digits, `-`, `_` and dots,
/// no port; lowercase, without a trailing dot.
pub(crate) fn parse_allowed_host(s: &str) -> Result<String, String> {
    let host = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(host)
    } else {
        Err(format!(
            "expected a host name (NAME or *.NAME, without a port), got {s:?}"
        ))
    }
}

fn parse_positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 * 365.0 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

/// A size in bytes: a plain number, or with a unit `KB`/`MB`/`GB`/`TB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), case-insensitive.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use B, KB, MB, GB, KiB, MiB, GiB...)"
            ));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("expected a size like 1GiB or 500MB, got {s:?}"))?;
    let bytes = n * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(bytes as u64)
}

fn parse_broker(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=amqp://USER:PASS@HOST:PORT/VHOST, got {s:?}"))?;
    let valid_name = !name.is_empty()
        && name.len() <= 50
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(format!(
            "broker name {name:?}: letters, digits, '-' and '_' only"
        ));
    }
    if !url.starts_with("amqp://") {
        return Err(format!(
            "broker {name}: expected an amqp:// URL, got {url:?}"
        ));
    }
    Ok((name.to_string(), url.to_string()))
}

fn parse_runtime(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected RUNTIME=PATH, got {s:?}"))?;
    Ok((name.to_string(), PathBuf::from(path)))
}

fn parse_otlp_endpoint(s: &str) -> Result<kindling_otel::Endpoint, String> {
    kindling_otel::Endpoint::parse(s)
}

fn parse_otlp_protocol(s: &str) -> Result<kindling_otel::Encoding, String> {
    kindling_otel::Encoding::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("500mb"), Ok(500_000_000));
        assert!(parse_size("1 furlong").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_days("-1").is_err());
        assert!(parse_positive_seconds("0").is_err());
    }

    #[test]
    fn allowed_hosts_are_names_or_subdomain_patterns() {
        assert_eq!(parse_allowed_host("Kindling."), Ok("kindling".into()));
        assert_eq!(
            parse_allowed_host("*.Dev.Example"),
            Ok("*.dev.example".into())
        );
        for bad in [
            "",
            "*",
            "*.",
            "kindling:9001",
            "a..b",
            "http://x",
            "*.*.x",
            "a b",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions_and_account_ids_fit_in_arns() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "us-isob-east-1",
        ] {
            assert_eq!(parse_region(good), Ok(good.to_string()));
        }
        for bad in [
            "",
            "local",
            "us",
            "us-east",
            "-",
            "us-east-1-",
            "us-east-12",
            "abc-def-1",
            "x1-y-2",
            "us:east-1",
            "US-EAST-1",
            "us/east",
            "us east",
            "us_east_1",
            "ü",
        ] {
            assert!(parse_region(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_account_id("123456789012"), Ok("123456789012".into()));
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "1234:6789012",
        ] {
            assert!(parse_account_id(bad).is_err(), "{bad:?}");
        }
        // Refused by `kindling serve` itself, before anything starts.
        for (flag, value) in [
            ("--region", "us-east-1:x"),
            ("--account-id", "000000000:00"),
        ] {
            let err = Cli::try_parse_from(["kindling", "serve", flag, value]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
            assert!(err.to_string().contains(flag), "{err}");
        }
    }

    /// Review (rev-edge): a region `serve` accepts must give ARNs the server itself accepts
    /// back (a client passing a function's own `FunctionArn` as `FunctionName`).
    #[test]
    fn every_accepted_region_gives_arns_the_server_parses_back() {
        use kindling_model::arn::{ArnContext, FunctionRef};
        for region in [
            "local",
            "us",
            "us-east",
            "-",
            "us-east-1-",
            "abc-def-1",
            "x1-y-2",
        ] {
            if parse_region(region).is_err() {
                continue;
            }
            let arn = ArnContext::new(region, "000000000000").function_arn("f");
            assert!(
                FunctionRef::parse(&arn, false).is_ok(),
                "--region {region:?} accepted, but the server refuses its own ARN {arn}"
            );
        }
    }

    /// Review (rev2): `is_region` has no length bound (the old parser's 64 was dropped), so
    /// `serve` takes a region of any length; the layer version ARNs it then hands out are
    /// refused by its own CreateFunction `Layers` check (1-140 characters) once the region
    /// passes ~100 characters (and its `on.aws` URL hosts need a DNS label of at most 63).
    #[test]
    fn an_accepted_region_is_short_enough_for_the_servers_own_layer_arns() {
        use kindling_model::arn::ArnContext;
        for region in [
            format!("us-{}-1", "a".repeat(100)),
            format!("us-{}-1", "a".repeat(100_000)),
        ] {
            if parse_region(&region).is_err() {
                continue;
            }
            let arn = ArnContext::new(&region, "000000000000").layer_version_arn("l", 1);
            assert!(
                arn.len() <= 140,
                "--region of {} characters accepted, but its layer ARNs ({} characters) fail \
                 CreateFunction's Layers check (at most 140)",
                region.len(),
                arn.len()
            );
        }
    }

    #[test]
    fn pool_sizes_are_bounded() {
        assert_eq!(parse_pool_size("4"), Ok(4));
        assert_eq!(parse_pool_size("1000"), Ok(1000));
        for bad in ["0", "1001", "-1", "many", ""] {
            let err = parse_pool_size(bad).unwrap_err();
            assert!(err.contains("from 1 to 1000"), "{bad}: {err}");
        }
    }
}
