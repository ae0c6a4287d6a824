//! Execution environments as isolated Linux process trees.
//!
//! The sandbox starts one process tree per environment, delivers its output line by line,
//! reports how it ended, and can freeze, thaw and kill it as a whole. It knows nothing of HTTP,
//! storage or Lambda's APIs; every setting is passed in (nothing is read from the environment).
//! Linux only (5.9 or later: `clone3`, pidfds, `close_range`).
//!
//! # API
//!
//! ```no_run
//! # async fn demo() -> Result<(), kindling_sandbox::SandboxError> {
//! use kindling_sandbox::{EnvironmentSpec, IsolationMode, Sandbox, SandboxConfig};
//!
//! let sandbox = match Sandbox::new(IsolationMode::namespaces(), SandboxConfig::default()) {
//!     Ok(sandbox) => sandbox,
//!     Err(e) if e.is_isolation_unavailable() => Sandbox::process(),
//!     Err(e) => return Err(e),
//! };
//! let mut env = sandbox
//!     .spawn(EnvironmentSpec {
//!         id: "fn-a1b2".into(),
//!         program: "/var/task/bootstrap".into(),
//!         cwd: "/var/task".into(),
//!         task_root: "/srv/kindling/code/a1b2".into(),
//!         tmp_dir: "/srv/kindling/tmp/fn-a1b2".into(),
//!         memory_mb: 128,
//!         pids_max: 1024,
//!         tmp_size_mb: 512,
//!         readonly_host_paths: vec!["/usr".into(), "/lib".into(), "/lib64".into(), "/bin".into()],
//!         ..Default::default()
//!     })
//!     .await?;
//! let mut output = env.take_output().expect("first call");
//! tokio::spawn(async move {
//!     while let Some(line) = output.recv().await {
//!         println!("{:?}: {}", line.stream, line.line);
//!     }
//! });
//! env.freeze().await?; // between invocations
//! env.thaw().await?;
//! println!("peak {:?} bytes, OOM: {}", env.memory_peak_bytes(), env.oom_killed());
//! env.kill(); // or drop(env)
//! println!("{:?}", env.wait().await);
//! # Ok(()) }
//! ```
//!
//! - [`Sandbox::new`]`(mode, config)` checks the mode up front; [`Sandbox::spawn`]`(spec)`
//!   returns once the program is executing (exec errors are returned, not reported later). Its
//!   synchronous part (directories, cgroups, pipes, `clone3`) runs on Tokio's blocking pool,
//!   never on an async worker.
//! - [`Environment`]: [`pid`](Environment::pid), [`wait`](Environment::wait) /
//!   [`try_wait`](Environment::try_wait) → [`Exit`], [`kill`](Environment::kill),
//!   [`freeze`](Environment::freeze) / [`thaw`](Environment::thaw),
//!   [`memory_peak_bytes`](Environment::memory_peak_bytes),
//!   [`oom_killed`](Environment::oom_killed), [`take_output`](Environment::take_output) (an
//!   [`Output`] receiver of [`OutputLine`]s), [`output_settled`](Environment::output_settled).
//!   Dropping it kills the tree; `kill` and drop are idempotent.
//! - [`Sandbox::prepare_network`]`(port_inside)` → [`PreparedNetwork`] `{ listener, namespace }`,
//!   before `spawn`: a listener on the loopback the environment will see. With
//!   [`NetworkMode::None`] it is bound inside a new network namespace (on `port_inside`) that
//!   the environment then runs in ([`EnvironmentSpec::network`]): reachable from the
//!   environment only. Otherwise it is on the host's loopback (a free port).
//! - [`EnvironmentSpec::uid`] / [`EnvironmentSpec::gid`] run one environment as a user of its
//!   own (the [`SandboxConfig`]'s by default).
//! - [`EnvironmentSpec::code_later`] starts an environment with empty `/var/task` and `/opt`,
//!   attached later with [`Environment::attach_code`]; with [`EnvironmentSpec::exec_later`]
//!   the program also waits just before its `execve` until
//!   [`Environment::attach_code_and_exec`] names what to execute ([`LateExec`]): a sandbox
//!   built before its program is known.
//! - [`EnvironmentSpec::pass_fds`] hands open files to the program at descriptors 3, 4, ...
//!   (for example the read end of a pipe as a start gate); nothing else of Kindling's is open
//!   in the program.
//!
//! ```no_run
//! # async fn demo(sandbox: kindling_sandbox::Sandbox, spec: kindling_sandbox::EnvironmentSpec)
//! # -> Result<(), kindling_sandbox::SandboxError> {
//! use kindling_sandbox::{EnvironmentSpec, PreparedNetwork};
//!
//! let PreparedNetwork { listener, namespace, .. } = sandbox.prepare_network(9001).await?;
//! let address = listener.local_addr().expect("bound"); // 127.0.0.1:9001 with a namespace
//! // ... serve on `listener`, tell the program `address` ...
//! let env = sandbox
//!     .spawn(EnvironmentSpec { network: namespace, uid: Some(100_007), gid: Some(100_007), ..spec })
//!     .await?;
//! # drop(env); Ok(()) }
//! ```
//!
//! # What each mode does
//!
//! | | [`IsolationMode::Process`] | [`IsolationMode::Namespaces`] |
//! |---|---|---|
//! | needs | nothing (any user) | root |
//! | paths in the spec | host paths | `program`/`cwd` inside; host dirs bound in |
//! | filesystem | the host's | tmpfs root, read-only binds, `/var/task`, `/opt`, `/tmp`, new `/proc`, minimal `/dev` |
//! | `/tmp` | `tmp_dir` | [`TmpBacking`]: a fresh ext4 of `tmp_size_mb` per environment (disk), a tmpfs, or `tmp_dir` |
//! | user | Kindling's | `uid`/`gid` of the spec, else of the config (993), no new privileges |
//! | system calls | seccomp allowlist, no new privileges | the same |
//! | namespaces | none | mount, PID, IPC, UTS (+ network with [`NetworkMode::None`]: the prepared one, else a new one) |
//! | limits | RLIMIT_NOFILE 1024 (at most Kindling's hard limit) | the same, cgroup memory (+swap), pids, cpu shares/weight ∝ memory |
//! | kill | subreaper supervisor kills every descendant | SIGKILL to pid 1 ends the PID namespace, plus cgroup kill |
//! | freeze/thaw | no-op | cgroup v1 freezer or v2 `cgroup.freeze` |
//! | memory peak | program's largest sampled RSS; after the end, max RSS of reaped processes too | the larger of the cgroup's `max_usage_in_bytes` / `memory.peak` and the program's largest sampled RSS |
//! | OOM detection | no | `memory.oom_control` / `memory.events` |
//!
//! # How a tree is run
//!
//! `spawn` clones (`clone3`, with a pidfd) a small supervisor, written in this crate and never
//! exec'd, which forks the program. In Namespaces mode the supervisor is pid 1 of the new PID
//! namespace (`kindling-init` in `ps`): it builds the root, reaps orphans, and when it dies the
//! kernel kills everything else in the namespace. In Process mode it is a child subreaper, so
//! orphans of double forks become its children. Either way it tears the whole tree down when
//! the program exits, when asked, or when Kindling goes away (a lifeline pipe closes), then
//! reports how the program ended. The program alone joins the cgroups, so the supervisor is
//! never frozen, never counted against the limits, and never chosen by the OOM killer.
//!
//! # Ownership of host resources
//!
//! - `tmp_dir` (Process mode, [`TmpBacking::HostDir`]) is created if missing and never removed
//!   (like Lambda's `/tmp`, it outlives a reset); the caller removes it when the environment is
//!   retired for good. A [`TmpBacking::Disk`] filesystem belongs to its environment: it goes
//!   away, with its loop device and image file, when the environment's last process exits.
//!   Image files live (briefly) in [`SandboxConfig::tmp_image_dir`].
//! - Cgroups `<hierarchy>/<cgroup_parent>/<id>` are created by `spawn` and removed once the tree
//!   is gone (before `wait` returns). The parent directories are left in place; with
//!   [`SandboxConfig::node_lock_dir`] the next sandbox to start on the host removes them once
//!   their node's lock is free.
//! - Mounts exist only inside each environment's mount namespace and vanish with it.
//! - A prepared network namespace lasts while anything holds it: the [`NetworkNamespace`]
//!   handles, the listener (and its connections), or a process inside. `spawn` does not keep
//!   the handle in the spec; the caller drops the listener when it retires the environment.

mod cgroup;
mod environment;
mod error;
mod launch;
mod network;
mod output;
mod plan;
mod report;
mod sandbox;
mod seccomp;
mod spec;
mod sys;
mod tmp_disk;

pub use environment::{Environment, EnvironmentSlot, Exit, LateExec};
pub use error::{SandboxError, is_exhaustion};
pub use network::{NetworkNamespace, PreparedNetwork, connect_loopback_as};
pub use output::{Output, OutputLine, Stream};
pub use sandbox::{Sandbox, SandboxConfig, TmpBacking};
pub use spec::{BindMount, EnvironmentSpec, IsolationMode, MAX_PASS_FDS, NetworkMode};

#[cfg(test)]
mod tests {
    /// The scheduler keeps environments in shared maps and spawns from any task.
    #[test]
    fn handles_are_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Sandbox>();
        shareable::<super::Environment>();
        shareable::<super::SandboxError>();
    }
}
