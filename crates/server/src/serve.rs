//! `kindling serve`: opens the state, builds the API and serves it until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kindling_api::{ApiAuth, ApiState, AuthPolicy, FunctionAccess, normalize_path, router};
use kindling_control::{ControlConfig, ControlPlane};
use kindling_edge::{ServiceId, Services};
use kindling_events::{AsyncInvoker, EventsConfig};
use kindling_model::ArnContext;
use kindling_objects::{Objects, ObjectsConfig};
use kindling_store::{BlobStore, PgStore, QueueStore, SqliteStore, Store};
use tower::Layer;

use kindling_sandbox::{IsolationMode, NetworkMode, Sandbox, SandboxConfig, TmpBacking};
use kindling_scheduler::{
    ConnectionBudget, CredentialsProvider, LogRetention, LogStore, RuntimeLocator, RuntimePaths,
    Scheduler, SchedulerConfig, ServiceEndpoint, StreamLimits, UserRange,
};

use crate::cli::{FunctionApiAccess, Isolation, ServeArgs, StoreLocation};
use crate::code_source::S3CodeSource;
use crate::stores::ServiceStores;
use crate::{
    apigateway, cluster, deploy, host_limits, logs_api, messaging, observe, runtime_files, secret,
};

/// The node-wide caps handed to the sandbox (Namespaces mode).
#[derive(Debug, Clone, Copy)]
struct NodeCaps {
    max_processes: Option<u64>,
    max_memory_bytes: Option<u64>,
}

/// How long the credentials given to an execution environment stay valid. Environments are
/// not recycled on a schedule, so this outlives any realistic environment; changing the
/// server secret (`<data-dir>/auth-secret`) revokes them all.
const FUNCTION_CREDENTIALS_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    let room = open_file_limit(&args);
    args.max_environments = host_limits::flag_cap(args.max_environments, || {
        room.and_then(|r| usize::try_from(r.environments).ok())
    });
    // The Runtime API connections environments hold beyond their guaranteed few, together:
    // what the environments allowed leave of the open-file limit.
    let connections = Arc::new(room.map_or_else(ConnectionBudget::unlimited, |r| {
        let shared = r
            .files
            .shared_connections(r.reserved, args.max_environments.map(|n| n as u64));
        tracing::info!(
            shared,
            guaranteed = ConnectionBudget::GUARANTEED,
            "runtime api connections beyond each environment's own"
        );
        if shared < ConnectionBudget::MAX_PER_ENVIRONMENT as u64 {
            // Connections beyond an environment's own few are then refused (closed unanswered):
            // a runtime with several extensions may need them.
            tracing::warn!(
                shared,
                limit = r.files.now,
                max_environments = args.max_environments,
                "the open-file limit leaves few Runtime API connections beyond each \
                 environment's own; raise the limit (`ulimit -Hn`) or lower --max-environments"
            );
        }
        ConnectionBudget::new(usize::try_from(shared).unwrap_or(usize::MAX))
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(args.worker_threads))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, connections))
}

/// What the open-file limit leaves room for.
#[derive(Debug, Clone, Copy)]
struct Room {
    files: crate::open_files::OpenFiles,
    /// Descriptors kept for client connections, the store, log files and the like.
    reserved: u64,
    /// Environments that fit (at least one).
    environments: u64,
}

