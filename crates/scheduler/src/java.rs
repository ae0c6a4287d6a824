//! Java: the JDKs on the host, Kindling's Java runtime compiled once per source version, a
//! class-data-sharing archive per JDK, and Lambda's JVM flags (runtimes/README.md, "Java").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The bootstrap's main class.
pub(crate) const MAIN_CLASS: &str = "kindling.runtime.Bootstrap";

/// One JDK or JRE on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jdk {
    /// The `java` binary (symlinks resolved).
    pub java: PathBuf,
    /// Feature version (`17` for `17.0.13`, `8` for `1.8.0_402`).
    pub major: u32,
    /// `JAVA_VERSION` from `release`.
    pub version: String,
    /// `JAVA_RUNTIME_VERSION` from `release` (the exact build; keys the CDS archive).
    pub runtime_version: String,
}

impl Jdk {
    /// Reads `<home>/release` of the JDK that `java` belongs to.
    pub fn probe(java: &Path) -> Option<Self> {
        let java = java.canonicalize().ok()?;
        let home = java.parent()?.parent()?;
        let release = std::fs::read_to_string(home.join("release")).ok()?;
        let value = |key: &str| {
            release.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        let version = value("JAVA_VERSION")?;
        let major = feature_version(&version)?;
        let runtime_version = value("JAVA_RUNTIME_VERSION").unwrap_or_else(|| version.clone());
        Some(Self {
            java,
            major,
            version,
            runtime_version,
        })
    }

    /// The `javac` of this JDK, if it is a JDK.
    pub fn javac(&self) -> Option<PathBuf> {
        let p = self.java.with_file_name("javac");
        p.is_file().then_some(p)
    }
}

/// `17.0.13` -> 17, `1.8.0_402` -> 8, `25` -> 25.
fn feature_version(v: &str) -> Option<u32> {
    let mut parts = v.split(['.', '_', '+', '-']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// Every JDK in `/usr/lib/jvm` and every `java` on the search path, newest first.
pub(crate) fn installed(search_dirs: &[PathBuf]) -> Vec<Jdk> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin/java"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates.extend(search_dirs.iter().map(|d| d.join("java")));
    let mut found: Vec<Jdk> = Vec::new();
    for c in candidates {
        if let Some(jdk) = Jdk::probe(&c)
            && !found.iter().any(|j| j.java == jdk.java)
        {
            found.push(jdk);
        }
    }
    found.sort_by(|a, b| b.major.cmp(&a.major).then_with(|| a.java.cmp(&b.java)));
    found
}

/// The JDK for `javaN`: that major version; else the nearest newer one (classes compiled for N
/// load on newer JVMs), else the newest older one at 17 or above (Kindling's runtime needs 17).
pub(crate) fn choose(jdks: &[Jdk], wanted: u32) -> Option<&Jdk> {
    let usable = || jdks.iter().filter(|j| j.major >= 17);
    usable()
        .find(|j| j.major == wanted)
        .or_else(|| {
            usable()
                .filter(|j| j.major > wanted)
                .min_by_key(|j| j.major)
        })
        .or_else(|| usable().max_by_key(|j| j.major))
}

/// Kindling's Java runtime, compiled, and the CDS archive for one JDK (when one could be made).
#[derive(Debug, Clone)]
pub(crate) struct JavaBuild {
    pub jar: PathBuf,
    pub archive: Option<PathBuf>,
    /// The directory both live in (visible inside sandboxes at the same path).
    pub dir: PathBuf,
}

/// A stable 64-bit FNV-1a hash (keys the on-disk cache across Kindling versions).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The Java sources under `<runtime_dir>/java/src/kindling/runtime`, sorted.
fn sources(runtime_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = runtime_dir.join("java/src/kindling/runtime");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    files.sort();
    Ok(files)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(format!("{what} failed ({}): {tail}", out.status))
    }
}

/// Compiles the runtime into `<cache>/java/<hash>/kindling-java-runtime.jar` (once per source
/// version) with `javac`, and makes the CDS archive for `jdk` next to it (once per JDK build).
/// Blocking: seconds the first time, a few `stat`s afterwards.
pub(crate) fn build(
    runtime_dir: &Path,
    cache: &Path,
    jdk: &Jdk,
    javac: &Path,
) -> Result<JavaBuild, String> {
    let files = sources(runtime_dir).map_err(|e| {
        format!(
            "Kindling's Java runtime sources are missing under {}: {e}",
            runtime_dir.display()
        )
    })?;
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading Kindling's Java runtime sources: {e}"))?;
    let parts: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
    let dir = cache.join("java").join(format!("{:016x}", fnv1a(&parts)));
    let jar = dir.join("kindling-java-runtime.jar");
    if !jar.is_file() {
        compile(&files, &dir, &jar, javac)?;
    }
    let key = fnv1a(&[
        jdk.java.as_os_str().as_encoded_bytes(),
        jdk.runtime_version.as_bytes(),
    ]);
    let archive = dir.join(format!("jdk-{}-{key:016x}.jsa", jdk.major));
    let archive = if archive.is_file() {
        Some(archive)
    } else {
        match create_archive(jdk, &jar, &archive) {
            Ok(()) => Some(archive),
            Err(e) => {
                tracing::warn!(java = %jdk.java.display(), error = %e, "no CDS archive; Java cold starts take ~20 ms longer");
                None
            }
        }
    };
    Ok(JavaBuild { jar, archive, dir })
}

fn compile(files: &[PathBuf], dir: &Path, jar: &Path, javac: &Path) -> Result<(), String> {
    let staging = dir.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let classes = staging.join("classes");
    std::fs::create_dir_all(&classes)
        .map_err(|e| format!("creating {}: {e}", classes.display()))?;
    let result = (|| {
        run(
            Command::new(javac)
                .args([
                    "--release",
                    "17",
                    "-XDstringConcat=inline",
                    "-encoding",
                    "UTF-8",
                    "-nowarn",
                    "-d",
                ])
                .arg(&classes)
                .args(files),
            "compiling Kindling's Java runtime (javac)",
        )?;
        let jar_tool = javac.with_file_name("jar");
        let staged_jar = staging.join("kindling-java-runtime.jar");
        run(
            Command::new(&jar_tool)
                .arg("--create")
                .arg("--file")
                .arg(&staged_jar)
                .arg("-C")
                .arg(&classes)
                .arg("."),
            "packing Kindling's Java runtime (jar)",
        )?;
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        set_mode(dir, 0o755);
        set_mode(&staged_jar, 0o644);
        // Concurrent first starts: whoever renames first wins; the jar never appears half-written.
        std::fs::rename(&staged_jar, jar).map_err(|e| format!("installing the jar: {e}"))
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

/// A training run writes the classes a cold start loads; a check run must accept the archive.
fn create_archive(jdk: &Jdk, jar: &Path, archive: &Path) -> Result<(), String> {
    let tmp = archive.with_extension(format!("jsa.tmp-{}", uuid::Uuid::new_v4().simple()));
    let flags = jvm_flags(256, "", None, false);
    let result = run(
        Command::new(&jdk.java)
            .arg(format!("-XX:ArchiveClassesAtExit={}", tmp.display()))
            .arg("-Xlog:cds*=off")
            .args(&flags)
            .arg("-cp")
            .arg(jar)
            .args([MAIN_CLASS, "--cds-training"]),
        "CDS training run",
    )
    .and_then(|()| {
        run(
            Command::new(&jdk.java)
                .arg("-Xshare:on")
                .arg(format!("-XX:SharedArchiveFile={}", tmp.display()))
                .args(&flags)
                .arg("-cp")
                .arg(jar)
                .args([MAIN_CLASS, "--cds-check"]),
            "CDS check run",
        )
    })
    .and_then(|()| {
        set_mode(&tmp, 0o644);
        std::fs::rename(&tmp, archive).map_err(|e| format!("installing the archive: {e}"))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// True when `options` holds `-XX:+Use…GC` or `-XX:-Use…GC` (a GC choice).
fn chooses_gc(options: &str) -> bool {
    options.split_whitespace().any(|o| {
        o.strip_prefix("-XX:+")
            .or_else(|| o.strip_prefix("-XX:-"))
            .is_some_and(|f| f.starts_with("Use") && f.ends_with("GC"))
    })
}

/// Lambda's JVM flags for a function of `memory_mb`, minus each group the user's
/// `JAVA_TOOL_OPTIONS` sets itself (the JVM reads that variable before the command line, so a
/// default here would override the user's choice).
pub(crate) fn jvm_flags(
    memory_mb: u32,
    tool_options: &str,
    archive: Option<&Path>,
    include_cds: bool,
) -> Vec<String> {
    let o = tool_options;
    let has = |needles: &[&str]| needles.iter().any(|n| o.contains(n));
    let mut flags = Vec::new();
    if !has(&["-Xmx", "MaxHeapSize", "MaxRAM"]) {
        // 85% of the function's memory, as Lambda (-XX:MaxHeapSize=445645k at 512 MB).
        let kb = (u64::from(memory_mb) * 1024 * 85).div_ceil(100);
        flags.push(format!("-XX:MaxHeapSize={kb}k"));
    }
    if !chooses_gc(o) {
        flags.push("-XX:+UseSerialGC".into());
    }
    if !has(&["TieredCompilation", "TieredStopAtLevel"]) {
        flags.push("-XX:+TieredCompilation".into());
        flags.push("-XX:TieredStopAtLevel=1".into());
    }
    if include_cds && !has(&["-Xshare", "SharedArchiveFile"]) {
        flags.push("-Xshare:auto".into());
        if let Some(a) = archive {
            flags.push(format!("-XX:SharedArchiveFile={}", a.display()));
            flags.push("-Xlog:cds*=off".into());
        }
    }
    if !has(&["file.encoding"]) {
        flags.push("-Dfile.encoding=UTF-8".into());
    }
    flags.extend(
        [
            "-XX:-UsePerfData",
            "-Djava.net.preferIPv4Stack=true",
            "-XX:+ErrorFileToStderr",
        ]
        .map(String::from),
    );
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(feature_version("17.0.13"), Some(17));
        assert_eq!(feature_version("1.8.0_402"), Some(8));
        assert_eq!(feature_version("25"), Some(25));
        assert_eq!(feature_version("21-ea"), Some(21));
        assert_eq!(feature_version("x"), None);
    }

    fn jdk(major: u32) -> Jdk {
        Jdk {
            java: PathBuf::from(format!("/jvm/{major}/bin/java")),
            major,
            version: format!("{major}.0.1"),
            runtime_version: format!("{major}.0.1+1"),
        }
    }

    #[test]
    fn choice() {
        let jdks = vec![jdk(25), jdk(17), jdk(11)];
        assert_eq!(choose(&jdks, 17).map(|j| j.major), Some(17));
        assert_eq!(choose(&jdks, 21).map(|j| j.major), Some(25));
        assert_eq!(choose(&jdks, 11).map(|j| j.major), Some(17));
        assert_eq!(choose(&[jdk(17)], 25).map(|j| j.major), Some(17));
        assert_eq!(choose(&[jdk(11)], 11), None);
    }

    #[test]
    fn flags_follow_java_tool_options() {
        let all = jvm_flags(512, "", Some(Path::new("/c/a.jsa")), true);
        assert!(
            all.contains(&"-XX:MaxHeapSize=445645k".to_string()),
            "{all:?}"
        );
        assert!(all.contains(&"-XX:+UseSerialGC".to_string()));
        assert!(all.contains(&"-XX:SharedArchiveFile=/c/a.jsa".to_string()));
        let user = jvm_flags(
            512,
            "-Xmx300m -XX:+UseParallelGC -XX:TieredStopAtLevel=4 -Xshare:off",
            Some(Path::new("/c/a.jsa")),
            true,
        );
        assert!(!user.iter().any(|f| f.contains("MaxHeapSize")), "{user:?}");
        assert!(!user.iter().any(|f| f.contains("GC")), "{user:?}");
        assert!(!user.iter().any(|f| f.contains("Tiered")), "{user:?}");
        assert!(!user.iter().any(|f| f.contains("share")), "{user:?}");
        assert!(user.contains(&"-Dfile.encoding=UTF-8".to_string()));
    }
}
