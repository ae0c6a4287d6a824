//! Shared helpers for end-to-end tests: start the real `kindling` binary on a free port.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses some of them
pub use kindling_test_support::{eventually, free_port, zip_of};

/// A running `kindling serve` child process; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(data_dir)
    }

    pub fn start_in(data_dir: tempfile::TempDir) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts with extra `serve` flags.
    pub fn start_with(data_dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let path = data_dir.path().to_path_buf();
        let mut args: Vec<&std::ffi::OsStr> = vec!["--data-dir".as_ref(), path.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        Self::spawn(data_dir, None, &args)
    }

    /// Starts in working directory `cwd` with exactly these `serve` flags (besides
    /// `--listen`); the returned server's `data_dir` is an unused temp dir.
    pub fn start_with_cwd(cwd: &Path, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        Self::spawn(dir, Some(cwd), &args)
    }

    /// Spawns `kindling serve` on a free port and waits until it answers. The port was free
    /// when picked, but another process may take it first (tests run in parallel): a server
    /// that exits before it answers is started again on another port.
    fn spawn(
        mut data_dir: tempfile::TempDir,
        cwd: Option<&Path>,
        args: &[&std::ffi::OsStr],
    ) -> Self {
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_kindling"));
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            let child = cmd
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(args)
                .env("KINDLING_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn kindling");
            let mut server = Self {
                child,
                base: format!("http://127.0.0.1:{port}"),
                data_dir,
            };
            if server.wait_ready() {
                return server;
            }
            data_dir =
                std::mem::replace(&mut server.data_dir, tempfile::tempdir().expect("temp dir"));
        }
        panic!("kindling exited before answering, three times (see its stderr above)");
    }

    /// Waits until this server (not some other process on the port) answers Lambda's API:
    /// true when it does, false when it exited first; panics when it neither answers nor exits
    /// in time.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let probe = self.url("/2015-03-31/functions");
        while Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                return false;
            }
            let answered = client.get(&probe).send().is_ok_and(|r| {
                r.headers().contains_key("x-amzn-requestid") || r.status().is_success()
            });
            if answered {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kindling did not answer on {} within 30 s", self.base);
    }

    /// Sends SIGTERM and waits for a clean exit; returns the data dir for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "kindling exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kindling did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data_dir, dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Kills the server with SIGKILL (no cleanup) and returns the data dir for a restart.
    pub fn crash(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data_dir, dir)
    }

    /// Runs `kindling ARGS --data-dir <this server's dir>` and returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.data_dir.path(), args)
    }
}

/// Runs `kindling ARGS --data-dir DIR` and returns stdout.
pub fn cli(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run kindling");
    assert!(
        out.status.success(),
        "kindling {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a Python 3.11 function from one source file `app.py`.
pub fn create_python(server: &Server, name: &str, source: &str, extra: serde_json::Value) {
    let zip = zip_of(&[("app.py", source.as_bytes())]);
    let mut body = serde_json::json!({
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::000000000000:role/lambda",
        "Handler": "app.handler",
        "Code": { "ZipFile": b64(&zip) },
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let res = reqwest::blocking::Client::new()
        .post(server.url("/2015-03-31/functions"))
        .json(&body)
        .send()
        .expect("create function");
    assert_eq!(res.status(), 201, "{}", res.text().unwrap_or_default());
}

/// Sends an Event invocation; returns the request id.
pub fn invoke_event(
    http: &reqwest::blocking::Client,
    server: &Server,
    name: &str,
    payload: &serde_json::Value,
) -> String {
    let res = http
        .post(server.url(&format!("/2015-03-31/functions/{name}/invocations")))
        .header("X-Amz-Invocation-Type", "Event")
        .body(payload.to_string())
        .send()
        .expect("invoke");
    assert_eq!(res.status(), 202);
    res.headers()["x-amzn-requestid"]
        .to_str()
        .expect("id")
        .to_string()
}

/// Creates an SQS queue (destination records for a queue that does not exist are dropped).
pub fn create_queue(server: &Server, name: &str) {
    let res = reqwest::blocking::Client::new()
        .post(server.url("/"))
        .header("x-amz-target", "AmazonSQS.CreateQueue")
        .header("content-type", "application/x-amz-json-1.0")
        .body(serde_json::json!({ "QueueName": name }).to_string())
        .send()
        .expect("create queue");
    assert_eq!(res.status(), 200, "{}", res.text().unwrap_or_default());
}

/// Messages (JSON lines of `kindling dlq list`) of one SQS queue.
pub fn dead_letters(data_dir: &Path, queue: &str) -> Vec<serde_json::Value> {
    cli(data_dir, &["dlq", "list", "--queue", queue])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zip holding the given files.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    use sha2::Digest;
    b64(&sha2::Sha256::digest(bytes))
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
