//! Starting and stopping the servers under test (Kindling, cargo-lambda) and Kindling's REST API.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::{Conn, Error};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process in its own process group, stopped (group-wide) on drop.
pub struct Managed {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Managed {
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        addr: SocketAddr,
        log: PathBuf,
    ) -> Result<Managed, Error> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Managed { child, addr, log })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGTERM to the process (graceful shutdown), then SIGKILL to its process group.
    pub fn stop(&mut self) {
        let pid = self.pid();
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kindling's REST API client, on one keep-alive connection.
pub struct Api {
    pub conn: Conn,
}

pub fn invoke_path(name: &str) -> String {
    format!("/2015-03-31/functions/{name}/invocations")
}

/// The REPORT line of a Tail log, and its Init Duration in ms.
pub fn parse_report(tail_b64: Option<&str>) -> (Option<String>, Option<f64>) {
    let Some(b) = tail_b64 else {
        return (None, None);
    };
    let Ok(raw) = B64.decode(b) else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&raw);
    let Some(line) = text.lines().find(|l| l.starts_with("REPORT")) else {
        return (None, None);
    };
    let init = line.split('\t').find_map(|f| {
        f.trim()
            .strip_prefix("Init Duration:")
            .and_then(|v| v.trim().trim_end_matches("ms").trim().parse::<f64>().ok())
    });
    (Some(line.to_string()), init)
}

/// One timed invoke with `X-Amz-Log-Type: Tail`.
#[derive(Debug)]
pub struct TailInvoke {
    pub client_ms: f64,
    pub init_ms: Option<f64>,
    pub report: Option<String>,
}

impl Api {
    pub async fn connect(addr: SocketAddr) -> Result<Api, Error> {
        Ok(Api {
            conn: Conn::connect_retry(addr, Duration::from_secs(20)).await?,
        })
    }

    /// Waits until the REST API answers ListFunctions.
    pub async fn wait_ready(addr: SocketAddr, timeout: Duration) -> Result<Api, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut api) = Api::connect(addr).await
                && let Ok(r) = api.conn.get("/2015-03-31/functions/").await
                && r.status == 200
            {
                return Ok(api);
            }
            if Instant::now() > deadline {
                return Err("server did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn create_function(
        &mut self,
        name: &str,
        runtime: &str,
        handler: &str,
        zip: &[u8],
        memory_mb: u32,
    ) -> Result<(), Error> {
        let body = json!({
            "FunctionName": name,
            "Runtime": runtime,
            "Role": "arn:aws:iam::000000000000:role/bench",
            "Handler": handler,
            "Code": { "ZipFile": B64.encode(zip) },
            "MemorySize": memory_mb,
            "Timeout": 30,
        });
        let r = self
            .conn
            .post("/2015-03-31/functions", Bytes::from(body.to_string()))
            .await?;
        if r.status != 201 && r.status != 200 {
            return Err(format!("CreateFunction {name}: HTTP {} {}", r.status, r.text()).into());
        }
        // Wait for State Active (Lambda creates functions Pending first).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .conn
                .get(&format!("/2015-03-31/functions/{name}/configuration"))
                .await?;
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            match v.get("State").and_then(Value::as_str) {
                Some("Active") | None => return Ok(()),
                Some("Failed") => return Err(format!("function {name} Failed: {v}").into()),
                _ if Instant::now() > deadline => {
                    return Err(format!("function {name} not Active").into());
                }
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    pub async fn invoke_tail(&mut self, name: &str, payload: &str) -> Result<TailInvoke, Error> {
        let t0 = Instant::now();
        let r = self
            .conn
            .request(
                "POST",
                &invoke_path(name),
                &[("x-amz-log-type", "Tail")],
                Bytes::from(payload.to_string()),
            )
            .await?;
        let client_ms = t0.elapsed().as_secs_f64() * 1000.0;
        if r.status != 200 || r.header("x-amz-function-error").is_some() {
            return Err(format!("invoke {name}: HTTP {} {}", r.status, r.text()).into());
        }
        let (report, init_ms) = parse_report(r.header("x-amz-log-result"));
        Ok(TailInvoke {
            client_ms,
            init_ms,
            report,
        })
    }
}

/// Starts `kindling serve` on a free port with a fresh data dir.
pub fn start_kindling(
    bin: &Path,
    isolation: &str,
    idle_timeout: u64,
    work: &Path,
    tag: &str,
    env: &[(&str, &str)],
) -> Result<Managed, Error> {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let data = work.join(format!("data-{tag}"));
    std::fs::create_dir_all(&data)?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(&data)
        .arg("--isolation")
        .arg(isolation)
        .arg("--idle-timeout")
        .arg(idle_timeout.to_string())
        .env(
            "KINDLING_LOG",
            std::env::var("KINDLING_LOG").unwrap_or_else(|_| "warn".into()),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    Managed::spawn(
        &format!("kindling[{tag}]"),
        cmd,
        addr,
        work.join(format!("kindling-{tag}.log")),
    )
}

/// Starts `cargo lambda watch` serving the Rust function's cargo project on a free port.
pub fn start_cargo_lambda(
    bin: &Path,
    manifest: &Path,
    target_dir: &Path,
    concurrency: usize,
    work: &Path,
) -> Result<Managed, Error> {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "lambda",
        "watch",
        "--quiet",
        "--ignore-changes",
        "--release",
    ])
    .arg("-A")
    .arg("127.0.0.1")
    .arg("-P")
    .arg(port.to_string())
    .arg("--concurrency")
    .arg(concurrency.to_string())
    .arg("--manifest-path")
    .arg(manifest)
    .env("CARGO_TARGET_DIR", target_dir)
    .env("RUST_LOG", "warn");
    Managed::spawn("cargo-lambda", cmd, addr, work.join("cargo-lambda.log"))
}

/// A zip holding `files` (name, mode, content), deflated like a real deployment package.
pub fn make_zip(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, mode, content) in files {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(*mode);
            z.start_file(*name, opts).expect("zip entry");
            z.write_all(content).expect("zip write");
        }
        z.finish().expect("zip finish");
    }
    buf.into_inner()
}
