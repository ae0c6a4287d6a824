//! Micro-benchmark: `invoke()` round trips against a loopback runtime client.
//!
//! A plain OS thread plays the runtime (blocking `std::net::TcpStream`, one keep-alive
//! connection, TCP_NODELAY — the shape of a C/Python/Node runtime client): `GET /next`, then
//! `POST /response` echoing the event. The main task times each `invoke()` from the call to the
//! outcome and prints p50/p90/p99/p99.9 and cycles per second.
//!
//! ```text
//! cargo run --release -p kindling-runtime-api --example invoke_bench -- \
//!     [--cycles 200000] [--payload 64] [--workers 2] [--extension] [--peer-check] \
//!     [--connections 0] [--background-sockets 0]
//! ```
//! `--extension` adds an extension thread registered for INVOKE and, like the scheduler,
//! waits for `wait_invocation_complete()` after every invoke (its time is included).
//!
//! `--peer-check` serves only sockets of this process's uid (`allowed_peer_uid`, as the
//! scheduler does for environments on the host network). `--connections N` then also times N
//! fresh connections (connect, `GET /ping`, close), which is where the check runs;
//! `--background-sockets N` first opens N idle loopback connections (2N rows in
//! `/proc/net/tcp`), as on a busy host.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_runtime_api::{Invocation, Outcome, RuntimeApi, RuntimeApiConfig};

const STOP: &str = "stop";

struct Args {
    cycles: usize,
    payload: usize,
    workers: usize,
    extension: bool,
    peer_check: bool,
    connections: usize,
    background_sockets: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        cycles: 200_000,
        payload: 64,
        workers: 2,
        extension: false,
        peer_check: false,
        connections: 0,
        background_sockets: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&arg))
        };
        match arg.as_str() {
            "--cycles" => args.cycles = value(),
            "--payload" => args.payload = value(),
            "--workers" => args.workers = value(),
            "--extension" => args.extension = true,
            "--peer-check" => args.peer_check = true,
            "--connections" => args.connections = value(),
            "--background-sockets" => args.background_sockets = value(),
            _ => usage(&arg),
        }
    }
    args
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "bad argument {arg:?}; usage: [--cycles N] [--payload BYTES] [--workers N] [--extension] \
         [--peer-check] [--connections N] [--background-sockets N]"
    );
    std::process::exit(2)
}

/// One blocking keep-alive HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            line: String::new(),
        })
    }

    fn send(&mut self, head: &str, body: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(head.len() + body.len() + 32);
        buf.extend_from_slice(head.as_bytes());
        buf.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        buf.extend_from_slice(body);
        self.writer.write_all(&buf)
    }

    /// Reads a response; returns (status, value of `want` header, body).
    fn read(&mut self, want: &str) -> std::io::Result<(u16, Option<String>, Vec<u8>)> {
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        let status = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        let mut wanted = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case(want) {
                    wanted = Some(value.trim().to_owned());
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, wanted, body))
    }
}

fn runtime_client(addr: SocketAddr) -> std::io::Result<u64> {
    let mut client = Client::connect(addr)?;
    let mut cycles = 0;
    loop {
        client.send(
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n",
            b"",
        )?;
        let (status, id, body) = client.read("lambda-runtime-aws-request-id")?;
        assert_eq!(status, 200, "next");
        let id = id.unwrap_or_default();
        let head = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\n"
        );
        client.send(&head, &body)?;
        let (status, _, _) = client.read("")?;
        assert_eq!(status, 202, "response");
        cycles += 1;
        if id == STOP {
            return Ok(cycles);
        }
    }
}

fn extension_client(addr: SocketAddr) -> std::io::Result<()> {
    let mut client = Client::connect(addr)?;
    client.send(
        "POST /2020-01-01/extension/register HTTP/1.1\r\nHost: x\r\nLambda-Extension-Name: bench\r\n",
        br#"{"events":["INVOKE"]}"#,
    )?;
    let (status, id, _) = client.read("lambda-extension-identifier")?;
    assert_eq!(status, 200, "register");
    let id = id.unwrap_or_default();
    let head = format!(
        "GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: x\r\nLambda-Extension-Identifier: {id}\r\n"
    );
    loop {
        client.send(&head, b"")?;
        let (status, _, body) = client.read("")?;
        assert_eq!(status, 200, "event/next");
        if body
            .windows(STOP.len() + 2)
            .any(|w| w == format!("\"{STOP}\"").as_bytes())
        {
            return Ok(());
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args));
}

/// The file-system uid of this process: the owner its sockets get.
fn own_fsuid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(3))
                .and_then(|id| id.parse().ok())
        })
        .expect("Uid line in /proc/self/status")
}

