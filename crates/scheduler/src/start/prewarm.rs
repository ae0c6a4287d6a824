//! Pre-initialized environments: per runtime, a few environments whose sandbox is built and
//! whose interpreter has started and loaded Kindling's bootstrap, waiting to learn which
//! function they run. A cold start of an eligible function takes one, attaches the function's
//! code, sets its limits and hands it the function's environment variables; the runtime then
//! only imports the handler. Each is used for exactly one function and never returns here.
//!
//! What a pre-initialized environment has of its own from the start: its namespaces (mount,
//! PID, IPC, UTS, network), its cgroup, its user id, its `/tmp`, its Runtime API listener and
//! its interpreter process. What it gets at the claim: the code at `/var/task` and layers at
//! `/opt` (read-only mounts attached by its supervisor), the memory limit, the environment
//! variables, the Runtime API's function settings. See docs/ARCHITECTURE.md.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kindling_model::invoke::FunctionError;
use kindling_model::runtime::{RuntimeFamily, family};
use kindling_runtime_api::{RuntimeApi, RuntimeApiConfig, TelemetryNetwork};
use kindling_sandbox::{BindMount, Environment, EnvironmentSlot, EnvironmentSpec, LateExec};

use super::prepare::Prepared;
use super::{
    MAX_RESPONSE_BYTES, RUNTIME_API_PORT, Spawned, StartJob, StartResult, Starter,
    endpoint_port_inside, log_init_start, pump_output,
};
use crate::env::Tree;
use crate::error::SchedulerError;
use crate::launch::{self, Inside, Launch};
use crate::users::UserLease;

/// Environments a pre-initialized one leaves free under `max_environments`.
const PREWARM_SPARE: usize = 2;

/// `/tmp` size of a pre-initialized environment: Lambda's default `EphemeralStorage`. A
/// function asking for another size gets the ordinary cold start.
pub(super) const PREWARM_TMP_MB: u32 = 512;
/// Memory limit while waiting (the interpreter needs ~10-30 MB); the function's own limit is
/// set at the claim.
const WAITING_MEMORY_MB: u32 = 128;
/// Bytes reserved in a waiting process's initial environment for the function's (Lambda
/// caps a function's own variables at 4 KB; Kindling's and the credentials add ~3 KB).
const ENV_ROOM: usize = 16 * 1024;
/// The descriptor at which the bootstrap waits for the function's environment.
const IDENTITY_FD: &str = "3";
/// How long after a claimed environment's Init its pool starts a replacement: its first
/// invocation, which follows at once, is usually over by then.
const REFILL_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// One environment waiting for its function.
pub(super) struct Prewarmed {
    pub id: String,
    pub sandbox: Environment,
    pub user: Option<UserLease>,
    /// The Runtime API's listener (inside the environment's network namespace, or on the
    /// host's loopback) and, with a namespace, the listener for Kindling's API.
    pub listener: std::net::TcpListener,
    pub endpoint_listener: Option<std::net::TcpListener>,
    /// Write end of the pipe Kindling's bootstrap reads its identity from; closing it ends
    /// the message. `None` for a custom runtime, whose program is executed at the claim.
    pub identity: Option<std::fs::File>,
    /// The environment shares the host's network (its Runtime API admits only its user).
    pub shares_host_network: bool,
    /// How its Telemetry API subscribers are reached (inside its network namespace, if any).
    pub telemetry_network: TelemetryNetwork,
    pub tmp_dir: PathBuf,
    /// What runs in it (compared with what the function's cold start would run); `None`
    /// for a custom runtime, whose program waits before its `execve` for the function's
    /// `bootstrap`.
    pub launch: Option<Launch>,
    /// The variables it started with that its process took in at its start (the dynamic
    /// linker's and the locale's); a function must agree with them to use it.
    pub startup_env: Vec<(String, String)>,
}

/// The function's environment variables as the bootstrap reads them: `KEY=VALUE` entries,
/// each ended by a NUL byte.
pub(super) fn encode_identity(env: &[(String, String)]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4096);
    for (k, v) in env {
        data.extend_from_slice(k.as_bytes());
        data.push(b'=');
        data.extend_from_slice(v.as_bytes());
        data.push(0);
    }
    data
}