/// Raises the open-file limit (before any thread exists) and says how many environments it
/// leaves room for.
fn open_file_limit(args: &ServeArgs) -> Option<Room> {
    match crate::open_files::raise() {
        Ok(files) => {
            // Client connections (at most a quarter of the limit), plus the store, log files
            // and the like.
            let reserved = (args.max_connections as u64).min(files.now / 4) + 256;
            let environments = files.environments(reserved).max(1);
            tracing::info!(
                limit = files.now,
                raised_from = files.before,
                environments,
                "open-file limit"
            );
            if environments < 256 && args.max_environments.is_none() {
                tracing::warn!(
                    limit = files.now,
                    hard = files.hard,
                    environments,
                    "the open-file limit leaves room for few execution environments; raise the \
                     hard limit (`ulimit -Hn`, systemd's LimitNOFILE=)"
                );
            }
            Some(Room {
                files,
                reserved,
                environments,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            None
        }
    }
}

/// Async worker threads: as asked, else one per core — but one on a host with two cores or
/// fewer, where the functions' runtimes need the other core and cross-thread wake-ups of an
/// invocation's steps cost more than they parallelize (measured in benches/; again at 4 and 16
/// clients in benches/results/warm-x16-2026-12-07.txt: two workers cost 36-53 us of server CPU
/// per single-client invoke and were not ahead at 4 clients).
fn worker_threads(asked: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    asked
        .filter(|n| *n > 0)
        .unwrap_or(if cores <= 2 { 1 } else { cores })
}

async fn serve(mut args: ServeArgs, connections: Arc<ConnectionBudget>) -> anyhow::Result<()> {
    validate(&args)?;
    private_data_dir(&args.data_dir)?;
    // Every path handed to environments (task root, runtime, /tmp) must be absolute: resolve
    // the data dir once, here, so a relative `--data-dir` (the default) works everywhere.
    args.data_dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("resolving data dir {}", args.data_dir.display()))?;
    let sqlite =
        Arc::new(SqliteStore::open(&args.data_dir.join("state.db")).context("opening state")?);
    let shared = shared_store(&args).await?;
    let store: Arc<dyn Store> = match &shared {
        Some(pg) => pg.clone(),
        None => sqlite.clone(),
    };
    let stores = ServiceStores::new(&sqlite, shared.as_ref());
    let queue_store: Arc<dyn QueueStore> = Arc::clone(&stores.queues);
    let queue_metrics_store: Arc<dyn QueueStore> = Arc::clone(&stores.queues);
    let mut blobs = BlobStore::open(args.data_dir.join("code")).context("opening code store")?;
    if let Some(pg) = &shared {
        // Code packages are written through to PostgreSQL and fetched from it by other nodes.
        blobs = blobs.with_shared(pg.clone());
    }
    let objects = object_store(&args, &stores)?;
    let runtime_dir = runtime_files::install(&args.data_dir.join("runtime"))
        .context("installing runtime bootstraps")?;
    kindling_scheduler::sweep_python_bytecode(&runtime_dir);
    let locator = Arc::new(RuntimeLocator::new(RuntimePaths {
        interpreters: args.runtimes.iter().cloned().collect(),
        search_dirs: search_dirs(),
        runtime_dir,
        cache_dir: runtime_cache_dir(&args.data_dir),
    }));
    let registry: Arc<kindling_registry::Storage> = Arc::new(
        kindling_registry::Storage::open(
            &args.data_dir.join("registry"),
            kindling_registry::Limits {
                max_blob: args.registry_max_blob_size,
                max_total: args.registry_max_size,
            },
        )
        .context("opening the container registry")?,
    );
    let control = Arc::new(
        ControlPlane::new(
            Arc::clone(&store),
            blobs,
            ControlConfig {
                arn: ArnContext::new(&args.region, &args.account_id),
                account_concurrency: args.account_concurrency,
                min_unreserved_concurrency: args.min_unreserved_concurrency,
            },
        )
        .with_object_source(Arc::new(S3CodeSource(objects.clone())))
        .with_runtime_support(locator.clone())
        .with_image_source(Arc::new(crate::image_source::RegistryImages(Arc::clone(
            &registry,
        )))),
    );
    // Other nodes' control-plane writes drop this node's caches before they return.
    let _changes = match &shared {
        Some(pg) => Some(listen_changes(pg, &control).await?),
        None => None,
    };
    let node = node_id(&args.data_dir)?;
    let server_secret = secret::load_or_create(&args.data_dir.join("auth-secret"))
        .context("reading the server secret")?;
    let issuer = kindling_auth::SessionIssuer::new(&server_secret);
    let logs = LogStore::new(args.data_dir.join("logs"))
        .with_max_stream_bytes(max_stream_file_bytes(args.log_max_size));
    // Retention policies set through CloudWatch Logs are the groups' age limits.
    let log_groups = logs_api::registry(&logs)?;
    // Its own thread; dropped (stopped) when serve returns.
    let _log_retention = logs
        .spawn_retention(
            log_retention(&args),
            log_groups.clone(),
            Duration::from_secs_f64(args.log_sweep_interval),
        )
        .context("starting log retention")?;
    // Connections to Kindling's API accepted inside environments' own network namespaces.
    let (relay_tx, relay_rx) = tokio::sync::mpsc::channel::<kindling_edge::Relayed>(256);
    // Blocking (namespace probes, cgroup directories, the sweep of dead nodes' cgroups).
    let sandbox = {
        let (isolation, tune, data_dir) =
            (args.isolation, !args.no_tune_cgroups, args.data_dir.clone());
        let caps = NodeCaps {
            max_processes: host_limits::max_processes(args.max_processes),
            max_memory_bytes: host_limits::max_memory_bytes(args.max_memory),
        };
        let node = node.clone();
        tokio::task::spawn_blocking(move || sandbox(isolation, &node, tune, &data_dir, caps))
            .await
            .context("preparing the sandbox")??
    };
    let (scheduler, isolation) = data_plane(
        &args,
        sandbox,
        logs.clone(),
        issuer,
        locator,
        relay_tx,
        connections,
    )
    .context("starting the data plane")?;
    let reaper = scheduler.spawn_reaper(Duration::from_millis(250));
    if args.cpu_latency_qos {
        let scheduler = scheduler.clone();
        crate::cpu_qos::start(move || scheduler.work_started())
            .context("--cpu-latency-qos (needs root and the kernel's PM QoS)")?;
        tracing::info!(
            device = crate::cpu_qos::DEVICE,
            "idle CPUs poll while invocations run (--cpu-latency-qos)"
        );
    }
    if let Some(endpoint) = &args.otlp_endpoint {
        tracing::info!(
            "exporting invocation spans to http://{}:{}{} ({})",
            endpoint.host,
            endpoint.port,
            endpoint.path,
            args.otlp_protocol.content_type()
        );
        scheduler.export_spans(
            endpoint.clone(),
            args.otlp_service_name.clone(),
            args.otlp_protocol,
        );
    }
    let events = AsyncInvoker::new(
        events_config(&args, &node),
        Arc::clone(&store),
        Arc::clone(&control),
        scheduler.clone(),
    )
    .context("starting asynchronous invocation")?;
    // One shutdown signal for everything: the dispatcher stops leasing at once, the API drains
    // in-flight requests for at most the grace period, then in-flight invocations are cut.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // This node's membership (alone with SQLite): heartbeats, fencing, ownership.
    let cluster = cluster::join(&args, &node, stores.nodes.clone(), &scheduler).await?;
    let membership = cluster.start(stopped(stop_rx.clone()));
    {
        let cluster = cluster.clone();
        events.set_lease_gate(Arc::new(move || cluster.healthy()));
    }
    let dispatcher = events.start(stopped(stop_rx.clone()));
    let policy = Arc::new(auth_policy(&args, &server_secret)?);
    let messaging = messaging::start(
        &args,
        queue_store,
        stores.refresh(),
        &events,
        Arc::clone(&policy),
    )
    .await
    .context("starting SQS and SNS")?;
    let mut observed = observe::Observed::new(
        scheduler.clone(),
        events.clone(),
        Arc::clone(&store),
        Arc::clone(&queue_metrics_store),
        kindling_edge::gate::Gate::new(Arc::clone(&policy), "lambda"),
    );
    observed.queue_service = Some(messaging.queues.clone());
    observed.cluster = Some(cluster.clone());
    let apigw = apigateway::service(&args, Arc::clone(&stores.apis), stores.refresh());
    let apis = apigateway::routers(
        Arc::clone(&apigw),
        Arc::clone(&control),
        scheduler.clone(),
        Arc::clone(&policy),
    );
    let front_door = kindling_frontdoor::FrontDoorState {
        control: Arc::clone(&control),
        scheduler: scheduler.clone(),
        gate: kindling_edge::gate::Gate::new(Arc::clone(&policy), "lambda"),
    };
    let function_urls = kindling_frontdoor::router(front_door.clone());
    let mappings = kindling_esm::Mappings::new(
        kindling_esm::EsmConfig {
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            brokers: args.mq_brokers.iter().cloned().collect(),
            ..Default::default()
        },
        Arc::clone(&stores.mappings),
        Arc::clone(&control),
        messaging.queues.clone(),
        scheduler.clone(),
    );
    mappings.set_cluster(cluster.clone());
    let mapping_manager = mappings.start(stopped(stop_rx.clone()));
    {
        // Asynchronous invocations read the same `RecursiveLoop` setting as mappings.
        let settings: Arc<dyn kindling_store::MappingStore> = Arc::clone(&stores.mappings);
        events.set_loop_policy(Arc::new(move |function: &str| {
            settings
                .recursive_loop(function)
                .map_or(true, |v| v.as_deref() != Some("Allow"))
        }));
    }
    let (cloudformation, rules) = deploy::start(
        &args,
        &stores,
        cluster.clone(),
        Arc::clone(&control),
        scheduler.clone(),
        messaging.topics.clone(),
        objects.clone(),
        events.clone(),
        mappings.clone(),
        apigw,
        Arc::clone(&policy),
        stopped(stop_rx.clone()),
    )
    .await?;
    let console = kindling_console::ConsoleState {
        scheduler: scheduler.clone(),
        queues: Arc::clone(&queue_metrics_store),
        events: events.clone(),
        gate: kindling_edge::gate::Gate::new(Arc::clone(&policy), "lambda"),
        region: args.region.clone(),
        account_id: args.account_id.clone(),
    };
    let api_state = ApiState {
        control,
        scheduler: Some(scheduler.clone()),
        events: Some(events),
        esm: Some(mappings),
        auth: Arc::new(ApiAuth::with_policy(Arc::clone(&policy))),
        // Several nodes: synchronous invokes go to warm environments on other nodes.
        routing: cluster
            .is_shared()
            .then(|| Arc::new(kindling_api::Routing::new(cluster.clone()))),
    };
    // Provisioned concurrency survives restarts: its environments are initialized again.
    tokio::spawn({
        let state = api_state.clone();
        async move { kindling_api::restore_provisioned(&state).await }
    });
    let hot_invoke = Arc::new(kindling_api::HotInvoke::new(api_state.clone()));
    let lambda = router(api_state);
    // botocore sends `/2015-03-31/functions/` for ListFunctions: Lambda's paths are matched
    // without their trailing slash (other services' paths, such as S3 keys, keep theirs).
    let lambda = axum::Router::new()
        .fallback_service(tower::util::MapRequestLayer::new(normalize_path).layer(lambda));
    // One endpoint, every service: the dispatch table in `kindling-edge` picks the router.
    let services = Services::new(ServiceId::Lambda, lambda.clone())
        .signatures(Arc::clone(&policy))
        // Kindling's own paths: metrics and health, the web console, the rest
        // (`/_kindling/code/...` downloads) by the Lambda API.
        .mount(
            ServiceId::Kindling,
            observe::router(observed, kindling_console::router(console, lambda)),
        )
        .mount(ServiceId::FunctionUrl, function_urls)
        // The requests that carry the load go below the routers (same handlers).
        .hot(ServiceId::Lambda, hot_invoke)
        .hot(
            ServiceId::FunctionUrl,
            kindling_frontdoor::hot_route(front_door),
        )
        .mount(ServiceId::Sqs, messaging.sqs)
        .mount(ServiceId::Sns, messaging.sns)
        .mount(ServiceId::CloudFormation, cloudformation)
        .mount(
            ServiceId::Events,
            kindling_eventbridge::router(kindling_eventbridge::EventsState {
                cron: rules,
                gate: kindling_edge::gate::Gate::new(Arc::clone(&policy), "events"),
            }),
        )
        .mount(ServiceId::S3, s3_router(&args, &objects, &policy))
        .mount(ServiceId::ApiGateway, apis.v1)
        .mount(ServiceId::ApiGatewayV2, apis.v2)
        .mount(ServiceId::ExecuteApi, apis.execute)
        .mount(
            ServiceId::Logs,
            logs_api::router(&args, logs, log_groups, &policy),
        )
        .mount(
            ServiceId::Registry,
            kindling_registry::router(kindling_registry::RegistryState::new(
                Arc::clone(&registry),
                Arc::clone(&policy),
            )),
        )
        .mount(
            ServiceId::Sts,
            kindling_sts::router(kindling_sts::StsState {
                account_id: args.account_id.clone(),
                gate: kindling_edge::gate::Gate::new(Arc::clone(&policy), "sts"),
            }),
        );

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let edge = edge_config(&args, isolation);
    tracing::info!(
        "Kindling listening on http://{addr} (data dir {}, region {}, account {})",
        args.data_dir.display(),
        args.region,
        args.account_id
    );
    let shutdown = {
        let signal = stopped(stop_rx.clone());
        let scheduler = scheduler.clone();
        let grace = Duration::from_secs_f64(args.shutdown_grace);
        async move {
            signal.await;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                tracing::warn!("shutdown grace period over: abandoning in-flight invocations");
                scheduler.cancel_in_flight();
            });
        }
    };
    // Start-up is done (its store calls ran before anything was served); from here on a
    // store call on an async worker is a bug that the test setting makes fatal.
    PgStore::set_strict_blocking(args.store_strict_blocking);
    kindling_edge::serve_with_relayed(
        listener,
        Some(relay_rx),
        services,
        edge,
        kindling_api::edge_renderer(),
        shutdown,
    )
    .await;
    let _ = dispatcher.await;
    let _ = mapping_manager.await;
    let _ = membership.await;
    reaper.abort();
    scheduler.shutdown().await;
    tracing::info!("Kindling stopped");
    Ok(())
}

