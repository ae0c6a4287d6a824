//! Measures cold-start cost: `cargo run --release -p kindling-sandbox --example spawn_latency`.
//!
//! For each mode (Namespaces only as root) and `--runs` runs (default 200) it prints the
//! minimum and percentiles of:
//! - `spawn`: from calling `spawn()` until it returns, i.e. the program's `execve` succeeded;
//! - `first line`: from calling `spawn()` until `/bin/echo`'s line reached the caller;
//! - `lifecycle`: spawn, run `/bin/true`, and `wait()` (tree reaped, cgroups removed).
//!
//! Options: `--runs N`, `--tmp hostdir|tmpfs|disk` (Namespaces mode's `/tmp`, default
//! hostdir), `--no-seccomp`, `--only process|namespaces`, `--pause-ms N` (between spawns,
//! default 20).

use std::time::{Duration, Instant};

use kindling_sandbox::{EnvironmentSpec, IsolationMode, Sandbox, SandboxConfig, TmpBacking};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = 200;
    let mut tmp = TmpBacking::HostDir;
    let mut seccomp = true;
    let mut only = None;
    let mut pause = Duration::from_millis(20);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--tmp" => {
                tmp = match args.next().as_deref() {
                    Some("hostdir") => TmpBacking::HostDir,
                    Some("tmpfs") => TmpBacking::Tmpfs,
                    Some("disk") => TmpBacking::Disk,
                    _ => return Err("--tmp hostdir|tmpfs|disk".into()),
                }
            }
            "--no-seccomp" => seccomp = false,
            "--only" => only = args.next(),
            "--pause-ms" => {
                pause = Duration::from_millis(args.next().ok_or("--pause-ms N")?.parse()?)
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let task = tempfile::tempdir()?;
    std::fs::set_permissions(
        task.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let scratch = tempfile::tempdir_in("/var/tmp")?;

    let mut sandboxes = Vec::new();
    if only.as_deref() != Some("namespaces") {
        let config = SandboxConfig {
            seccomp,
            ..Default::default()
        };
        sandboxes.push(("process", Sandbox::new(IsolationMode::Process, config)?));
    }
    if only.as_deref() != Some("process") {
        let config = SandboxConfig {
            cgroup_parent: "kindling-bench".into(),
            tmp,
            tmp_image_dir: scratch.path().join("images"),
            seccomp,
            ..Default::default()
        };
        match Sandbox::new(IsolationMode::namespaces(), config) {
            Ok(sandbox) => sandboxes.push(("namespaces", sandbox)),
            Err(e) => println!("namespaces: not measured ({e})"),
        }
    }
    println!(
        "runs {runs}, seccomp {seccomp}, namespaces /tmp {:?}",
        sandboxes
            .iter()
            .find(|(name, _)| *name == "namespaces")
            .map(|(_, s)| s.config().tmp)
    );

    for (name, sandbox) in &sandboxes {
        let spec = |n: usize, program: &str, args: &[&str]| EnvironmentSpec {
            id: format!("bench-{n}"),
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            task_root: task.path().to_path_buf(),
            tmp_dir: scratch.path().join(format!("tmp-{n}")),
            cwd: if *name == "process" {
                "/".into()
            } else {
                "/var/task".into()
            },
            memory_mb: 128,
            pids_max: 64,
            tmp_size_mb: 512,
            readonly_host_paths: ["/usr", "/bin", "/lib", "/lib64", "/sbin"]
                .map(Into::into)
                .to_vec(),
            ..Default::default()
        };

        let (mut spawn, mut first_line, mut lifecycle) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..runs {
            // An isolated event, as a cold start is: the pool (if any) refills meanwhile.
            tokio::time::sleep(pause).await;
            let start = Instant::now();
            let mut env = sandbox.spawn(spec(n, "/bin/echo", &["hi"])).await?;
            spawn.push(start.elapsed());
            let mut output = env.take_output().ok_or("no output")?;
            output.recv().await.ok_or("no line")?;
            first_line.push(start.elapsed());
            env.wait().await;

            tokio::time::sleep(pause).await;
            let start = Instant::now();
            let env = sandbox.spawn(spec(n, "/bin/true", &[])).await?;
            env.wait().await;
            lifecycle.push(start.elapsed());
        }
        report(name, "spawn", &mut spawn);
        report(name, "first line", &mut first_line);
        report(name, "lifecycle", &mut lifecycle);
    }
    Ok(())
}

fn report(mode: &str, what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{mode:>10} {what:<11} min {:6.3} ms  p25 {:6.3} ms  p50 {:6.3} ms  p90 {:6.2} ms  max {:6.2} ms",
        at(0.0),
        at(0.25),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
