//! `kindling runtimes install-sdks`: the AWS SDKs Lambda's managed runtimes bundle (boto3 for
//! Python, the AWS SDK for JavaScript v3 clients for Node.js), installed once with the host's
//! pip and npm into `<data-dir>/runtime/sdk/` (`/var/runtime/sdk/` inside sandboxes). Functions
//! find them after their own code and layers (PYTHONPATH / NODE_PATH, see the scheduler).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use kindling_scheduler::{NODE_SDK, PYTHON_SDK};

use crate::cli::{InstallSdksArgs, SdkKind};

/// The JavaScript v3 clients installed: the services Kindling serves, plus the ones functions
/// most often import (their calls get Kindling's answer for an unknown service instead of an
/// import error).
pub const NODE_CLIENTS: &[&str] = &[
    "@aws-sdk/client-lambda",
    "@aws-sdk/client-sqs",
    "@aws-sdk/client-sns",
    "@aws-sdk/client-s3",
    "@aws-sdk/client-sts",
    "@aws-sdk/client-cloudwatch-logs",
    "@aws-sdk/client-eventbridge",
    "@aws-sdk/client-dynamodb",
];

/// Written last into an SDK directory: the install is complete.
const MARKER: &str = ".kindling-sdk";

pub fn install(args: &InstallSdksArgs) -> anyhow::Result<()> {
    let runtime_dir = args.dir.data_dir.join("runtime");
    private_dir(&args.dir.data_dir)?;
    let mut problems = Vec::new();
    let wanted = |k: SdkKind| args.only.is_none_or(|o| o == k);
    if wanted(SdkKind::Python) {
        let dir = runtime_dir.join(PYTHON_SDK);
        if let Err(e) = python(&dir, args) {
            problems.push(format!("boto3: {e:#}"));
        }
    }
    if wanted(SdkKind::Node) {
        let dir = runtime_dir.join(NODE_SDK);
        if let Err(e) = node(&dir, args) {
            problems.push(format!("@aws-sdk v3 clients: {e:#}"));
        }
    }
    if !problems.is_empty() {
        bail!("missing:\n  {}", problems.join("\n  "));
    }
    println!(
        "done: functions see the SDKs at their next cold start (no restart needed); their own \
         copies (in the package or a layer) come first"
    );
    Ok(())
}

fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

/// `dir` with `.tmp-<pid>` appended (staging next to it, renamed into place when complete).
fn staging(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_os_string();
    s.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(s)
}

/// Makes `dir` and every directory up to `stop` world-readable (sandboxed users read them).
fn open_up(dir: &Path, stop: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Some(dir);
    while let Some(p) = d.filter(|p| p.starts_with(stop) && *p != stop) {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        d = p.parent();
    }
}

/// Runs a step with its output on the terminal (pip's and npm's own progress).
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); is the package registry reachable (network, proxy \
             settings)? Nothing was changed."
        );
    }
    Ok(())
}

/// Replaces `dir` with `staged` (the old copy removed only once the new one is complete).
fn swap_in(staged: &Path, dir: &Path) -> anyhow::Result<()> {
    let old = staging(dir).with_extension("old");
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(staged, dir).with_context(|| format!("installing {}", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn python(dir: &Path, args: &InstallSdksArgs) -> anyhow::Result<()> {
    if dir.join(MARKER).is_file() && !args.upgrade {
        println!(
            "boto3 {} already installed in {} (nothing downloaded; --upgrade for the newest)",
            boto3_version(dir).unwrap_or_else(|| "(unknown version)".into()),
            dir.display()
        );
        return Ok(());
    }
    let python = &args.python;
    let has_pip = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pip {
        bail!(
            "{} has no pip (Debian: apt-get install python3-pip), or pass --python with one that has",
            python.display()
        );
    }
    println!("==> boto3: pip install --target {}", dir.display());
    let staged = staging(dir);
    let _ = std::fs::remove_dir_all(&staged);
    let result = run(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "on",
                "--target",
            ])
            .arg(&staged)
            .arg("boto3"),
        "pip install boto3",
    )
    .and_then(|()| {
        std::fs::write(staged.join(MARKER), b"boto3\n")?;
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        swap_in(&staged, dir)
    });
    let _ = std::fs::remove_dir_all(&staged);
    result?;
    open_up(dir, &args.dir.data_dir);
    chmod_tree(dir);
    println!(
        "boto3 {} installed in {}",
        boto3_version(dir).unwrap_or_else(|| "(unknown version)".into()),
        dir.display()
    );
    Ok(())
}

/// `__version__ = '1.35.0'` from boto3's `__init__.py`.
fn boto3_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("boto3/__init__.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
}

fn node(modules: &Path, args: &InstallSdksArgs) -> anyhow::Result<()> {
    // `npm install --prefix P` fills P/node_modules.
    let prefix = modules
        .parent()
        .context("the Node SDK directory has no parent")?;
    if prefix.join(MARKER).is_file() && !args.upgrade {
        println!(
            "{} @aws-sdk v3 clients ({}) already installed in {} (nothing downloaded; --upgrade for the newest)",
            NODE_CLIENTS.len(),
            client_version(modules).unwrap_or_else(|| "unknown version".into()),
            modules.display()
        );
        return Ok(());
    }
    let has_npm = Command::new(&args.npm)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_npm {
        bail!(
            "npm not found ({}); install it (Debian: apt-get install npm) or pass --npm",
            args.npm.display()
        );
    }
    println!(
        "==> @aws-sdk v3 clients: npm install --prefix {} {}",
        prefix.display(),
        NODE_CLIENTS.join(" ")
    );
    let staged = staging(prefix);
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged)?;
    let result = run(
        Command::new(&args.npm)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--no-package-lock",
                "--progress=true",
                "--loglevel=http",
                "--prefix",
            ])
            .arg(&staged)
            .args(NODE_CLIENTS),
        "npm install",
    )
    .and_then(|()| {
        std::fs::write(staged.join(MARKER), NODE_CLIENTS.join("\n"))?;
        swap_in(&staged, prefix)
    });
    let _ = std::fs::remove_dir_all(&staged);
    result?;
    open_up(modules, &args.dir.data_dir);
    chmod_tree(prefix);
    println!(
        "@aws-sdk v3 clients {} installed in {}",
        client_version(modules).unwrap_or_else(|| "(unknown version)".into()),
        modules.display()
    );
    Ok(())
}

/// The version of @aws-sdk/client-lambda, from its package.json.
fn client_version(modules: &Path) -> Option<String> {
    let text = std::fs::read_to_string(modules.join("@aws-sdk/client-lambda/package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

/// Directories 0755, files readable by all (environments run as users of their own).
fn chmod_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            chmod_tree(&path);
        } else if ft.is_file()
            && let Ok(m) = e.metadata()
        {
            let mode = m.permissions().mode() | 0o444;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o755));
        }
    }
}