/// The PostgreSQL store when `--store postgres://...` names one (connected and migrated on
/// the blocking pool).
async fn shared_store(args: &ServeArgs) -> anyhow::Result<Option<Arc<PgStore>>> {
    let StoreLocation::Postgres(url) = &args.store else {
        return Ok(None);
    };
    let url = url.clone();
    let pool_size = args.store_pool_size;
    let pg = tokio::task::spawn_blocking(move || PgStore::connect_with_pool(&url, pool_size))
        .await
        .context("connecting to PostgreSQL")?
        .context("opening the PostgreSQL store")?;
    tracing::info!("control-plane state in PostgreSQL (shared with every node of its database)");
    Ok(Some(Arc::new(pg)))
}

/// Starts the listener that tells this node's control plane about every node's writes.
async fn listen_changes(
    pg: &Arc<PgStore>,
    control: &Arc<ControlPlane>,
) -> anyhow::Result<kindling_store::ChangeListener> {
    let pg = Arc::clone(pg);
    let control = Arc::downgrade(control);
    tokio::task::spawn_blocking(move || {
        pg.listen_changes(move |change| {
            if let Some(control) = control.upgrade() {
                control.on_store_change(change);
            }
        })
    })
    .await
    .context("starting the change listener")?
    .context("listening for control-plane changes")
}

