//! `kindling serve`: opens the state, builds the API and serves it until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::ServiceExt;
use axum::serve::ListenerExt;
use kindling_api::{ApiState, normalize_path, router};
use kindling_control::{ControlConfig, ControlPlane};
use kindling_events::{AsyncInvoker, EventsConfig};
use kindling_model::ArnContext;
use kindling_store::{BlobStore, SqliteStore, Store};
use tower::Layer;

use kindling_sandbox::{IsolationMode, NetworkMode, Sandbox, SandboxConfig, TmpBacking};
use kindling_scheduler::{
    LogStore, RuntimeLocator, RuntimePaths, Scheduler, SchedulerConfig, UserRange,
};

use crate::cli::{Isolation, ServeArgs};
use crate::runtime_files;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(args.worker_threads))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

/// Async worker threads: as asked, else one per core — but one on a host with two cores or
/// fewer, where the functions' runtimes need the other core and cross-thread wake-ups of an
/// invocation's steps cost more than they parallelize (measured in benches/).
fn worker_threads(asked: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    asked
        .filter(|n| *n > 0)
        .unwrap_or(if cores <= 2 { 1 } else { cores })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    validate(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&args.data_dir.join("state.db")).context("opening state")?);
    let blobs = BlobStore::open(args.data_dir.join("code")).context("opening code store")?;
    let control = Arc::new(ControlPlane::new(
        Arc::clone(&store),
        blobs,
        ControlConfig {
            arn: ArnContext::new(&args.region, &args.account_id),
            account_concurrency: args.account_concurrency,
            min_unreserved_concurrency: args.min_unreserved_concurrency,
        },
    ));
    let node = node_id(&args.data_dir)?;
    let scheduler = data_plane(&args, &node).context("starting the data plane")?;
    let reaper = scheduler.spawn_reaper(Duration::from_millis(250));
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
    let dispatcher = events.start(stopped(stop_rx.clone()));
    let auth = match &args.credentials {
        Some(path) => {
            let credentials = kindling_auth::Credentials::from_file(path)
                .with_context(|| format!("reading credentials {}", path.display()))?;
            tracing::info!(keys = credentials.len(), "SigV4 verification on");
            Some(Arc::new(
                kindling_auth::Verifier::new(credentials).with_region(args.region.clone()),
            ))
        }
        None => None,
    };
    let app = router(ApiState {
        control,
        scheduler: Some(scheduler.clone()),
        events: Some(events),
        auth,
    });
    let app = tower::util::MapRequestLayer::new(normalize_path).layer(app);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    tracing::info!(
        "Kindling listening on http://{addr} (data dir {}, region {}, account {})",
        args.data_dir.display(),
        args.region,
        args.account_id
    );
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown({
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
        })
        .await
        .context("serving")?;
    let _ = dispatcher.await;
    reaper.abort();
    scheduler.shutdown().await;
    tracing::info!("Kindling stopped");
    Ok(())
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

/// Each node keeps its environments' cgroups under `kindling/<node>`, so that at start it can
/// remove what a killed predecessor left without touching other nodes on the same host.
fn sandbox(
    isolation: Isolation,
    node: &str,
    tune: bool,
    data_dir: &std::path::Path,
) -> anyhow::Result<Sandbox> {
    let config = SandboxConfig {
        cgroup_parent: PathBuf::from("kindling").join(node),
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
    tracing::info!(mode = ?sandbox.mode(), tmp = ?sandbox.config().tmp, "execution environment isolation");
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

/// Lock files of the environment user ids in use, shared by every Kindling process of the host.
const ENV_UID_LOCKS: &str = "/run/kindling-uids";

fn data_plane(args: &ServeArgs, node: &str) -> anyhow::Result<Scheduler> {
    let runtime_dir = runtime_files::install(&args.data_dir.join("runtime"))
        .context("installing runtime bootstraps")?;
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
        credentials: vec![
            ("AWS_ACCESS_KEY_ID".into(), "KINDLINGLOCALKEY0000".into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                "kindling-local-secret".into(),
            ),
            ("AWS_SESSION_TOKEN".into(), "kindling-local-session".into()),
        ],
        freeze_after: Some(Duration::from_millis(500)),
        environment_users: (args.env_uid_count > 0).then(|| UserRange {
            first: args.env_uid_base,
            count: args.env_uid_count,
            lock_dir: Some(PathBuf::from(ENV_UID_LOCKS)),
        }),
    };
    let locator = RuntimeLocator::new(RuntimePaths {
        interpreters: args.runtimes.iter().cloned().collect(),
        search_dirs: search_dirs(),
    });
    let logs = LogStore::new(args.data_dir.join("logs"));
    Ok(Scheduler::new(
        config,
        sandbox(args.isolation, node, !args.no_tune_cgroups, &args.data_dir)?,
        locator,
        logs,
    )?)
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
    anyhow::ensure!(
        !args.shared || args.credentials.is_some(),
        "--shared requires --credentials FILE: a shared server verifies every request's signature"
    );
    anyhow::ensure!(
        args.account_id.len() == 12 && args.account_id.bytes().all(|b| b.is_ascii_digit()),
        "--account-id must be 12 digits, got {:?}",
        args.account_id
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
