//! Which interpreter runs a runtime on this host: the exact version when the host has it,
//! else the nearest one with a note that reaches the function's log, else a clear refusal
//! naming what is missing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use kindling_model::runtime::{Availability, RuntimeFamily, RuntimeSupport, family};

use crate::arch;
use crate::error::SchedulerError;
use crate::java::{self, JavaBuild, Jdk};
use crate::python;

/// Explicit interpreter choices, e.g. `python3.12 -> /opt/py312/bin/python3.12`, and where to
/// look for the others.
#[derive(Debug, Clone, Default)]
pub struct RuntimePaths {
    pub interpreters: BTreeMap<String, PathBuf>,
    /// Directories searched for interpreters, in order (never pyenv shim directories).
    pub search_dirs: Vec<PathBuf>,
    /// Kindling's runtime sources (`java/src/...`), as installed in the data directory.
    pub runtime_dir: PathBuf,
    /// Where built artifacts (the compiled Java runtime, CDS archives) are kept. Must appear
    /// at the same path inside sandboxes (it is made visible read-only).
    pub cache_dir: PathBuf,
}

/// The interpreter chosen for a runtime.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub program: PathBuf,
    /// Set when the host runs another version than the one asked for: what runs instead.
    pub note: Option<String>,
    /// Java only: the compiled runtime and its CDS archive for this JDK.
    pub java: Option<Arc<JavaBuild>>,
}

/// Finds real interpreter binaries for runtimes and remembers what it found.
#[derive(Debug)]
pub struct RuntimeLocator {
    paths: RuntimePaths,
    cache: Mutex<HashMap<String, Result<Resolved, String>>>,
    /// Serializes one-off builds (two first Java starts compile once).
    building: Mutex<()>,
    /// Kindling's Python bootstrap compiled per (interpreter, path shown): `None` when that
    /// failed (the runtime then runs the source; not retried until Kindling restarts).
    bytecode: Mutex<HashMap<(PathBuf, String), Option<String>>>,
}

