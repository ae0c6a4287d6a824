//! The listener's bounds against the real binary: request bodies refused before they are read,
//! stalled bodies and slow heads cut within their timeouts.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Server;

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.base.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Resident memory of the server process, in KiB.
fn rss_kib(server: &Server) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and when it
/// closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Some(started.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (got, Some(started.elapsed())),
        }
    }
    (got, None)
}

fn credentials_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("credentials");
    std::fs::write(&path, "AKIDEDGETEST00000001 edge-test-secret\n").expect("credentials");
    path.to_string_lossy().into_owned()
}

#[test]
fn unsigned_huge_bodies_are_refused_without_being_read() {
    let keys = tempfile::tempdir().expect("dir");
    let creds = credentials_file(&keys);
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            "--isolation",
            "process",
            "--shared",
            "--credentials",
            &creds,
        ],
    );
    let before = rss_kib(&server);
    // Twelve clients each announce a 65 MB CreateFunction and push body bytes as fast as the
    // server takes them, for two seconds.
    let chunk = vec![b'a'; 256 * 1024];
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let mut stream = connect(&server);
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let head = "POST /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \
                            application/json\r\nContent-Length: 65000000\r\n\r\n";
                stream.write_all(head.as_bytes()).expect("head");
                stream
                    .set_write_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                let started = Instant::now();
                let mut sent = 0usize;
                while started.elapsed() < Duration::from_secs(2) {
                    match stream.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10));
                (String::from_utf8_lossy(&answer).into_owned(), sent)
            })
        })
        .collect();
    let mut peak = before;
    let mut answers = Vec::new();
    for c in clients {
        peak = peak.max(rss_kib(&server));
        answers.push(c.join().expect("client"));
    }
    peak = peak.max(rss_kib(&server));
    for (answer, sent) in &answers {
        assert!(
            answer.starts_with("HTTP/1.1 403"),
            "expected a 403 (after sending {sent} bytes), got {answer:?}"
        );
        assert!(
            answer.contains("x-amzn-errortype: MissingAuthenticationTokenException"),
            "{answer}"
        );
    }
    let sent: usize = answers.iter().map(|(_, s)| s).sum();
    eprintln!(
        "RSS {before} KiB before, {peak} KiB at most while {} MB of unsigned body were pushed",
        sent / 1_000_000
    );
    // The old behaviour buffered every body (12 x 65 MB); now nothing is kept.
    assert!(
        peak < before + 32 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
}

#[test]
fn a_lying_content_length_is_cut_at_the_body_timeout() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &["--isolation", "process", "--body-timeout", "1"],
    );
    let mut stream = connect(&server);
    let request = "POST /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \
                   application/json\r\nContent-Length: 1000\r\n\r\n{\"FunctionName\":";
    stream.write_all(request.as_bytes()).expect("write");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("x-amzn-errortype: RequestTimeoutException"),
        "{answer}"
    );
    assert!(answer.contains("\"Type\":\"User\""), "{answer}");
    let closed = closed.expect("the connection is closed");
    assert!(
        closed < Duration::from_secs(4),
        "closed after {closed:?}, the body timeout is 1 s"
    );
}

#[test]
fn slow_headers_are_cut_at_the_header_timeout() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &["--isolation", "process", "--header-timeout", "1"],
    );
    let mut stream = connect(&server);
    // A slowloris: one header line, then a byte now and then, never the blank line.
    stream
        .write_all(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    let started = Instant::now();
    let mut closed = None;
    while started.elapsed() < Duration::from_secs(10) {
        if stream.write_all(b"X").is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let (got, end) = read_until_closed(&mut stream, Duration::from_millis(300));
        assert!(
            got.is_empty(),
            "answered a request whose head never ended: {got:?}"
        );
        if let Some(end) = end {
            closed = Some(started.elapsed().min(end + started.elapsed()));
            break;
        }
    }
    let closed = closed.expect("the connection was closed");
    assert!(
        closed < Duration::from_secs(4),
        "closed after {closed:?}, the header timeout is 1 s"
    );
    // The server still serves others.
    let mut other = connect(&server);
    other
        .write_all(
            b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .expect("write");
    let (answer, _) = read_until_closed(&mut other, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[test]
fn idle_connections_make_room_for_a_new_client() {
    // Before, a new connection waited in the backlog until the header timeout (here 10 s)
    // closed an idle one.
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            "--isolation",
            "process",
            "--max-connections",
            "16",
            "--header-timeout",
            "10",
        ],
    );
    let list = b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Sixteen idle connections: six kept alive after one request, six that never sent a
    // byte, four in the middle of their first head.
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut stream = connect(&server);
        if i < 6 {
            stream.write_all(list).expect("write");
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).expect("answer");
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "answered while free");
        } else if i >= 12 {
            stream
                .write_all(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 1")
                .expect("write");
        }
        idle.push(stream);
    }
    // Every slot is taken (the last idle ones are accepted, or wait in the backlog ahead of
    // the new client: either way it comes after all sixteen).
    for round in 0..3 {
        let started = Instant::now();
        let mut client = connect(&server);
        client
            .write_all(
                b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            .expect("write");
        let (answer, _) = read_until_closed(&mut client, Duration::from_secs(15));
        let took = started.elapsed();
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
            "round {round}: {}",
            String::from_utf8_lossy(&answer)
        );
        eprintln!("round {round}: answered in {took:?} with 16 idle connections open");
        assert!(
            took < Duration::from_secs(1),
            "round {round}: answered after {took:?}; the header timeout is 10 s"
        );
    }
}