/// The sandbox the isolation setting asks for (`auto` falls back to plain processes).
/// Turns on `favordynmods` on the host's cgroup v2 mounts (root only, namespaces isolation).
/// It swaps the kernel's per-CPU lock that every cgroup attach must take (an RCU grace period,
/// 5-20 ms here, on each cold start) for a plain one: attaching the program to its cgroup drops
/// to tens of microseconds, at a small cost to fork/exit elsewhere on the host. The flag is
/// global to the kernel, so one v2 mount is enough even on hosts whose controllers are v1.
fn tune_cgroups() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, path, "cgroup2", options, ..] = fields.as_slice() else {
            continue;
        };
        if options.split(',').any(|o| o == "favordynmods") {
            return;
        }
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,favordynmods", path])
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => {
                tracing::info!(
                    mount = path,
                    "enabled cgroup favordynmods (faster cold starts)"
                );
                return;
            }
            _ => tracing::debug!(mount = path, "could not enable cgroup favordynmods"),
        }
    }
}

/// Each node keeps its environments' cgroups under `kindling/<node>` and holds the lock
/// `/run/kindling/nodes/<node>.lock` while it runs, so that at start it removes what a killed
/// predecessor of any node left (data dir reused or not), never touching a live node's.
fn sandbox(
    isolation: Isolation,
    node: &str,
    tune: bool,
    data_dir: &std::path::Path,
    caps: NodeCaps,
) -> anyhow::Result<Sandbox> {
    host_limits::protect_self_from_oom_killer();
    let config = SandboxConfig {
        max_processes: caps.max_processes,
        max_memory_bytes: caps.max_memory_bytes,
        cgroup_parent: PathBuf::from("kindling").join(node),
        node_lock_dir: Some(PathBuf::from(NODE_LOCKS)),
        // A fresh ext4 of EphemeralStorage's size per environment, on disk (not counted as the
        // function's memory; ENOSPC at the size); a tmpfs if loop devices are unavailable.
        tmp: TmpBacking::Disk,
        tmp_image_dir: data_dir.join("tmp-images"),
        ..SandboxConfig::default()
    };
    let namespaces = |network| Sandbox::new(IsolationMode::Namespaces { network }, config.clone());
    if isolation != Isolation::Process && tune && nix::unistd::geteuid().is_root() {
        tune_cgroups();
    }
    let sandbox = match isolation {
        Isolation::Process => Sandbox::process(),
        Isolation::Namespaces => namespaces(NetworkMode::Host).context("namespaces isolation")?,
        Isolation::NamespacesNoNetwork => {
            namespaces(NetworkMode::None).context("namespaces isolation")?
        }
        Isolation::Auto => match namespaces(NetworkMode::Host) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "namespace isolation unavailable; execution environments run as plain processes"
                );
                Sandbox::process()
            }
        },
    };
    let namespaced = sandbox.mode() != IsolationMode::Process;
    tracing::info!(
        mode = ?sandbox.mode(),
        tmp = ?sandbox.config().tmp,
        max_processes = namespaced.then_some(caps.max_processes).flatten(),
        max_memory_mib = namespaced.then_some(caps.max_memory_bytes).flatten().map(|b| b >> 20),
        "execution environment isolation"
    );
    Ok(sandbox)
}

