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
    /// A container image's unpacked root (the environment's `/`).
    pub image_root: Option<PathBuf>,
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
    image_layers: Vec<PathBuf>,
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
            image_layers: job.image_layers.clone(),
            request_id: job.request_id.clone(),
            tail: job.tail,
        };
        tokio::task::spawn_blocking(move || this.prepare_blocking(&job, started))
            .await
            .map_err(SchedulerError::task("preparing an environment"))?
    }

    /// A new environment's id and its log stream, in the function's log group (its
    /// `LoggingConfig.LogGroup`, `/aws/lambda/<name>` by default) and format: the same for a
    /// zip and an image function.
    fn open_log(&self, job: &Job) -> Result<(String, String, Arc<LogStream>), SchedulerError> {
        let rec = &job.rec;
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
        Ok((id, stream_name, log))
    }

    fn prepare_blocking(&self, job: &Job, started: Instant) -> StartResult<Prepared> {
        if job.rec.code.image.is_some() {
            return self.prepare_image(job, started);
        }
        let rec = &job.rec;
        let task_root = self
            .artifacts
            .code_dir(&rec.code.blob, &job.code_zip)
            .map_err(SchedulerError::unpacking("unpacking the function's code"))?;
        let opt_dir = self
            .artifacts
            .opt_dir(&job.layers)
            .map_err(SchedulerError::unpacking("unpacking the function's layers"))?;

        let (id, stream_name, log) = self.open_log(job)?;
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
            image_root: None,
            extensions,
            user,
            tmp_dir,
        }))
    }

    /// Step 1 for a container image: its root unpacked once (cached by digest), the
    /// command from its config and `ImageConfig`.
    fn prepare_image(&self, job: &Job, started: Instant) -> StartResult<Prepared> {
        let rec = &job.rec;
        let Some(image) = &rec.code.image else {
            return Err(SchedulerError::io("preparing an image")(
                std::io::Error::other("not an image function"),
            ));
        };
        let (id, stream_name, log) = self.open_log(job)?;
        let fail = |message: String, log: Arc<LogStream>| {
            let error = FunctionError::InvalidEntrypoint;
            Ok(Err(InitFailure {
                payload: platform_error(&error, &job.request_id, &message),
                error,
                log,
                duration: started.elapsed(),
            }))
        };
        if !self.namespaces() {
            return fail(
                "Container-image functions need Kindling's namespaces isolation (--isolation namespaces, as root): the image is the environment's root filesystem.".into(),
                log,
            );
        }
        let layers: Vec<(PathBuf, String)> = job
            .image_layers
            .iter()
            .cloned()
            .zip(image.layers.iter().cloned())
            .collect();
        let root = match self.artifacts.image_root(&image.manifest_digest, &layers) {
            Ok(root) => root,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return fail(
                    format!("The image {} cannot be unpacked: {e}", image.image_uri),
                    log,
                );
            }
            Err(e) => {
                return Err(SchedulerError::unpacking("unpacking the function's image")(
                    e,
                ));
            }
        };
        let launch = match crate::image::launch(image, rec.spec.image_config.as_ref(), &root) {
            Ok(l) => l,
            Err(message) => return fail(message, log),
        };
        let user = match &self.users {
            Some(pool) => Some(pool.lease().map_err(SchedulerError::Users)?),
            None => None,
        };
        let tmp_dir = self.config.work_dir.join("tmp").join(&id);
        Ok(Ok(Prepared {
            id,
            stream_name,
            log,
            task_root: root.clone(),
            opt_dir: None,
            launch,
            image_root: Some(root),
            extensions: 0,
            user,
            tmp_dir,
        }))
    }
}
