#!/usr/bin/env python3
"""A burst of cold starts, and the first invoke with provisioned concurrency.

    benches/run --provisioned            (builds release Kindling, then runs this)
    python3 benches/provisioned.py --kindling target/release/kindling [--burst 200] [--rounds 3]

Burst: a Python function (python3.12, trivial handler, no reserved concurrency) is created and
`--burst` clients, each on its own connection, send its first invokes at once (released by a
barrier). Measured: the time from the release to the last answer, how many answers were not
200 (throttles would be 429), how many environments served the burst (distinct log streams),
and Kindling's RSS before and after. Each round uses a fresh function.

Provisioned: a published version with ProvisionedConcurrentExecutions=1, waited READY, then its
first invoke: client round trip and whether its REPORT line has an Init Duration (it must not),
next to the first invoke of the same code on demand ($LATEST: a cold start). Each sample is a
fresh function.

Writes the table to benches/results/provisioned-latest.txt.
"""

import argparse
import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::000000000000:role/bench"
APP = (
    "import os\n"
    "COUNT = 0\n"
    "def handler(event, context):\n"
    "    global COUNT\n"
    "    COUNT += 1\n"
    "    return {'stream': context.log_stream_name, 'count': COUNT,\n"
    "            'init': os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE')}\n"
)


def zip_files(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            zf.writestr(info, content)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, method: str, path: str, body: bytes = b"", headers=None, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def create(port: int, name: str, code: bytes, memory: int) -> None:
    body = json.dumps({"FunctionName": name, "Runtime": "python3.12", "Role": ROLE,
                       "Handler": "app.handler", "MemorySize": memory, "Timeout": 30,
                       "Code": {"ZipFile": base64.b64encode(code).decode()}}).encode()
    status, _, out = call(port, "POST", "/2015-03-31/functions", body,
                          {"Content-Type": "application/json"})
    if status != 201:
        raise SystemExit(f"CreateFunction {name}: HTTP {status} {out[:300]!r}")
    for _ in range(600):
        _, _, out = call(port, "GET", f"/2015-03-31/functions/{name}/configuration")
        if json.loads(out).get("State") == "Active":
            return
        time.sleep(0.05)
    raise SystemExit(f"{name} never became Active")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def burst(port: int, pid: int, name: str, n: int):
    barrier = threading.Barrier(n + 1)
    results = [None] * n
    done_at = [0.0] * n

    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.connect()
        barrier.wait(timeout=60)
        try:
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=b"{}")
            resp = conn.getresponse()
            results[i] = (resp.status, resp.getheader("x-amz-function-error"), resp.read())
        except Exception as e:  # counted as a failure
            results[i] = (0, repr(e), b"")
        finally:
            done_at[i] = time.perf_counter()
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    rss_before = rss_kb(pid)
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    rss_after = rss_kb(pid)
    last = (max(done_at) - t0) * 1000
    times = sorted((d - t0) * 1000 for d in done_at)
    failed = [r for r in results if r[0] != 200 or r[1]]
    throttled = sum(1 for r in results if r[0] == 429)
    streams = {json.loads(r[2])["stream"] for r in results if r[0] == 200 and not r[1]}
    return {"last": last, "p50": statistics.median(times), "failed": len(failed),
            "throttled": throttled, "envs": len(streams), "rss_before": rss_before,
            "rss_after": rss_after}


def invoke_tail(port: int, path: str):
    t0 = time.perf_counter()
    status, h, out = call(port, "POST", path, b"{}", {"X-Amz-Log-Type": "Tail"})
    elapsed = (time.perf_counter() - t0) * 1000
    if status != 200 or "x-amz-function-error" in h:
        raise SystemExit(f"invoke {path}: HTTP {status} {out[:300]!r}")
    log = base64.b64decode(h.get("x-amz-log-result", "")).decode(errors="replace")
    m = re.search(r"Init Duration: ([0-9.]+) ms", log)
    return elapsed, json.loads(out), float(m.group(1)) if m else None


def provisioned_first(port: int, name: str):
    status, _, out = call(port, "POST", f"/2015-03-31/functions/{name}/versions", b"{}",
                          {"Content-Type": "application/json"})
    if status != 201:
        raise SystemExit(f"PublishVersion: HTTP {status} {out[:300]!r}")
    version = json.loads(out)["Version"]
    base = f"/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={version}"
    status, _, out = call(port, "PUT", base, json.dumps({"ProvisionedConcurrentExecutions": 1}).encode(),
                          {"Content-Type": "application/json"})
    if status != 202:
        raise SystemExit(f"PutProvisionedConcurrencyConfig: HTTP {status} {out[:300]!r}")
    t0 = time.perf_counter()
    while True:
        _, _, out = call(port, "GET", base)
        cfg = json.loads(out)
        if cfg["Status"] == "READY":
            break
        if cfg["Status"] == "FAILED" or time.perf_counter() - t0 > 60:
            raise SystemExit(f"provisioned concurrency not READY: {cfg}")
        time.sleep(0.01)
    ready_ms = (time.perf_counter() - t0) * 1000
    time.sleep(0.25)
    elapsed, body, init = invoke_tail(port, f"/2015-03-31/functions/{name}/invocations?Qualifier={version}")
    assert body["init"] == "provisioned-concurrency", body
    return elapsed, init, ready_ms