/// Writes the function's environment to the waiting bootstrap's pipe and closes it, on the
/// async runtime (the pipe is made non-blocking: a message larger than the pipe's buffer waits
/// for the bootstrap to read, without holding a thread).
async fn deliver_identity(identity: std::fs::File, data: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut pipe = tokio::net::unix::pipe::Sender::from_file(identity)?;
    pipe.write_all(data).await
}

/// The ready environments, per runtime, and how many are being started.
#[derive(Default)]
pub(crate) struct PrewarmPool {
    slots: Mutex<HashMap<String, Slot>>,
    /// Set at shutdown: nothing more is started or kept.
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Slot {
    ready: VecDeque<Box<Prewarmed>>,
    starting: usize,
}

impl PrewarmPool {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shutdown: no more environments are started, and the waiting ones are ended (each
    /// killed, waited for, its user id given back once it is gone).
    pub(crate) async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let waiting: Vec<Box<Prewarmed>> = self
            .slots()
            .values_mut()
            .flat_map(|slot| slot.ready.drain(..))
            .collect();
        for p in &waiting {
            p.sandbox.kill();
        }
        for p in waiting {
            let _ = p.sandbox.wait().await;
            drop(p);
        }
    }

    /// Ends one ready environment (of the runtime with the most ready) to make room for
    /// others: killed and waited for. False when none is ready.
    pub(crate) async fn retire_one(&self) -> bool {
        let taken = {
            let mut slots = self.slots();
            slots
                .values_mut()
                .filter(|slot| !slot.ready.is_empty())
                .max_by_key(|slot| slot.ready.len())
                .and_then(|slot| slot.ready.pop_front())
        };
        let Some(p) = taken else {
            return false;
        };
        p.sandbox.kill();
        let _ = p.sandbox.wait().await;
        drop(p);
        true
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A live ready environment of `runtime`, oldest first.
    fn take(&self, runtime: &str) -> Option<Box<Prewarmed>> {
        let mut slots = self.slots();
        let slot = slots.get_mut(runtime)?;
        while let Some(p) = slot.ready.pop_front() {
            if p.sandbox.try_wait().is_none() {
                return Some(p);
            }
            tracing::debug!(runtime, id = %p.id, "a pre-initialized environment had ended");
        }
        None
    }
}

/// Whether the runtime family can be pre-initialized: Kindling's own bootstraps, which wait
/// for their identity, and custom runtimes (`provided`), whose sandbox is built ahead with a
/// program that waits just before its `execve` to be told the function's `bootstrap`
/// ([`is_exec_later`]). Java and Ruby are not done (yet).
pub(crate) fn supported(runtime: &str) -> bool {
    matches!(
        family(runtime),
        RuntimeFamily::Python { .. } | RuntimeFamily::Node { .. } | RuntimeFamily::Provided
    )
}

/// A custom runtime: its pre-built environment executes the function's own `bootstrap` at
/// the claim, with the function's environment, so nothing of a process start differs.
fn is_exec_later(runtime: &str) -> bool {
    family(runtime) == RuntimeFamily::Provided
}

/// Variables a process takes in when it starts, which changing later does not undo: the
/// dynamic linker's (`LD_*`), the C library's locale (`LANG`, `LC_*`), Node.js's options and
/// libuv's (`NODE_*` but `NODE_PATH`, which the bootstrap re-reads; `UV_*`). Python runs
/// with `-I`, which ignores `PYTHON*` (the bootstrap applies `PYTHONPATH` itself).
pub(super) fn read_at_start(name: &str) -> bool {
    name.starts_with("LD_")
        || name == "LANG"
        || name.starts_with("LC_")
        || (name.starts_with("NODE_") && name != "NODE_PATH")
        || name.starts_with("UV_")
}

/// The environment a pre-initialized process starts with: only what is the same for every
/// function of the runtime (namespaced paths), plus where to wait.
fn waiting_env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), launch::base_path("/opt")),
        (
            "LD_LIBRARY_PATH".into(),
            launch::base_ld_library_path("/var/task", "/opt"),
        ),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        ("LAMBDA_TASK_ROOT".into(), "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR".into(), "/var/runtime".into()),
        ("HOME".into(), "/tmp".into()),
        ("KINDLING_IDENTITY_FD".into(), IDENTITY_FD.into()),
        // Room in the initial environment block, which the bootstrap overwrites with the
        // function's variables so that /proc/<pid>/environ shows them.
        ("KINDLING_ENV_ROOM".into(), " ".repeat(ENV_ROOM)),
    ]
}