/// Directories searched for interpreters: `PATH` (without pyenv shims), then the usual places.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        let versions = PathBuf::from(home).join(".pyenv/versions");
        if let Ok(entries) = std::fs::read_dir(versions) {
            dirs.extend(entries.flatten().map(|e| e.path().join("bin")));
        }
    }
    dirs
}

/// The S3-compatible object store: metadata in the state database, bytes under
/// `<data-dir>/s3` (with a shared store: in the database, the files being this node's cache).
/// Files a crash left unreferenced are swept on a thread of their own; with a shared store,
/// every hour too (cached files of objects other nodes deleted).
fn object_store(args: &ServeArgs, stores: &ServiceStores) -> anyhow::Result<Objects> {
    let started = std::time::SystemTime::now();
    let objects = Objects::open_with(
        Arc::clone(&stores.objects),
        &args.data_dir.join("s3"),
        ObjectsConfig {
            region: args.region.clone(),
            max_object_size: args.s3_max_object_size,
            max_multipart_size: args.s3_max_upload_size,
            ..ObjectsConfig::default()
        },
        stores.object_bytes.clone(),
    )
    .context("opening the object store")?;
    let sweeper = objects.clone();
    std::thread::Builder::new()
        .name("s3-sweep".into())
        .spawn(move || {
            let mut before = started;
            loop {
                match sweeper.sweep_blocking(before) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(files = n, "removed object files no object refers to"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep object files"),
                }
                if !sweeper.is_shared() {
                    return;
                }
                std::thread::sleep(SHARED_SWEEP_EVERY);
                // Files written in the last minutes may belong to a write not committed yet.
                before = std::time::SystemTime::now() - SHARED_SWEEP_EVERY / 6;
            }
        })
        .context("starting the object file sweep")?;
    Ok(objects)
}

