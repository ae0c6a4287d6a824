//! How a runtime is started: interpreter discovery on the host, the command line, and the
//! environment variables Lambda gives a runtime process.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use kindling_model::function::VersionRecord;
use kindling_model::runtime::{RuntimeFamily, family};

use crate::error::SchedulerError;

/// Explicit interpreter choices, e.g. `python3.12 -> /opt/py312/bin/python3.12`.
#[derive(Debug, Clone, Default)]
pub struct RuntimePaths {
    pub interpreters: BTreeMap<String, PathBuf>,
    /// Directories searched for interpreters, in order (never pyenv shim directories).
    pub search_dirs: Vec<PathBuf>,
}

/// Finds real interpreter binaries for runtimes and remembers what it found.
#[derive(Debug)]
pub struct RuntimeLocator {
    paths: RuntimePaths,
    cache: Mutex<HashMap<String, PathBuf>>,
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// True for files that are scripts (`#!`), such as pyenv shims: they cost ~100 ms per start.
fn is_script(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| &head == b"#!")
        .unwrap_or(false)
}

impl RuntimeLocator {
    pub fn new(paths: RuntimePaths) -> Self {
        Self {
            paths,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn find(&self, names: &[String]) -> Option<PathBuf> {
        for dir in &self.paths.search_dirs {
            if dir.components().any(|c| c.as_os_str() == "shims") {
                continue;
            }
            for name in names {
                let candidate = dir.join(name);
                if is_executable(&candidate) && !is_script(&candidate) {
                    return Some(candidate.canonicalize().unwrap_or(candidate));
                }
            }
        }
        None
    }

    /// The interpreter for `runtime` (`python3.12`, `nodejs20.x`).
    pub fn interpreter(&self, runtime: &str) -> Result<PathBuf, SchedulerError> {
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(runtime)
        {
            return Ok(p.clone());
        }
        let found = match self.paths.interpreters.get(runtime) {
            Some(p) => Some(p.clone()),
            None => match family(runtime) {
                RuntimeFamily::Python { minor } => self.python(minor),
                RuntimeFamily::Node { major } => self.node(major),
                _ => None,
            },
        };
        let path = found.ok_or_else(|| {
            SchedulerError::RuntimeUnavailable(format!(
                "Kindling found no interpreter for runtime {runtime} on this host; install one or map it with --runtime {runtime}=/path/to/interpreter"
            ))
        })?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(runtime.to_string(), path.clone());
        Ok(path)
    }

    fn python(&self, minor: u32) -> Option<PathBuf> {
        if let Some(p) = self.find(&[format!("python3.{minor}")]) {
            return Some(p);
        }
        // Fall back to the newest other 3.x available.
        for other in (6..=20).rev().filter(|m| *m != minor) {
            if let Some(p) = self.find(&[format!("python3.{other}")]) {
                tracing::warn!(
                    wanted = format!("python3.{minor}"),
                    using = %p.display(),
                    "no exact Python interpreter found; falling back to python3.{other}"
                );
                return Some(p);
            }
        }
        None
    }

    fn node(&self, major: u32) -> Option<PathBuf> {
        let p = self.find(&[format!("node{major}"), "node".into(), "nodejs".into()])?;
        let version = Command::new(&p)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !version.starts_with(&format!("v{major}.")) {
            tracing::warn!(
                wanted = format!("nodejs{major}.x"),
                found = %version,
                using = %p.display(),
                "no exact Node.js version found; falling back to the one available"
            );
        }
        Some(p)
    }
}

/// What to execute for a runtime, as host paths (the caller maps them for the sandbox).
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Installation prefix of the interpreter, which must be visible inside the sandbox.
    pub interpreter_prefix: Option<PathBuf>,
    /// Working directory, when not the task root (a container image's `WORKDIR`).
    pub cwd: Option<PathBuf>,
}

/// Paths as the runtime sees them.
pub(crate) struct Inside<'a> {
    pub task_root: &'a Path,
    pub opt: &'a Path,
    pub runtime_dir: &'a Path,
}

