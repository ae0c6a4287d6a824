//! External extensions (executables in a layer's `extensions` directory) start before the
//! runtime, as in Lambda: a small `/bin/sh` wrapper starts them, then stops itself until
//! Kindling has seen them register, then becomes the runtime.

use std::path::Path;
use std::time::{Duration, Instant};

use kindling_runtime_api::{InitResult, RuntimeApi};

/// Starts every external extension (executables in `/opt/extensions`, without the runtime-only
/// variables), stops itself until Kindling has seen them register, then becomes the runtime.
/// Arguments: the extensions directory, then the runtime's command line.
pub(crate) const WRAPPER: &str = r#"dir=$1; shift
for ext in "$dir"/*; do
  if [ -f "$ext" ] && [ -x "$ext" ]; then
    env -u _HANDLER -u AWS_EXECUTION_ENV -u LAMBDA_TASK_ROOT -u LAMBDA_RUNTIME_DIR \
      -u AWS_LAMBDA_LOG_GROUP_NAME -u AWS_LAMBDA_LOG_STREAM_NAME "$ext" &
  fi
done
kill -STOP $$
exec "$@""#;

/// Executables in a layer set's `extensions` directory. Blocking (reads a directory).
pub(crate) fn count(opt: &Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    std::fs::read_dir(opt.join("extensions"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Lets the runtime start once `expected` extensions registered (or one failed, or the Init
/// limit passed): waits for the wrapper to stop itself, then continues it.
pub(crate) async fn release_runtime(
    api: &RuntimeApi,
    sandbox: &kindling_sandbox::Environment,
    expected: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let stopped = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    };
    while Instant::now() < deadline {
        let registered = api.registered_extensions().len() >= expected;
        let failed = matches!(api.init_result(), Some(InitResult::InitError { .. }));
        let exited = sandbox.try_wait().is_some();
        if exited {
            return;
        }
        if let Some(pid) = sandbox.pid()
            && (registered || failed)
            && stopped(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(pid) = sandbox.pid() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
    }
}