def start_server(kindling: str, isolation: str, work: Path):
    port = free_port()
    log_path = work / f"kindling-{isolation}.log"
    server = subprocess.Popen(
        [kindling, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / f"data-{isolation}"),
         "--isolation", isolation, "--idle-timeout", "600"],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"kindling did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.05)


def stop(server) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=5, help="first invokes with provisioned concurrency")
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--isolation", default="namespaces,process" if os.geteuid() == 0 else "process")
    ap.add_argument("--rev", default="")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "provisioned-latest.txt"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kindling-pc-bench-"))
    rev = args.rev or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
    lines = [f"Kindling burst and provisioned-concurrency benchmark, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, rev {rev}, binary {args.kindling}",
             f"python3.12 trivial handler, MemorySize {args.memory_mb} MB, {os.cpu_count()} cores (shared)",
             ""]
    for isolation in args.isolation.split(","):
        server, port = start_server(args.kindling, isolation, work)
        try:
            # One throw-away function: interpreter discovery and first-use costs are not a burst.
            create(port, "warmup", zip_files({"app.py": APP}), args.memory_mb)
            invoke_tail(port, "/2015-03-31/functions/warmup/invocations")
            rounds = []
            for r in range(args.rounds):
                name = f"burst-{r}"
                create(port, name, zip_files({"app.py": APP + f"# {name}\n"}), args.memory_mb)
                time.sleep(0.5)
                load = os.getloadavg()[0]
                res = burst(port, server.pid, name, args.burst)
                res["load"] = load
                rounds.append(res)
                print(f"{isolation} burst {r}: last {res['last']:.0f} ms, {res['envs']} envs, "
                      f"{res['failed']} failed", file=sys.stderr)
            pc, pc_init, ready, od, od_init = [], [], [], [], []
            for i in range(args.samples):
                name = f"pc-{i}"
                create(port, name, zip_files({"app.py": APP + f"# {name}\n"}), args.memory_mb)
                elapsed, init, ready_ms = provisioned_first(port, name)
                pc.append(elapsed)
                ready.append(ready_ms)
                if init is not None:
                    pc_init.append(init)
                name = f"od-{i}"
                create(port, name, zip_files({"app.py": APP + f"# {name}\n"}), args.memory_mb)
                time.sleep(0.25)
                elapsed, _, init = invoke_tail(port, f"/2015-03-31/functions/{name}/invocations")
                od.append(elapsed)
                if init is not None:
                    od_init.append(init)
        finally:
            stop(server)
        lines += [
            f"== --isolation {isolation}",
            f"BURST: {args.burst} concurrent first invokes of a fresh python3.12 function "
            "(no reserved concurrency), each on its own connection",
            f"{'round':>7} {'last answer':>12} {'p50 answer':>11} {'not 200':>8} {'429':>5} "
            f"{'envs':>5} {'RSS before':>11} {'RSS after':>10} {'load1':>6}",
        ]
        for i, r in enumerate(rounds):
            lines.append(f"{i:>7} {r['last']:>9.0f} ms {r['p50']:>8.0f} ms {r['failed']:>8} "
                         f"{r['throttled']:>5} {r['envs']:>5} {r['rss_before'] // 1024:>8} MB "
                         f"{r['rss_after'] // 1024:>7} MB {r['load']:>6.1f}")
        lasts = [r["last"] for r in rounds]
        lines += [
            f"  last answer: median {statistics.median(lasts):.0f} ms, best {min(lasts):.0f} ms "
            f"(target 1500 ms on 2 cores: {'PASS' if statistics.median(lasts) <= 1500 else 'MISS'})",
            "",
            "FIRST INVOKE WITH PROVISIONED CONCURRENCY (ms, client round trip; "
            "ProvisionedConcurrentExecutions=1 on a version, waited READY)",
            f"  provisioned first invoke  p50 {statistics.median(pc):7.2f}  min {min(pc):7.2f}  "
            f"max {max(pc):7.2f}  REPORT lines with Init Duration: {len(pc_init)} of {len(pc)}",
            f"  on-demand first invoke    p50 {statistics.median(od):7.2f}  min {min(od):7.2f}  "
            f"max {max(od):7.2f}  Init Duration p50 "
            f"{statistics.median(od_init) if od_init else float('nan'):.2f}",
            f"  Put -> READY              p50 {statistics.median(ready):7.2f}",
            "",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