impl Starter {
    /// Keeps `runtime`'s pool filled: starts one more environment in the background when
    /// fewer than the configured number are ready or starting (one start at a time per
    /// runtime, so refilling never becomes a spawn storm next to real cold starts).
    pub(crate) fn prewarm_fill(self: &Arc<Self>, runtime: &str) {
        let target = self.config.prewarm_per_runtime;
        if target == 0 || !self.namespaces() || !supported(runtime) || self.prewarm.is_closed() {
            return;
        }
        let place = {
            let mut slots = self.prewarm.slots();
            let slot = slots.entry(runtime.to_string()).or_default();
            if slot.starting > 0 || slot.ready.len() >= target {
                return;
            }
            // Near the node's limit on environments, the room goes to invocations.
            let Some(place) = self.reserve(PREWARM_SPARE) else {
                return;
            };
            slot.starting += 1;
            place
        };
        let this = Arc::clone(self);
        let runtime = runtime.to_string();
        tokio::spawn(async move {
            let result = this.prewarm_one(&runtime, place).await;
            let again = {
                let mut slots = this.prewarm.slots();
                let slot = slots.entry(runtime.clone()).or_default();
                slot.starting = slot.starting.saturating_sub(1);
                match result {
                    Ok(p) if this.prewarm.is_closed() => {
                        // Shutting down: ended here (dropping it kills the tree).
                        drop(p);
                        false
                    }
                    Ok(p) => {
                        slot.ready.push_back(Box::new(p));
                        true
                    }
                    Err(e) => {
                        // Not retried until the runtime's next cold start asks again.
                        tracing::warn!(runtime, error = %e, "could not pre-initialize an environment");
                        false
                    }
                }
            };
            if again {
                this.prewarm_fill(&runtime);
            }
        });
    }

