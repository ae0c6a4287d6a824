//! How a runtime is started: the command line (interpreters found by `locate`), and the
//! environment variables Lambda gives a runtime process.

use std::path::{Path, PathBuf};

use kindling_model::function::VersionRecord;
use kindling_model::runtime::{Availability, RuntimeFamily, family};

use crate::arch;
use crate::error::SchedulerError;
use crate::java;
use crate::locate::{Resolved, RuntimeLocator, is_executable};

/// What to execute for a runtime, as host paths (the caller maps them for the sandbox).
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Host paths the runtime needs visible (read-only, same path) inside the sandbox: the
    /// interpreter's installation prefix, Java's build cache.
    pub visible: Vec<PathBuf>,
    /// What runs instead of what the function asked for (another version, emulation): written
    /// into the function's log at each cold start.
    pub note: Option<String>,
    /// Working directory, when not the task root (a container image's `WORKDIR`).
    pub cwd: Option<PathBuf>,
}

/// Paths as the runtime sees them.
pub(crate) struct Inside<'a> {
    pub task_root: &'a Path,
    pub opt: &'a Path,
    pub runtime_dir: &'a Path,
}

fn runtime_file(inside: &Inside<'_>, relative: &str) -> String {
    inside
        .runtime_dir
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

/// The user's `JAVA_TOOL_OPTIONS`, if any.
fn tool_options(rec: &VersionRecord) -> &str {
    rec.spec
        .environment
        .as_ref()
        .and_then(|e| e.get("JAVA_TOOL_OPTIONS"))
        .map_or("", String::as_str)
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
    let architecture = rec
        .spec
        .architectures
        .first()
        .map_or("x86_64", String::as_str);
    let fam = family(runtime);
    let arch_note = if fam == RuntimeFamily::Provided {
        match arch::availability(architecture) {
            Availability::Exact => None,
            Availability::Substitute(n) => Some(n),
            Availability::Missing(m) => return Err(SchedulerError::RuntimeUnavailable(m)),
        }
    } else {
        arch::interpreter_note(runtime, architecture)
    };
    let mut launch = match fam {
        RuntimeFamily::Provided => {
            let candidates = [
                (
                    host_task_root.join("bootstrap"),
                    inside.task_root.join("bootstrap"),
                ),
                (
                    host_opt.map_or_else(PathBuf::new, |o| o.join("bootstrap")),
                    inside.opt.join("bootstrap"),
                ),
            ];
            let Some((host, program)) =
                candidates.into_iter().find(|(host, _)| is_executable(host))
            else {
                return Ok(Err(format!(
                    "Couldn't find valid bootstrap(s): [{} {}]",
                    inside.task_root.join("bootstrap").display(),
                    inside.opt.join("bootstrap").display()
                )));
            };
            // Never a binary of one architecture run as a function of the other (binfmt
            // emulation would run an arm64 binary for an x86_64 function, too).
            if let Err(m) = arch::check_binary(&host, architecture) {
                return Ok(Err(m.replace(
                    &host.display().to_string(),
                    &program.display().to_string(),
                )));
            }
            Launch {
                program,
                args: vec![],
                visible: vec![],
                note: None,
                cwd: None,
            }
        }
        RuntimeFamily::Python { .. } | RuntimeFamily::Node { .. } => {
            match bootstrap_launch(runtime, locator, inside)? {
                Some(l) => l,
                None => {
                    return Err(SchedulerError::RuntimeUnavailable(format!(
                        "{runtime}: no bootstrap"
                    )));
                }
            }
        }
        RuntimeFamily::Ruby { .. } => {
            let r = locator.resolve(runtime)?;
            interpreted(
                r,
                vec![
                    "--disable-gems".into(),
                    runtime_file(inside, "ruby/bootstrap.rb"),
                ],
            )
        }
        RuntimeFamily::Java { .. } => {
            let r = locator.resolve(runtime)?;
            let build = r.java.clone().ok_or_else(|| {
                SchedulerError::RuntimeUnavailable(format!("{runtime}: no Java runtime build"))
            })?;
            let mut args = java::jvm_flags(
                rec.spec.memory_size,
                tool_options(rec),
                build.archive.as_deref(),
                true,
            );
            if inside.opt != Path::new("/opt") {
                args.push(format!("-Dkindling.opt={}", inside.opt.display()));
            }
            args.push("-cp".into());
            args.push(build.jar.to_string_lossy().into_owned());
            args.push(java::MAIN_CLASS.into());
            let mut l = interpreted(r, args);
            l.visible.push(build.dir.clone());
            l
        }
        RuntimeFamily::Unsupported => {
            // Refused at CreateFunction; a function stored before that check reaches here.
            locator.resolve(runtime)?;
            return Err(SchedulerError::RuntimeUnavailable(format!(
                "The runtime {runtime} is not supported by Kindling."
            )));
        }
    };
    let notes: Vec<String> = [arch_note, launch.note.take()]
        .into_iter()
        .flatten()
        .collect();
    launch.note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(Ok(launch))
}

/// The command of a Python or Node.js runtime (an interpreter running Kindling's bootstrap),
/// which depends on the runtime alone: what a pre-initialized environment runs. `None` for
/// the other families.
pub(crate) fn bootstrap_launch(
    runtime: &str,
    locator: &RuntimeLocator,
    inside: &Inside<'_>,
) -> Result<Option<Launch>, SchedulerError> {
    Ok(match family(runtime) {
        RuntimeFamily::Python { .. } => {
            let r = locator.resolve(runtime)?;
            // The bootstrap compiled by this interpreter (not its source: see python.rs).
            let source = runtime_file(inside, "python/bootstrap.py");
            let script = locator
                .python_bootstrap(&r.program, &source)
                .map_or(source, |pyc| runtime_file(inside, &pyc));
            Some(interpreted(
                r,
                vec!["-I".into(), "-S".into(), "-u".into(), script],
            ))
        }
        RuntimeFamily::Node { .. } => Some(interpreted(
            locator.resolve(runtime)?,
            vec![runtime_file(inside, "node/bootstrap.js")],
        )),
        _ => None,
    })
}

/// Lambda's `PATH` for runtimes.
pub(crate) fn base_path(opt: &str) -> String {
    format!("/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:{opt}/bin")
}

/// Lambda's `LD_LIBRARY_PATH` for runtimes.
pub(crate) fn base_ld_library_path(task: &str, opt: &str) -> String {
    format!(
        "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:{task}:{task}/lib:{opt}/lib"
    )
}

/// An interpreter (`r`) running one of Kindling's bootstraps.
fn interpreted(r: Resolved, args: Vec<String>) -> Launch {
    Launch {
        visible: prefix(&r.program).into_iter().collect(),
        note: r.note,
        cwd: None,
        args,
        program: r.program,
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
    /// Kindling's API as the environment reaches it (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<&'a str>,
    pub log_stream: &'a str,
    pub inside: &'a Inside<'a>,
    pub credentials: &'a [(String, String)],
    /// Which AWS SDKs `kindling runtimes install-sdks` installed.
    pub sdks: Sdks,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`: `on-demand` or `provisioned-concurrency`.
    pub initialization_type: &'a str,
}

/// Where `kindling runtimes install-sdks` puts boto3 (`pip install --target`), relative to
/// the runtime directory (`/var/runtime` inside sandboxes).
pub const PYTHON_SDK: &str = "sdk/python";
/// Where it puts the AWS SDK for JavaScript v3 clients (`npm install --prefix sdk/nodejs`).
pub const NODE_SDK: &str = "sdk/nodejs/node_modules";

/// The SDKs present in a runtime directory.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sdks {
    pub python: bool,
    pub node: bool,
}

impl Sdks {
    /// Looks in the host's runtime directory (a `stat` each; installs appear without restart).
    pub fn find(runtime_dir: &Path) -> Self {
        Self {
            python: runtime_dir.join(PYTHON_SDK).join("boto3").is_dir(),
            node: runtime_dir.join(NODE_SDK).join("@aws-sdk").is_dir(),
        }
    }
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
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".into(),
                self.initialization_type.into(),
            ),
            ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
            (
                "AWS_XRAY_DAEMON_ADDRESS".into(),
                "169.254.79.129:2000".into(),
            ),
            ("_AWS_XRAY_DAEMON_ADDRESS".into(), "169.254.79.129".into()),
            ("_AWS_XRAY_DAEMON_PORT".into(), "2000".into()),
            ("TZ".into(), ":UTC".into()),
            ("LANG".into(), "en_US.UTF-8".into()),
            ("PATH".into(), base_path(&opt)),
            ("LD_LIBRARY_PATH".into(), base_ld_library_path(&task, &opt)),
        ];
        if let Some(h) = &spec.handler {
            vars.push(("_HANDLER".into(), h.clone()));
        }
        match family(runtime) {
            RuntimeFamily::Python { minor } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
                // Lambda's order: the function (task root, first on sys.path), its layers, then
                // the runtime's own AWS SDK (boto3).
                let mut path =
                    format!("{opt}/python/lib/python3.{minor}/site-packages:{opt}/python");
                if self.sdks.python {
                    path.push(':');
                    path.push_str(&runtime_file(self.inside, PYTHON_SDK));
                }
                vars.push(("PYTHONPATH".into(), path));
            }
            RuntimeFamily::Node { major } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
                let mut path = format!(
                    "{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:{task}/node_modules"
                );
                if self.sdks.node {
                    path.push(':');
                    path.push_str(&runtime_file(self.inside, NODE_SDK));
                }
                vars.push(("NODE_PATH".into(), path));
            }
            RuntimeFamily::Ruby { major, minor } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
                vars.push(("RUBYLIB".into(), format!("{task}:{opt}/ruby/lib")));
                vars.push((
                    "GEM_PATH".into(),
                    format!(
                        "{task}/vendor/bundle/ruby/{major}.{minor}.0:{opt}/ruby/gems/{major}.{minor}.0:"
                    ),
                ));
            }
            RuntimeFamily::Java { .. } => {
                vars.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")));
            }
            RuntimeFamily::Provided | RuntimeFamily::Unsupported => {}
        }
        if spec.logging.log_format == "JSON" {
            vars.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
            if let Some(level) = &spec.logging.application_log_level {
                vars.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
            }
        }
        if let Some(url) = self.endpoint {
            // Every AWS SDK (boto3 1.28+, JS v3, Java v2, Go v2, Ruby) honours it: the
            // function's SDK calls reach Kindling with no code change.
            vars.push(("AWS_ENDPOINT_URL".into(), url.into()));
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
