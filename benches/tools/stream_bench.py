#!/usr/bin/env python3
"""Response streaming benchmark (`benches/run --stream`).

Starts `kindling serve` twice on free loopback ports (Lambda's default streaming limits, and
`--stream-bandwidth 0`: uncapped), deploys `tests/streaming/functions/stream.js` (Node,
`awslambda.streamifyResponse`) and measures, over keep-alive HTTP with a minimal event-stream
reader (no SDK overhead in the figures):

1. time to first byte of InvokeWithResponseStream for a warm function that writes its first
   chunk at once and its second 500 ms later, next to buffered Invoke of the same function
   (whose first byte is its whole answer, after the function ends);
2. the throughput of one 20 MiB stream (64 KiB writes) uncapped and at Lambda's bandwidth
   (6 MiB burst, then 2 MiB/s), and the growth of Kindling's peak RSS meanwhile (what the
   back-pressure keeps out of memory).

Usage: stream_bench.py --kindling BIN [--reps 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "tests" / "streaming" / "functions" / "stream.js"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, args: list[str]):
        self.dir = tempfile.mkdtemp(prefix="kindling-stream-bench-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "kindling.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(self.dir, "data"), "--idle-timeout", "600", *args],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"kindling did not start; see {self.dir}/kindling.log")
                time.sleep(0.05)

    def conn(self) -> http.client.HTTPConnection:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def hwm_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def request(conn, method: str, path: str, body: bytes = b"", headers=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json",
                                                   **(headers or {})})
    return conn.getresponse()


def deploy(srv: Server, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("stream.js", FUNCTION.read_bytes())
    import base64
    spec = {"FunctionName": name, "Runtime": "nodejs20.x", "Handler": "stream.handler",
            "Role": "arn:aws:iam::000000000000:role/bench", "Timeout": 60, "MemorySize": 512,
            "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}}
    c = srv.conn()
    r = request(c, "POST", "/2015-03-31/functions", json.dumps(spec).encode())
    body = r.read()
    if r.status != 201:
        raise RuntimeError(f"CreateFunction: {r.status} {body[:300]!r}")


def read_events(resp, on_chunk=None):
    """Reads event-stream messages; returns (first chunk time, bytes, completion document)."""
    first = None
    total = 0
    while True:
        prelude = resp.read(12)
        if len(prelude) < 12:
            raise RuntimeError("the stream ended without InvokeComplete")
        length, headers_len, _ = struct.unpack(">III", prelude)
        rest = resp.read(length - 12)
        headers = rest[:headers_len]
        payload = rest[headers_len:-4]
        if b"PayloadChunk" in headers:
            if first is None:
                first = time.perf_counter()
            total += len(payload)
        elif b"InvokeComplete" in headers:
            resp.read()  # the end of the chunked body: the connection can be used again
            return first, total, json.loads(payload)


def stream_invoke(conn, name: str, event: dict):
    started = time.perf_counter()
    resp = request(conn, "POST", f"/2021-11-15/functions/{name}/response-streaming-invocations",
                   json.dumps(event).encode())
    if resp.status != 200:
        raise RuntimeError(f"InvokeWithResponseStream: {resp.status} {resp.read()[:300]!r}")
    first, total, complete = read_events(resp)
    done = time.perf_counter()
    if complete.get("ErrorCode"):
        raise RuntimeError(f"stream failed: {complete}")
    return started, first, done, total


def buffered_invoke(conn, name: str, event: dict):
    started = time.perf_counter()
    resp = request(conn, "POST", f"/2015-03-31/functions/{name}/invocations",
                   json.dumps(event).encode())
    first_byte = resp.read(1)
    first = time.perf_counter()
    rest = resp.read()
    if resp.status != 200 or resp.getheader("X-Amz-Function-Error"):
        raise RuntimeError(f"Invoke: {resp.status} {(first_byte + rest)[:300]!r}")
    return started, first, time.perf_counter(), len(first_byte) + len(rest)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", required=True)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rev", default="")
    ap.add_argument("--out")
    a = ap.parse_args()

    lines = []

    def out(line=""):
        print(line, flush=True)
        lines.append(line)

    capped = Server(a.kindling, [])
    uncapped = Server(a.kindling, ["--stream-bandwidth", "0"])
    try:
        for srv in (capped, uncapped):
            deploy(srv, "stream-bench")
        conn = uncapped.conn()
        two = {"chunks": 2, "size": 64, "delay_ms": 500}
        stream_invoke(conn, "stream-bench", {"chunks": 1})  # cold start
        ttfb_s, total_s, ttfb_b = [], [], []
        for _ in range(a.reps):
            s, f, d, _n = stream_invoke(conn, "stream-bench", two)
            ttfb_s.append((f - s) * 1000)
            total_s.append((d - s) * 1000)
            s, f, d, _n = buffered_invoke(conn, "stream-bench", two)
            ttfb_b.append((f - s) * 1000)
        out(f"# Response streaming (Kindling {a.rev}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        out(f"# load average at start: {os.getloadavg()[0]:.1f}; Node function, warm, keep-alive client")
        out()
        out("## Time to first byte: function writes 64 B, waits 500 ms, writes 64 B "
            f"({a.reps} invokes each)")
        out(f"{'path':<40} {'p50 ms':>9} {'p90 ms':>9} {'max ms':>9}")
        out(f"{'InvokeWithResponseStream: first chunk':<40} {statistics.median(ttfb_s):>9.2f} "
            f"{pct(ttfb_s, 90):>9.2f} {max(ttfb_s):>9.2f}")
        out(f"{'InvokeWithResponseStream: complete':<40} {statistics.median(total_s):>9.2f} "
            f"{pct(total_s, 90):>9.2f} {max(total_s):>9.2f}")
        out(f"{'Invoke (buffered peer): first byte':<40} {statistics.median(ttfb_b):>9.2f} "
            f"{pct(ttfb_b, 90):>9.2f} {max(ttfb_b):>9.2f}")
        out()
        out("## One 20 MiB stream (320 x 64 KiB writes), 3 runs each")
        out(f"{'server':<40} {'MiB/s':>9} {'seconds':>9} {'RSS peak +MiB':>14}")
        big = {"chunks": 320, "size": 64 * 1024}
        for label, srv in (("uncapped (--stream-bandwidth 0)", uncapped),
                           ("Lambda's limits (6 MiB, then 2 MiB/s)", capped)):
            c = srv.conn()
            stream_invoke(c, "stream-bench", {"chunks": 1})
            rates, secs = [], []
            hwm0 = srv.hwm_kib()
            for _ in range(3):
                s, _f, d, n = stream_invoke(c, "stream-bench", big)
                assert n == 20 * MIB, n
                secs.append(d - s)
                rates.append(n / MIB / (d - s))
            growth = (srv.hwm_kib() - hwm0) / 1024
            out(f"{label:<40} {statistics.median(rates):>9.1f} {statistics.median(secs):>9.2f} "
                f"{growth:>14.1f}")
    finally:
        capped.stop()
        uncapped.stop()
    if a.out:
        Path(a.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