    /// Starts one environment for `runtime` that waits for its function.
    async fn prewarm_one(
        &self,
        runtime: &str,
        place: EnvironmentSlot,
    ) -> Result<Prewarmed, SchedulerError> {
        let locator = Arc::clone(&self.locator);
        let users = self.users.clone();
        let owned_runtime = runtime.to_string();
        let exec_later = is_exec_later(runtime);
        let (launch, user) = tokio::task::spawn_blocking(move || {
            let inside = Inside {
                task_root: Path::new("/var/task"),
                opt: Path::new("/opt"),
                runtime_dir: Path::new("/var/runtime"),
            };
            let launch = if exec_later {
                None
            } else {
                Some(
                    launch::bootstrap_launch(&owned_runtime, &locator, &inside)?.ok_or_else(
                        || {
                            SchedulerError::RuntimeUnavailable(format!(
                                "{owned_runtime}: no bootstrap"
                            ))
                        },
                    )?,
                )
            };
            let user = users
                .map(|pool| pool.lease().map_err(SchedulerError::Users))
                .transpose()?;
            Ok::<_, SchedulerError>((launch, user))
        })
        .await
        .map_err(SchedulerError::task("pre-initializing an environment"))??;
        let service_ports: Vec<u16> = self
            .config
            .endpoint
            .iter()
            .map(|e| endpoint_port_inside(e.port))
            .collect();
        let mut network = self
            .sandbox
            .prepare_network_with(RUNTIME_API_PORT, &service_ports)
            .await
            .map_err(|source| SchedulerError::Sandbox {
                what: "preparing the network",
                source,
            })?;
        let shares_host_network = network.namespace.is_none();
        // Pre-initialized environments are namespaced: never Kindling's own user.
        let telemetry_network = super::telemetry_network(
            network.namespace.as_ref(),
            Some(
                user.as_ref()
                    .map_or(self.sandbox.config().uid, UserLease::id),
            ),
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_dir = self.config.work_dir.join("tmp").join(&id);
        let mut readonly = self.config.readonly_host_paths.clone();
        for path in launch.iter().flat_map(|l| &l.visible) {
            if !readonly.iter().any(|p| path.starts_with(p)) {
                readonly.push(path.clone());
            }
        }
        // Kindling's bootstrap starts with a neutral environment and waits at a pipe for the
        // function's; a custom runtime's program is told everything at its execve.
        let (env, identity, pass_fds) = match &launch {
            Some(_) => {
                let (gate, identity) =
                    std::io::pipe().map_err(SchedulerError::io("creating the identity pipe"))?;
                (
                    waiting_env(),
                    Some(std::fs::File::from(OwnedFd::from(identity))),
                    vec![Arc::new(OwnedFd::from(gate))],
                )
            }
            None => (Vec::new(), None, Vec::new()),
        };
        let startup_env = env
            .iter()
            .filter(|(k, _)| read_at_start(k))
            .cloned()
            .collect();
        let spec = EnvironmentSpec {
            id: id.clone(),
            program: launch
                .as_ref()
                .map_or_else(PathBuf::new, |l| l.program.clone()),
            args: launch.as_ref().map_or_else(Vec::new, |l| l.args.clone()),
            env,
            task_root: PathBuf::new(),
            opt_dir: None,
            tmp_dir: tmp_dir.clone(),
            tmp_size_mb: PREWARM_TMP_MB,
            memory_mb: WAITING_MEMORY_MB,
            pids_max: 1024,
            cwd: PathBuf::from("/var/task"),
            readonly_host_paths: readonly,
            extra_mounts: vec![BindMount {
                host: self.config.runtime_dir.clone(),
                inside: PathBuf::from("/var/runtime"),
            }],
            root_dir: None,
            uid: user.as_ref().map(UserLease::id),
            gid: user.as_ref().map(UserLease::id),
            network: network.namespace.take(),
            pass_fds,
            code_later: true,
            exec_later: launch.is_none(),
        };
        let started = Instant::now();
        let sandbox =
            self.sandbox
                .spawn_in(place, spec)
                .await
                .map_err(|source| SchedulerError::Sandbox {
                    what: "starting a pre-initialized environment",
                    source,
                })?;
        tracing::debug!(
            runtime,
            id,
            micros = started.elapsed().as_micros() as u64,
            "pre-initialized environment started"
        );
        Ok(Prewarmed {
            id,
            sandbox,
            user,
            listener: network.listener,
            endpoint_listener: network.extra_listeners.pop(),
            identity,
            shares_host_network,
            telemetry_network,
            tmp_dir,
            launch,
            startup_env,
        })
    }

    /// A ready environment for this cold start, if the function can use one: Namespaces mode,
    /// a zip function of a supported runtime without extensions, the default `/tmp` size,
    /// exactly the command its own cold start would run, and no variable of its own read at a
    /// process's start (Kindling's own such variables are the waiting process's in
    /// Namespaces mode) that differs from the waiting process's.
    fn take_prewarmed(
        self: &Arc<Self>,
        runtime: &str,
        ephemeral_storage: u32,
        launch: &Launch,
        extensions: usize,
        image: bool,
        user_env: Option<&BTreeMap<String, String>>,
    ) -> Option<Box<Prewarmed>> {
        if self.config.prewarm_per_runtime == 0 || !self.namespaces() || !supported(runtime) {
            return None;
        }
        let taken = if image || extensions > 0 || ephemeral_storage != PREWARM_TMP_MB {
            None
        } else {
            self.prewarm.take(runtime)
        };
        let Some(p) = taken else {
            // The runtime's pool fills (again) for the next one. After a claim it refills
            // only once the claimed environment is under way (`refill_after_claim`).
            self.prewarm_fill(runtime);
            return None;
        };
        // A custom runtime's program starts with the function's command and environment.
        let fits = match &p.launch {
            None => launch.cwd.is_none(),
            Some(waiting) => {
                let same_command = waiting.program == launch.program && waiting.args == launch.args;
                let startup_agrees = user_env
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| read_at_start(k))
                    .all(|(k, v)| p.startup_env.iter().any(|(pk, pv)| pk == k && pv == v));
                same_command && startup_agrees
            }
        };
        if fits {
            Some(p)
        } else {
            // Not for this function; it goes back for the next (it ran nothing).
            self.prewarm
                .slots()
                .entry(runtime.to_string())
                .or_default()
                .ready
                .push_front(p);
            None
        }
    }