/// How often a node sharing its store sweeps its cache of object files.
const SHARED_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The S3 API over the object store, behind the shared authentication policy.
fn s3_router(args: &ServeArgs, objects: &Objects, policy: &Arc<AuthPolicy>) -> axum::Router {
    kindling_s3::router(kindling_s3::S3State {
        objects: objects.clone(),
        config: Arc::new(kindling_s3::S3Config {
            hosts: kindling_s3::Hosts {
                base: args.s3_virtual_hosts.clone(),
            },
            body_idle_timeout: Duration::from_secs_f64(args.body_timeout),
        }),
        auth: Arc::new(kindling_s3::S3Auth::new(Arc::clone(policy))),
    })
}

/// Liveness locks of the nodes running on this host (see [`sandbox`]).
const NODE_LOCKS: &str = "/run/kindling/nodes";

/// Lock files of the environment user ids in use, shared by every Kindling process of the host.
const ENV_UID_LOCKS: &str = "/run/kindling-uids";

/// The authentication every service shares: the operators' keys (shared mode), functions'
/// credentials and what functions may do.
fn auth_policy(args: &ServeArgs, server_secret: &[u8]) -> anyhow::Result<AuthPolicy> {
    let mut policy = match &args.credentials {
        Some(path) => {
            let credentials = kindling_auth::Credentials::from_file(path)
                .with_context(|| format!("reading credentials {}", path.display()))?;
            tracing::info!(keys = credentials.len(), "SigV4 verification on");
            AuthPolicy::new(credentials, true, server_secret, &args.region)
        }
        None => AuthPolicy::local(server_secret, &args.region),
    };
    policy.function_access = match args.function_api_access {
        FunctionApiAccess::Invoke => FunctionAccess::Invoke,
        FunctionApiAccess::Read => FunctionAccess::Read,
        FunctionApiAccess::Full => FunctionAccess::Full,
    };
    policy.admin_roles.clone_from(&args.admin_roles);
    // The names buckets are addressed under are Kindling's names too.
    policy.allowed_hosts = args.allowed_hosts.clone();
    // Only well-formed names (an empty one would allow every name ending in a dot).
    for base in &args.s3_virtual_hosts {
        match crate::cli::parse_allowed_host(base) {
            Ok(base) if !base.starts_with("*.") => {
                policy.allowed_hosts.push(format!("*.{base}"));
                policy.allowed_hosts.push(base);
            }
            _ => tracing::warn!(
                name = %base,
                "--s3-virtual-host is not a host name: requests addressed to it are refused in \
                 local mode"
            ),
        }
    }
    Ok(policy)
}

