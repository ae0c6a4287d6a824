//! External extensions (executables in a layer's `extensions` directory) start before the
//! runtime, as in Lambda: a small `/bin/sh` wrapper starts them, then waits on a pipe Kindling
//! holds (inherited as fd 3) until they have registered, then becomes the runtime.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use kindling_runtime_api::RuntimeApi;

/// Starts every external extension (executables in `/opt/extensions`, without the runtime-only
/// variables and without fd 3), waits until Kindling writes to or closes the pipe at fd 3, then
/// becomes the runtime. Arguments: the extensions directory, then the runtime's command line.
pub(crate) const WRAPPER: &str = r#"dir=$1; shift
for ext in "$dir"/*; do
  if [ -f "$ext" ] && [ -x "$ext" ]; then
    env -u _HANDLER -u AWS_EXECUTION_ENV -u LAMBDA_TASK_ROOT -u LAMBDA_RUNTIME_DIR \
      -u AWS_LAMBDA_LOG_GROUP_NAME -u AWS_LAMBDA_LOG_STREAM_NAME "$ext" 3<&- &
  fi
done
read -r go <&3
exec 3<&-
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

/// The gate the wrapper waits on: Kindling keeps the write end and closes it to let the
/// runtime start.
pub(crate) struct Gate {
    release: std::io::PipeWriter,
}

impl Gate {
    /// The gate and the read end for the environment (`EnvironmentSpec::pass_fds`, fd 3).
    pub fn new() -> std::io::Result<(Self, Arc<OwnedFd>)> {
        let (read, release) = std::io::pipe()?;
        Ok((Self { release }, Arc::new(read.into())))
    }

    /// Lets the runtime start once `expected` extensions registered (or one failed, or the
    /// environment's Init ends otherwise: the caller bounds this wait).
    pub async fn release_when_registered(self, api: &RuntimeApi, expected: usize) {
        api.wait_extensions_registered(expected).await;
        self.open();
    }

    /// Lets the runtime start now (the wrapper reads end of file).
    pub fn open(self) {
        drop(self.release);
    }
}