    /// After a claim: refills `runtime`'s pool once the claimed environment's Init is over
    /// and [`REFILL_DELAY`] has passed, so that making the next one (a clone of Kindling, a
    /// network namespace, the root's mounts, an interpreter's start: tens of milliseconds of
    /// CPU) does not compete with the claimed environment's Init and first invocation on a
    /// small machine.
    pub(super) fn refill_after_claim(self: &Arc<Self>, runtime: &str) {
        let this = Arc::clone(self);
        let runtime = runtime.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(REFILL_DELAY).await;
            this.prewarm_fill(&runtime);
        });
    }

    /// A pre-initialized environment for `job`, if one fits (see [`Self::take_prewarmed`]).
    pub(super) fn prewarmed_for(
        self: &Arc<Self>,
        job: &StartJob,
        prepared: &Prepared,
    ) -> Option<Box<Prewarmed>> {
        let rec = &job.rec;
        self.take_prewarmed(
            rec.spec.runtime.as_deref()?,
            rec.spec.ephemeral_storage,
            &prepared.launch,
            prepared.extensions,
            prepared.image_root.is_some(),
            rec.spec.environment.as_ref(),
        )
    }
}

impl Starter {
    /// Whether a start of `rec` may claim a pre-initialized environment now, which needs no
    /// new place under the node's limit (whether one fits is decided once the start is
    /// prepared, by `prewarmed_for`; without one it reserves its place then).
    pub(crate) fn prewarmed_ready(&self, rec: &kindling_model::function::VersionRecord) -> bool {
        let Some(runtime) = rec.spec.runtime.as_deref() else {
            return false;
        };
        self.config.prewarm_per_runtime > 0
            && self.namespaces()
            && supported(runtime)
            && rec.code.image.is_none()
            && rec.spec.ephemeral_storage == PREWARM_TMP_MB
            && self
                .prewarm
                .slots()
                .get(runtime)
                .is_some_and(|s| !s.ready.is_empty())
    }