/// The listener's limits, and which users' connections come from execution environments:
/// namespaced environments sharing the host's network run as users of the environment range
/// (or all as the sandbox user); in Process mode they run as Kindling's own user and cannot
/// be told apart, and without a network they cannot reach the API at all.
fn edge_config(args: &ServeArgs, isolation: IsolationMode) -> kindling_edge::EdgeConfig {
    let environment_uids = match isolation {
        IsolationMode::Namespaces {
            network: NetworkMode::Host,
        } => Some(if args.env_uid_count > 0 {
            args.env_uid_base..=args.env_uid_base.saturating_add(args.env_uid_count - 1)
        } else {
            let uid = SandboxConfig::default().uid;
            uid..=uid
        }),
        _ => None,
    };
    kindling_edge::EdgeConfig {
        header_read_timeout: Duration::from_secs_f64(args.header_timeout),
        body_idle_timeout: Duration::from_secs_f64(args.body_timeout),
        body_min_rate: args.body_min_rate,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        max_requests: args.max_requests,
        max_body_memory: args.max_body_memory.saturating_mul(1024 * 1024),
        environment_uids,
        // S3's HeadBucket and HeadObject, function URLs and API routes (the function
        // answers), the registry's blob and manifest checks; every other HEAD is refused by
        // the edge.
        head_services: vec![
            ServiceId::S3,
            ServiceId::FunctionUrl,
            ServiceId::ExecuteApi,
            ServiceId::Registry,
        ],
        ..kindling_edge::EdgeConfig::default()
    }
}

/// The size at which an environment's log stream starts a new file (its full one set aside,
/// replacing the one before): a sixteenth of `--log-max-size`, at least 1 MiB, so a stream
/// that retention may not delete (its environment runs) takes at most an eighth of the limit,
/// however much its function writes. `None` without a size limit.
fn max_stream_file_bytes(log_max_size: u64) -> Option<u64> {
    (log_max_size > 0).then(|| (log_max_size / 16).max(1 << 20))
}

/// The server-wide log retention (`0` turns a limit off).
fn log_retention(args: &ServeArgs) -> LogRetention {
    LogRetention {
        max_age: (args.log_retention_days > 0.0)
            .then(|| Duration::from_secs_f64(args.log_retention_days * 86_400.0)),
        max_total_bytes: (args.log_max_size > 0).then_some(args.log_max_size),
    }
}

fn data_plane(
    args: &ServeArgs,
    sandbox: Sandbox,
    logs: LogStore,
    issuer: kindling_auth::SessionIssuer,
    locator: Arc<RuntimeLocator>,
    relay: tokio::sync::mpsc::Sender<kindling_edge::Relayed>,
    runtime_api_connections: Arc<ConnectionBudget>,
) -> anyhow::Result<(Scheduler, IsolationMode)> {
    let runtime_dir = args.data_dir.join("runtime");
    let config = SchedulerConfig {
        work_dir: args.data_dir.join("run"),
        runtime_dir,
        region: args.region.clone(),
        account_id: args.account_id.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        init_timeout: Duration::from_secs(10),
        readonly_host_paths: ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"]
            .map(PathBuf::from)
            .to_vec(),
        credentials: function_credentials(issuer),
        freeze_after: Some(Duration::from_millis(500)),
        environment_users: (args.env_uid_count > 0).then(|| UserRange {
            first: args.env_uid_base,
            count: args.env_uid_count,
            lock_dir: Some(PathBuf::from(ENV_UID_LOCKS)),
        }),
        max_concurrent_cold_starts: args
            .max_concurrent_cold_starts
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                SchedulerConfig::cold_starts_for_cores(cores)
            }),
        cold_start_wait_limit: Duration::from_secs_f64(args.cold_start_wait_limit),
        endpoint: Some(service_endpoint(args.listen, relay)),
        stream_limits: StreamLimits {
            max_bytes: args.max_stream_size,
            burst_bytes: kindling_scheduler::DEFAULT_STREAM_BURST_BYTES,
            bytes_per_second: (args.stream_bandwidth > 0).then_some(args.stream_bandwidth),
        },
        prewarm_per_runtime: args.prewarm,
        prewarm_runtimes: args.prewarm_runtimes.clone(),
        max_environments: args.max_environments,
        runtime_api_connections,
    };
    let mode = sandbox.mode();
    Ok((Scheduler::new(config, sandbox, locator, logs)?, mode))
}

