//! Step 1 of a cold start, on the blocking pool: everything that touches the file system or
//! may block (unpacking, interpreter discovery, the log file, the user id's lock file).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kindling_model::function::VersionRecord;
use kindling_model::invoke::FunctionError;

use super::{InitFailure, StartJob, StartResult, Starter, extensions};
use crate::env::platform_error;
use crate::error::SchedulerError;
use crate::launch::{Launch, launch};
use crate::logs::{self, LogFormat, LogStream};
use crate::users::UserLease;

/// What step 1 produced.
pub(super) struct Prepared {
    /// The environment's id (sandbox id, log stream suffix, `/tmp` directory name).
    pub id: String,
    pub stream_name: String,
    pub log: Arc<LogStream>,
    /// Host paths of the unpacked code and merged layers.
    pub task_root: PathBuf,
    pub opt_dir: Option<PathBuf>,
    pub launch: Launch,
    /// External extensions to start before the runtime.
    pub extensions: usize,
    /// The environment's own user (taken by the spawn step).
    pub user: Option<UserLease>,
    pub tmp_dir: PathBuf,
}

/// The parts of a [`StartJob`] the blocking step needs, owned.
struct Job {
    rec: Arc<VersionRecord>,
    code_zip: PathBuf,
    layers: Vec<(String, PathBuf)>,
    request_id: String,
    tail: bool,
}

impl Starter {
    /// Step 1, on the blocking pool.
    pub(super) async fn prepare(
        self: &Arc<Self>,
        job: &StartJob,
        started: Instant,
    ) -> StartResult<Prepared> {
        let this = Arc::clone(self);
        let job = Job {
            rec: Arc::clone(&job.rec),
            code_zip: job.code_zip.clone(),
            layers: job.layers.clone(),
            request_id: job.request_id.clone(),
            tail: job.tail,
        };
        tokio::task::spawn_blocking(move || this.prepare_blocking(&job, started))
            .await
            .map_err(SchedulerError::task("preparing an environment"))?
    }

    fn prepare_blocking(&self, job: &Job, started: Instant) -> StartResult<Prepared> {
        let rec = &job.rec;
        let task_root = self
            .artifacts
            .code_dir(&rec.code.blob, &job.code_zip)
            .map_err(SchedulerError::unpacking("unpacking the function's code"))?;
        let opt_dir = self
            .artifacts
            .opt_dir(&job.layers)
            .map_err(SchedulerError::unpacking("unpacking the function's layers"))?;

        let id = uuid::Uuid::new_v4().simple().to_string();
        let stream_name = logs::log_stream_name(logs::now_ms(), &rec.version_label(), &id);
        let log = Arc::new(
            self.logs
                .open_stream(&rec.spec.logging.log_group, &stream_name)
                .map_err(SchedulerError::io("opening the log stream"))?,
        );
        log.set_format(LogFormat::of(&rec.spec.logging));
        if job.tail {
            log.begin_tail();
        }
        let empty_opt = self.config.work_dir.join("empty-opt");
        let inside = self.inside(&task_root, opt_dir.as_deref(), &empty_opt);
        let launch = match launch(rec, &self.locator, &task_root, opt_dir.as_deref(), &inside)? {
            Ok(l) => l,
            Err(message) => {
                let error = FunctionError::InvalidEntrypoint;
                return Ok(Err(InitFailure {
                    payload: platform_error(&error, &job.request_id, &message),
                    error,
                    log,
                    duration: started.elapsed(),
                }));
            }
        };
        if let Some(note) = &launch.note {
            // In the function's own log (and a LogType Tail), not only the server's.
            log.line(&format!("Kindling WARNING: {note}"));
        }
        let extensions = opt_dir.as_deref().map_or(0, extensions::count);
        let user = match &self.users {
            Some(pool) if self.namespaces() => Some(pool.lease().map_err(SchedulerError::Users)?),
            _ => None,
        };
        let tmp_dir = self.config.work_dir.join("tmp").join(&id);
        Ok(Ok(Prepared {
            id,
            stream_name,
            log,
            task_root,
            opt_dir,
            launch,
            extensions,
            user,
            tmp_dir,
        }))
    }
}