    /// Step 2 with a pre-initialized environment: the Runtime API on its listener, the
    /// function's code and limits attached, its environment variables delivered.
    pub(super) async fn spawn_prewarmed(
        &self,
        job: &StartJob,
        mut prepared: Prepared,
        p: Box<Prewarmed>,
    ) -> StartResult<Spawned> {
        let at = Instant::now();
        let rec = &job.rec;
        let Prewarmed {
            id,
            mut sandbox,
            user,
            listener,
            endpoint_listener,
            identity,
            shares_host_network,
            telemetry_network,
            tmp_dir,
            ..
        } = *p;
        // The user id leased for an ordinary start is not needed: the environment has its own.
        drop(prepared.user.take());
        // Its /tmp is the one to remove when it is retired.
        prepared.tmp_dir = tmp_dir;
        let uid = user
            .as_ref()
            .map_or(self.sandbox.config().uid, UserLease::id);
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(SchedulerError::io("registering the Runtime API listener"))?;
        let api = RuntimeApi::from_listener(
            listener,
            RuntimeApiConfig {
                function_name: rec.function_name.clone(),
                function_version: rec.version_label(),
                handler: rec.spec.handler.clone(),
                account_id: self.config.account_id.clone(),
                max_response_bytes: MAX_RESPONSE_BYTES,
                extensions_enabled: true,
                allowed_peer_uid: shares_host_network.then_some(uid),
                telemetry_network,
                stream_limits: self.config.stream_limits,
                connections: Arc::clone(&self.config.runtime_api_connections),
            },
        )
        .map_err(SchedulerError::io("starting the Runtime API"))?;
        let runtime_api = api.local_addr().to_string();
        log_init_start(&prepared, &api, job);
        let (endpoint_url, relay) = self.sdk_endpoint(endpoint_listener, uid)?;
        let empty_opt = self.config.work_dir.join("empty-opt");
        let inside = self.inside(&prepared.task_root, prepared.opt_dir.as_deref(), &empty_opt);
        let mut env = self.env_vars(
            job,
            &runtime_api,
            endpoint_url.as_deref(),
            &prepared.stream_name,
            &inside,
        );
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), "/tmp".into()));
        }
        pump_output(&mut sandbox, &prepared.log);
        let tree = Tree::new(sandbox, user, relay);
        let delivered: Result<(), SchedulerError> = match identity {
            // A custom runtime: the code attached, then its bootstrap executed with the
            // function's environment, in one step.
            None => tree
                .sandbox()
                .attach_code_and_exec(
                    &prepared.task_root,
                    prepared.opt_dir.as_deref(),
                    rec.spec.memory_size,
                    1024,
                    LateExec {
                        program: prepared.launch.program.clone(),
                        args: prepared.launch.args.clone(),
                        env,
                        cwd: inside.task_root.to_path_buf(),
                    },
                )
                .await
                .map_err(|source| SchedulerError::Sandbox {
                    what: "handing a pre-initialized environment its function",
                    source,
                }),
            Some(identity) => {
                let attached = tree
                    .sandbox()
                    .attach_code(
                        &prepared.task_root,
                        prepared.opt_dir.as_deref(),
                        rec.spec.memory_size,
                        1024,
                    )
                    .await
                    .map_err(|source| SchedulerError::Sandbox {
                        what: "handing a pre-initialized environment its function",
                        source,
                    });
                match attached {
                    Ok(()) => deliver_identity(identity, &encode_identity(&env))
                        .await
                        .map_err(SchedulerError::io(
                            "handing a pre-initialized environment its function",
                        )),
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = delivered {
            tracing::warn!(function = %rec.function_name, id, error = %e, "could not hand a pre-initialized environment its function");
            // Kindling's own limits, not the function's: the caller evicts or throttles.
            if e.is_host_exhausted() {
                prepared.discard(tree).await;
                return Err(e);
            }
            let failure = prepared.failure(
                FunctionError::InvalidEntrypoint,
                &job.request_id,
                &format!("Runtime failed to start: {e}"),
                at,
            );
            prepared.discard(tree).await;
            return Ok(Err(failure));
        }
        tracing::debug!(function = %rec.function_name, id, micros = at.elapsed().as_micros() as u64, "pre-initialized environment claimed");
        Ok(Ok(Spawned {
            prepared,
            tree,
            api,
            gate: None,
            at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_read_at_start() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LANG",
            "LC_ALL",
            "NODE_OPTIONS",
            "UV_THREADPOOL_SIZE",
        ] {
            assert!(read_at_start(name), "{name}");
        }
        for name in [
            "NODE_PATH",
            "PYTHONPATH",
            "TZ",
            "PATH",
            "AWS_REGION",
            "HOME",
        ] {
            assert!(!read_at_start(name), "{name}");
        }
    }

    #[test]
    fn the_waiting_environment_names_nothing_of_a_function() {
        let env = waiting_env();
        for (k, v) in &env {
            assert!(!k.starts_with("AWS_"), "{k}");
            assert!(!k.starts_with('_'), "{k}");
            assert!(!v.contains("function"), "{k}={v}");
            assert!(!v.contains("AWS"), "{k}={v}");
        }
        assert!(
            env.iter()
                .any(|(k, v)| k == "KINDLING_IDENTITY_FD" && v == IDENTITY_FD)
        );
    }

    #[test]
    fn kindlings_bootstraps_and_custom_runtimes_are_supported() {
        assert!(supported("python3.12"));
        assert!(supported("nodejs20.x"));
        assert!(supported("provided.al2023") && supported("provided"));
        assert!(is_exec_later("provided.al2023") && !is_exec_later("python3.12"));
        assert!(!supported("java21"));
        assert!(!supported("ruby3.3"));
    }
}