/// Kindling's API as environments reach it: `AWS_ENDPOINT_URL` (the listen address, loopback
/// when it listens on every address), and the relay of connections made inside environments'
/// own network namespaces, which the edge serves as theirs (signatures required).
fn service_endpoint(
    listen: std::net::SocketAddr,
    relay: tokio::sync::mpsc::Sender<kindling_edge::Relayed>,
) -> ServiceEndpoint {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    ServiceEndpoint {
        host_url: format!("http://{}", std::net::SocketAddr::new(ip, listen.port())),
        port: listen.port(),
        relay: Arc::new(move |stream, uid| {
            let origin = kindling_edge::Origin::Environment { uid };
            if relay.try_send((stream, origin)).is_err() {
                tracing::warn!(
                    uid,
                    "API relay queue full; a function's connection was dropped"
                );
            }
        }),
    }
}

/// Where one-off runtime builds (Kindling's compiled Java runtime and its class-data-sharing
/// archives) live: `/var/cache/kindling` when Kindling may write there (shared by every data
/// directory: entries are keyed by source and JDK), else `<data-dir>/runtime-cache`. The
/// directory appears inside sandboxes at the same path (a CDS archive is only valid for the
/// jar path it was made with), so it must not be under `/tmp`, which sandboxes replace.
fn runtime_cache_dir(data_dir: &std::path::Path) -> PathBuf {
    let shared = PathBuf::from("/var/cache/kindling");
    let writable = std::fs::create_dir_all(&shared).is_ok() && tempfile_probe(&shared);
    if writable {
        shared
    } else {
        data_dir.join("runtime-cache")
    }
}

/// True when a file can be created in `dir`.
fn tempfile_probe(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Each environment gets session credentials of its own function and role, as Lambda gives
/// its execution role's.
fn function_credentials(issuer: kindling_auth::SessionIssuer) -> CredentialsProvider {
    CredentialsProvider::new(move |function_arn, role_arn| {
        match issuer.mint(
            function_arn,
            role_arn,
            std::time::SystemTime::now(),
            FUNCTION_CREDENTIALS_LIFETIME,
        ) {
            Ok(c) => vec![
                ("AWS_ACCESS_KEY_ID".into(), c.access_key_id),
                ("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key),
                ("AWS_SESSION_TOKEN".into(), c.session_token),
            ],
            Err(e) => {
                tracing::error!(error = %e, function_arn, "no credentials for the environment");
                Vec::new()
            }
        }
    })
}

/// Creates the data dir, or tightens an existing one, so that only Kindling's user can enter
/// it: it holds the state, every package (zipped and unpacked) and the logs. Environments see
/// their code only through their bind mounts, made by root before they drop privileges.
fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading data dir {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("making data dir {} private", dir.display()))?;
        tracing::info!(
            "data dir {} was open to other users (mode {:o}); now {:o}",
            dir.display(),
            mode & 0o777,
            mode & 0o700
        );
    }
    Ok(())
}

/// This node's stable name: generated once and kept in the data dir, so that after a crash the
/// node releases the leases it held.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn events_config(args: &ServeArgs, node: &str) -> EventsConfig {
    EventsConfig {
        node_id: node.to_string(),
        workers: args.async_workers,
        retry_delays: args
            .async_retry_delays
            .iter()
            .map(|s| Duration::from_secs_f64(*s))
            .collect(),
        backoff_min: Duration::from_secs_f64(args.async_backoff_min),
        ..EventsConfig::default()
    }
}

fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    cluster::validate(args)?;
    anyhow::ensure!(
        !args.shared || args.credentials.is_some(),
        "--shared requires --credentials FILE: a shared server verifies every request's signature"
    );
    anyhow::ensure!(
        args.cold_start_wait_limit > 0.0 && args.cold_start_wait_limit <= 3600.0,
        "--cold-start-wait-limit must be more than 0 and at most 3600 seconds"
    );
    anyhow::ensure!(
        args.max_stream_size > 0,
        "--max-stream-size must be more than 0"
    );
    anyhow::ensure!(
        args.min_unreserved_concurrency <= args.account_concurrency,
        "--min-unreserved-concurrency exceeds --account-concurrency"
    );
    if args.env_uid_count > 0 {
        UserRange {
            first: args.env_uid_base,
            count: args.env_uid_count,
            lock_dir: None,
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("--env-uid-base/--env-uid-count: {e}"))?;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