pub(crate) fn is_executable(p: &Path) -> bool {
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

/// The first line a binary prints for `--version` (empty when it cannot run).
fn version_output(p: &Path) -> String {
    Command::new(p)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

impl RuntimeLocator {
    pub fn new(paths: RuntimePaths) -> Self {
        Self {
            paths,
            cache: Mutex::new(HashMap::new()),
            building: Mutex::new(()),
            bytecode: Mutex::new(HashMap::new()),
        }
    }

    /// The `.pyc` of Kindling's Python bootstrap for the interpreter `python` (relative to the
    /// runtime directory), its code naming `shown_as` as its file (see
    /// `python::bootstrap_bytecode`); `None` when it cannot be made (a warning says why, once).
    /// Blocking the first time per interpreter.
    pub(crate) fn python_bootstrap(&self, python: &Path, shown_as: &str) -> Option<String> {
        let key = (python.to_path_buf(), shown_as.to_string());
        let lock = || self.bytecode.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = lock().get(&key) {
            return found.clone();
        }
        let made = {
            let _one = self.building.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = lock().get(&key) {
                return found.clone();
            }
            python::bootstrap_bytecode(python, &self.paths.runtime_dir, shown_as)
        };
        let made = made
            .inspect_err(|e| {
                tracing::warn!(python = %python.display(), error = %e, "running the Python bootstrap from source: every idle environment keeps ~2 MB more and each start takes ~15 ms more CPU");
            })
            .ok();
        lock().insert(key, made.clone());
        made
    }

    /// Directory of one-off builds (visible read-only inside sandboxes at the same path).
    pub fn cache_dir(&self) -> &Path {
        &self.paths.cache_dir
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

    /// The interpreter for `runtime` (`python3.12`, `nodejs20.x`, `java21`, `ruby3.3`).
    pub(crate) fn resolve(&self, runtime: &str) -> Result<Resolved, SchedulerError> {
        let lock = || self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = lock().get(runtime) {
            return r.clone().map_err(SchedulerError::RuntimeUnavailable);
        }
        let found = self.discover(runtime);
        // A failed build is retried next time (the host may have been fixed); a found
        // interpreter is remembered.
        if found.is_ok() {
            lock().insert(runtime.to_string(), found.clone());
        }
        if let Ok(r) = &found
            && let Some(note) = &r.note
        {
            tracing::warn!(runtime, using = %r.program.display(), "{note}");
        }
        found.map_err(SchedulerError::RuntimeUnavailable)
    }

    fn discover(&self, runtime: &str) -> Result<Resolved, String> {
        let plain = |program: PathBuf| Resolved {
            program,
            note: None,
            java: None,
        };
        let fam = family(runtime);
        if let Some(p) = self.paths.interpreters.get(runtime) {
            if !is_executable(p) {
                return Err(format!(
                    "The runtime {runtime} cannot run on this Kindling host: --runtime \
                     {runtime}={} names no executable file.",
                    p.display()
                ));
            }
            if let RuntimeFamily::Java { .. } = fam {
                let jdk = Jdk::probe(p).ok_or_else(|| {
                    format!(
                        "--runtime {runtime}={} is not the java binary of a JDK",
                        p.display()
                    )
                })?;
                return self.java_resolved(runtime, &jdk, None);
            }
            return Ok(plain(p.clone()));
        }
        match fam {
            RuntimeFamily::Python { minor } => self.python(runtime, minor),
            RuntimeFamily::Node { major } => self.node(runtime, major),
            RuntimeFamily::Ruby { major, minor } => self.ruby(runtime, major, minor),
            RuntimeFamily::Java { major } => self.java(runtime, major),
            RuntimeFamily::Provided => Err(format!("{runtime} needs no interpreter")),
            RuntimeFamily::Unsupported => Err(format!(
                "The runtime {runtime} is not supported by Kindling: it has no {} runtime \
                 (supported: provided.al2023, provided.al2, python3.x, nodejsNN.x, java17, \
                 java21, java25, ruby3.x); package the function as a custom runtime \
                 (provided.al2023 with a bootstrap) instead.",
                language(runtime)
            )),
        }
    }

    fn python(&self, runtime: &str, minor: u32) -> Result<Resolved, String> {
        if let Some(p) = self.find(&[format!("python3.{minor}")]) {
            return Ok(Resolved {
                program: p,
                note: None,
                java: None,
            });
        }
        // The nearest other 3.x (the newer one on a tie).
        let mut others: Vec<u32> = (6..=30).filter(|m| *m != minor).collect();
        others.sort_by_key(|m| (m.abs_diff(minor), std::cmp::Reverse(*m)));
        for other in others {
            if let Some(p) = self.find(&[format!("python3.{other}")]) {
                return Ok(Resolved {
                    note: Some(format!(
                        "runtime {runtime} runs on Python 3.{other} ({}): this host has no \
                         python3.{minor} (install it, or map one with --runtime {runtime}=PATH)",
                        p.display()
                    )),
                    program: p,
                    java: None,
                });
            }
        }
        Err(format!(
            "The runtime {runtime} cannot run on this Kindling host: no Python 3 interpreter \
             (python3.{minor} or any python3.x) was found on the search path; install one \
             (Debian: apt-get install python3) or map one with --runtime {runtime}=PATH."
        ))
    }

    fn node(&self, runtime: &str, major: u32) -> Result<Resolved, String> {
        let p = self
            .find(&[format!("node{major}"), "node".into(), "nodejs".into()])
            .ok_or_else(|| {
                format!(
                    "The runtime {runtime} cannot run on this Kindling host: no Node.js (node) \
                     was found on the search path; install it (Debian: apt-get install nodejs) \
                     or map one with --runtime {runtime}=PATH."
                )
            })?;
        let version = version_output(&p);
        let note = (!version.starts_with(&format!("v{major}."))).then(|| {
            format!(
                "runtime {runtime} runs on Node.js {} ({}): this host has no Node.js {major} \
                 (install it, or map one with --runtime {runtime}=PATH)",
                if version.is_empty() {
                    "of unknown version"
                } else {
                    &version
                },
                p.display()
            )
        });
        Ok(Resolved {
            program: p,
            note,
            java: None,
        })
    }

    fn ruby(&self, runtime: &str, major: u32, minor: u32) -> Result<Resolved, String> {
        let p = self
            .find(&[format!("ruby{major}.{minor}"), "ruby".into()])
            .ok_or_else(|| {
                format!(
                    "The runtime {runtime} cannot run on this Kindling host: no Ruby interpreter \
                     (ruby{major}.{minor} or ruby) was found on the search path; install it \
                     (Debian: apt-get install ruby) or map one with --runtime {runtime}=PATH."
                )
            })?;
        // `ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]`
        let version = version_output(&p);
        let number = version.split_whitespace().nth(1).unwrap_or_default();
        let exact = number.starts_with(&format!("{major}.{minor}."));
        let note = (!exact).then(|| {
            format!(
                "runtime {runtime} runs on Ruby {} ({}): this host has no Ruby {major}.{minor} \
                 (install it, or map one with --runtime {runtime}=PATH)",
                if number.is_empty() {
                    "of unknown version"
                } else {
                    number
                },
                p.display()
            )
        });
        Ok(Resolved {
            program: p,
            note,
            java: None,
        })
    }

    fn java(&self, runtime: &str, major: u32) -> Result<Resolved, String> {
        let jdks = java::installed(&self.paths.search_dirs);
        let jdk = java::choose(&jdks, major).ok_or_else(|| {
            let seen = if jdks.is_empty() {
                "none was found".to_string()
            } else {
                format!(
                    "only {} found",
                    jdks.iter()
                        .map(|j| format!("Java {} ({})", j.version, j.java.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!(
                "The runtime {runtime} cannot run on this Kindling host: it needs a JDK 17 or \
                 later (Kindling's Java runtime is compiled for 17), {seen}; install one \
                 (Debian: apt-get install openjdk-17-jdk-headless) or map one with --runtime \
                 {runtime}=/path/to/bin/java."
            )
        })?;
        let note = (jdk.major != major).then(|| {
            let mut n = format!(
                "runtime {runtime} runs on Java {} ({}): this host has no Java {major}",
                jdk.version,
                jdk.java.display()
            );
            if jdk.major < major {
                n.push_str(&format!(
                    "; classes compiled for Java {major} will not load on Java {}",
                    jdk.major
                ));
            }
            n
        });
        self.java_resolved(runtime, jdk, note)
    }

    fn java_resolved(
        &self,
        runtime: &str,
        jdk: &Jdk,
        note: Option<String>,
    ) -> Result<Resolved, String> {
        let javac = jdk
            .javac()
            .or_else(|| {
                java::installed(&self.paths.search_dirs)
                    .iter()
                    .find_map(Jdk::javac)
            })
            .ok_or_else(|| {
                format!(
                    "The runtime {runtime} cannot run on this Kindling host: {} is a JRE; \
                     Kindling needs a JDK's javac once to compile its Java runtime (Debian: \
                     apt-get install openjdk-17-jdk-headless).",
                    jdk.java.display()
                )
            })?;
        let build = {
            let _one = self.building.lock().unwrap_or_else(PoisonError::into_inner);
            java::build(&self.paths.runtime_dir, &self.paths.cache_dir, jdk, &javac).map_err(
                |e| format!("The runtime {runtime} cannot run on this Kindling host: {e}"),
            )?
        };
        Ok(Resolved {
            program: jdk.java.clone(),
            note,
            java: Some(Arc::new(build)),
        })
    }
}

/// The language a runtime identifier names, for messages.
fn language(runtime: &str) -> &'static str {
    if runtime.starts_with("dotnet") {
        ".NET"
    } else if runtime.starts_with("go") {
        "Go 1.x managed"
    } else {
        "such"
    }
}

impl RuntimeSupport for RuntimeLocator {
    fn availability(&self, runtime: Option<&str>, architecture: &str) -> Availability {
        let (arch_note, runtime_note) = match runtime.map(|r| (r, family(r))) {
            // Binaries of the function's own: its architecture must run here.
            None | Some((_, RuntimeFamily::Provided)) => match arch::availability(architecture) {
                Availability::Missing(m) => return Availability::Missing(m),
                Availability::Substitute(n) => (Some(n), None),
                Availability::Exact => (None, None),
            },
            Some((r, _)) => match self.resolve(r) {
                Ok(resolved) => (arch::interpreter_note(r, architecture), resolved.note),
                Err(e) => return Availability::Missing(e.to_string()),
            },
        };
        let notes: Vec<String> = [arch_note, runtime_note].into_iter().flatten().collect();
        if notes.is_empty() {
            Availability::Exact
        } else {
            Availability::Substitute(notes.join("; "))
        }
    }
}
