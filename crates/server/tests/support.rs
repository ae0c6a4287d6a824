//! Shared helpers for end-to-end tests: start the real `kindling` binary on a free port.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `kindling serve` child process; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    pub fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(data_dir)
    }

    pub fn start_in(data_dir: tempfile::TempDir) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kindling"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir.path())
            .env("KINDLING_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kindling");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.base.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kindling did not start listening on {}", self.base);
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zip holding the given files.
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, content) in files {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            w.start_file(*name, opts).expect("zip entry");
            w.write_all(content).expect("zip write");
        }
        w.finish().expect("zip finish");
    }
    buf.into_inner()
}

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
