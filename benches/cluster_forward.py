#!/usr/bin/env python3
"""CPU cost of a synchronous invoke forwarded to the node holding the warm environment.

    python3 benches/cluster_forward.py --kindling target/release/kindling [--n 300]

Two nodes (`kindling serve --store postgres://...`, a fresh database, dropped afterwards). A
function is made warm on A; B has no environment for it, so B forwards each invoke to A. The
figure is server CPU (user + system, from /proc/<pid>/stat: load on the machine does not
inflate it as it does wall time) per invoke, over `--n` sequential invokes:
- A alone serving local warm invokes (the baseline: what one node spends per invoke);
- B forwarding (the proxy's cost) and A serving those forwarded invokes.
Writes benches/results/cluster-forward-latest.txt.
"""

import argparse
import io
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("KINDLING_TEST_PG", "postgres://postgres@127.0.0.1:5432")
TICK = os.sysconf("SC_CLK_TCK")


def psql(sql):
    subprocess.run(["psql", f"{PG}/postgres", "-v", "ON_ERROR_STOP=1", "-Atqc", sql], check=True,
                   capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def call(url, path, body=None, method="POST", headers=None):
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, dict(r.headers), r.read()


def start(binary, db, tmp, name):
    port = free_port()
    log = open(tmp / f"{name}.log", "wb")
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", str(tmp / name), "--store", f"{PG}/{db}",
                             "--isolation", "process", "--node-heartbeat-interval", "0.25",
                             "--node-dead-after", "3"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            call(url, "/_kindling/health/node", method="GET")
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    db = f"kindling_bench_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE DATABASE {db}")
    procs = []
    try:
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            (pa, a), (pb, b) = (start(args.kindling, db, tmp, "a"), start(args.kindling, db, tmp, "b"))
            procs += [pa, pb]
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("lambda_function.py", "def handler(event, context):\n    return event\n")
            import base64
            fn = f"fwd-{uuid.uuid4().hex[:8]}"
            call(a, "/2015-03-31/functions", json.dumps({
                "FunctionName": fn, "Runtime": "python3.12", "Handler": "lambda_function.handler",
                "Role": "arn:aws:iam::000000000000:role/r",
                "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}}).encode(),
                headers={"Content-Type": "application/json"})
            path = f"/2015-03-31/functions/{fn}/invocations"
            deadline = time.monotonic() + 60
            while True:
                try:
                    call(a, path, b"{}")
                    break
                except urllib.error.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            # B must know A's warm target before it is measured.
            deadline = time.monotonic() + 30
            while b"kindling_cluster_warm_targets{node=" not in call(b, "/metrics", method="GET")[2]:
                if time.monotonic() > deadline:
                    raise SystemExit("B never saw A's warm target")
                time.sleep(0.25)

            def run(url):
                ca, cb = cpu_seconds(pa.pid), cpu_seconds(pb.pid)
                for _ in range(args.n):
                    _, h, _ = call(url, path, b'{"k":1}')
                da, db_ = cpu_seconds(pa.pid) - ca, cpu_seconds(pb.pid) - cb
                return da / args.n * 1e6, db_ / args.n * 1e6, h

            for _ in range(20):
                call(a, path, b"{}")
            local_a, _, _ = run(a)
            fwd_a, fwd_b, h = run(b)
            assert "x-kindling-node" in {k.lower() for k in h}, "B did not forward"
            lines = [
                f"n={args.n} sequential invokes, binary {args.kindling}",
                f"local warm invoke on A:   A {local_a:.0f} us CPU/invoke",
                f"forwarded B -> A:         A {fwd_a:.0f} us CPU/invoke, B {fwd_b:.0f} us CPU/invoke",
                f"forwarding overhead:      {fwd_a + fwd_b - local_a:.0f} us CPU/invoke (both nodes)",
            ]
            out = "\n".join(lines) + "\n"
            print(out, end="")
            (ROOT / "benches" / "results").mkdir(exist_ok=True)
            (ROOT / "benches" / "results" / "cluster-forward-latest.txt").write_text(out)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


if __name__ == "__main__":
    main()