/// N idle loopback connections (both ends kept open).
fn background_sockets(n: usize) -> Vec<TcpStream> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut sockets = Vec::with_capacity(2 * n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(addr).expect("background connect"));
        sockets.push(listener.accept().expect("background accept").0);
    }
    sockets
}

/// Fresh connections: connect, `GET /ping`, read the answer, close.
fn connection_cycles(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut client = Client::connect(addr).expect("connect");
        client
            .send("GET /ping HTTP/1.1\r\nHost: x\r\n", b"")
            .expect("ping");
        let (status, _, _) = client.read("").expect("pong");
        assert_eq!(status, 200, "ping");
        drop(client);
        samples.push(started.elapsed());
    }
    samples
}

async fn run(args: Args) {
    let _background = background_sockets(args.background_sockets);
    let mut config = RuntimeApiConfig::new("bench", "$LATEST", "123456789012");
    if args.peer_check {
        config.allowed_peer_uid = Some(own_fsuid());
    }
    let api = Arc::new(
        RuntimeApi::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .expect("bind"),
    );
    let addr = api.local_addr();
    let ext = args
        .extension
        .then(|| std::thread::spawn(move || extension_client(addr)));
    if args.extension {
        // Registration must happen before the runtime's first /next closes init.
        let deadline = Instant::now() + Duration::from_secs(5);
        while api.registered_extensions().is_empty() {
            assert!(Instant::now() < deadline, "extension did not register");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let runtime = std::thread::spawn(move || runtime_client(addr));
    api.wait_init().await;

    let payload = Bytes::from(format!(
        "{{\"data\":\"{}\"}}",
        "x".repeat(args.payload.saturating_sub(11))
    ));
    let invocation = |id: String| Invocation {
        request_id: id,
        deadline_ms: 1_900_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        trace_id: Some(
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        ),
        payload: payload.clone(),
        ..Invocation::default()
    };

    let warmup = (args.cycles / 10).max(1000);
    let mut samples = Vec::with_capacity(args.cycles);
    let mut ids = (0..warmup + args.cycles).map(|i| format!("8476a536-e9f4-11e8-9739-{i:012}"));
    let cycle = |id: String| {
        let api = Arc::clone(&api);
        let inv = invocation(id);
        async move {
            let started = Instant::now();
            let outcome = api.invoke(inv).await;
            if args.extension {
                api.wait_invocation_complete().await;
            }
            let elapsed = started.elapsed();
            assert!(matches!(outcome, Outcome::Response { .. }), "{outcome:?}");
            elapsed
        }
    };
    for id in ids.by_ref().take(warmup) {
        cycle(id).await;
    }
    let started = Instant::now();
    for id in ids {
        samples.push(cycle(id).await);
    }
    let total = started.elapsed();
    let _ = api.invoke(invocation(STOP.into())).await;
    let served = runtime
        .join()
        .expect("runtime thread")
        .expect("runtime client");
    if let Some(ext) = ext {
        ext.join()
            .expect("extension thread")
            .expect("extension client");
    }

    samples.sort_unstable();
    println!(
        "invoke round trip (next -> response), {} cycles, payload {} B, {} tokio workers{}{}:",
        args.cycles,
        payload.len(),
        args.workers,
        if args.extension {
            ", 1 INVOKE extension + wait_invocation_complete"
        } else {
            ""
        },
        if args.peer_check { ", peer check" } else { "" }
    );
    print_percentiles(&samples);
    println!(
        "  {:.0} cycles/s ({} served by the runtime thread incl. warm-up)",
        args.cycles as f64 / total.as_secs_f64(),
        served
    );

    if args.connections > 0 {
        let n = args.connections;
        let mut samples = tokio::task::spawn_blocking(move || {
            connection_cycles(addr, n / 10 + 1);
            connection_cycles(addr, n)
        })
        .await
        .expect("connection thread");
        samples.sort_unstable();
        let rows = std::fs::read_to_string("/proc/net/tcp").map_or(0, |t| t.lines().count() - 1);
        println!(
            "fresh connection (connect, GET /ping, close), {n} cycles, {rows} rows in /proc/net/tcp{}:",
            if args.peer_check { ", peer check" } else { "" }
        );
        print_percentiles(&samples);
    }
}

fn print_percentiles(sorted: &[Duration]) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "  p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
        us(percentile(sorted, 0.50)),
        us(percentile(sorted, 0.90)),
        us(percentile(sorted, 0.99)),
        us(percentile(sorted, 0.999)),
        us(sorted[sorted.len() - 1]),
    );
}