/// The command that starts the runtime of `rec`, or `None` with the error Lambda reports.
pub(crate) fn launch(
    rec: &VersionRecord,
    locator: &RuntimeLocator,
    host_task_root: &Path,
    host_opt: Option<&Path>,
    inside: &Inside<'_>,
) -> Result<Result<Launch, String>, SchedulerError> {
    let runtime = rec.spec.runtime.as_deref().unwrap_or("provided.al2023");
    match family(runtime) {
        RuntimeFamily::Provided => {
            if is_executable(&host_task_root.join("bootstrap")) {
                return Ok(Ok(Launch {
                    program: inside.task_root.join("bootstrap"),
                    args: vec![],
                    interpreter_prefix: None,
                    cwd: None,
                }));
            }
            if host_opt.is_some_and(|o| is_executable(&o.join("bootstrap"))) {
                return Ok(Ok(Launch {
                    program: inside.opt.join("bootstrap"),
                    args: vec![],
                    interpreter_prefix: None,
                    cwd: None,
                }));
            }
            Ok(Err(format!(
                "Couldn't find valid bootstrap(s): [{} {}]",
                inside.task_root.join("bootstrap").display(),
                inside.opt.join("bootstrap").display()
            )))
        }
        RuntimeFamily::Python { .. } => {
            let python = locator.interpreter(runtime)?;
            Ok(Ok(Launch {
                args: vec![
                    "-I".into(),
                    "-S".into(),
                    "-u".into(),
                    inside
                        .runtime_dir
                        .join("python/bootstrap.py")
                        .to_string_lossy()
                        .into_owned(),
                ],
                interpreter_prefix: prefix(&python),
                cwd: None,
                program: python,
            }))
        }
        RuntimeFamily::Node { .. } => {
            let node = locator.interpreter(runtime)?;
            Ok(Ok(Launch {
                args: vec![
                    inside
                        .runtime_dir
                        .join("node/bootstrap.js")
                        .to_string_lossy()
                        .into_owned(),
                ],
                interpreter_prefix: prefix(&node),
                cwd: None,
                program: node,
            }))
        }
        RuntimeFamily::Unsupported => Err(SchedulerError::RuntimeUnavailable(format!(
            "The runtime {runtime} is not supported by Kindling (supported: provided*, python3.x, nodejs*)."
        ))),
    }
}

/// `/x/bin/python3.12` -> `/x`.
fn prefix(binary: &Path) -> Option<PathBuf> {
    binary.parent()?.parent().map(Path::to_path_buf)
}

/// Everything Lambda puts in a runtime's environment (§3.6), then the user's variables.
pub(crate) struct EnvVars<'a> {
    pub rec: &'a VersionRecord,
    pub region: &'a str,
    pub runtime_api: &'a str,
    pub log_stream: &'a str,
    pub inside: &'a Inside<'a>,
    pub credentials: &'a [(String, String)],
}

impl EnvVars<'_> {
    pub fn build(&self) -> Vec<(String, String)> {
        let rec = self.rec;
        let spec = &rec.spec;
        let runtime = spec.runtime.as_deref().unwrap_or("provided.al2023");
        let task = self.inside.task_root.to_string_lossy();
        let opt = self.inside.opt.to_string_lossy();
        let mut vars: Vec<(String, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), self.runtime_api.into()),
            ("LAMBDA_TASK_ROOT".into(), task.to_string()),
            (
                "LAMBDA_RUNTIME_DIR".into(),
                self.inside.runtime_dir.to_string_lossy().into_owned(),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), rec.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), rec.version_label()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                spec.memory_size.to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                spec.logging.log_group.clone(),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), self.log_stream.into()),
            ("AWS_REGION".into(), self.region.into()),
            ("AWS_DEFAULT_REGION".into(), self.region.into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
            (
                "AWS_XRAY_DAEMON_ADDRESS".into(),
                "169.254.79.129:2000".into(),
            ),
            ("_AWS_XRAY_DAEMON_ADDRESS".into(), "169.254.79.129".into()),
            ("_AWS_XRAY_DAEMON_PORT".into(), "2000".into()),
            ("TZ".into(), ":UTC".into()),
            ("LANG".into(), "en_US.UTF-8".into()),
            (
                "PATH".into(),
                format!("/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:{opt}/bin"),
            ),
            (
                "LD_LIBRARY_PATH".into(),
                format!(
                    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:{task}:{task}/lib:{opt}/lib"
                ),
            ),
        ];
        if let Some(h) = &spec.handler {
            vars.push(("_HANDLER".into(), h.clone()));
        }
        match family(runtime) {
            RuntimeFamily::Python { minor } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
                vars.push((
                    "PYTHONPATH".into(),
                    format!("{opt}/python/lib/python3.{minor}/site-packages:{opt}/python"),
                ));
            }
            RuntimeFamily::Node { major } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
                vars.push((
                    "NODE_PATH".into(),
                    format!("{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:{task}/node_modules"),
                ));
            }
            _ => {}
        }
        if spec.logging.log_format == "JSON" {
            vars.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
            if let Some(level) = &spec.logging.application_log_level {
                vars.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
            }
        }
        vars.extend(self.credentials.iter().cloned());
        // User variables last: they may override LANG, PATH, LD_LIBRARY_PATH, TZ, PYTHONPATH...
        for (k, v) in spec.environment.iter().flatten() {
            vars.retain(|(existing, _)| existing != k);
            vars.push((k.clone(), v.clone()));
        }
        vars
    }
}
