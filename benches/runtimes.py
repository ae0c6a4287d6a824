#!/usr/bin/env python3
"""Cold and warm invokes per language runtime, in one run against one Kindling.

    benches/run --runtimes            (builds release Kindling, then runs this)
    python3 benches/runtimes.py --kindling target/release/kindling [--cold N] [--warm N]

Functions: the same echo in Python (python3.12), Node.js (nodejs20.x), Java (java17; java21,
which runs on the host's newest JDK when it has no 21), Ruby (ruby3.3) and, as the floor, a
static C custom runtime (provided.al2023). Each cold sample is a fresh function with its own
package (CreateFunction, then its first invoke: unpacking, sandbox, interpreter/JVM start,
handler load); warm samples reuse one environment over one keep-alive connection. Cold figures:
the client's round trip of the first invoke and `Init Duration` from its REPORT line
(X-Amz-Log-Type: Tail). Warm: round trip and REPORT `Duration`. Writes the table to
benches/results/runtimes-latest.txt.
"""

import argparse
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::000000000000:role/bench"

ECHO = {
    "python": ("python3.12", "app.handler", {"app.py": "def handler(event, context):\n    return event\n"}),
    "node": ("nodejs20.x", "index.handler", {"index.js": "exports.handler = async (event) => event;\n"}),
    "ruby": ("ruby3.3", "app.handler", {"app.rb": "def handler(event:, context:)\n  event\nend\n"}),
}

JAVA_ECHO = """package bench;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;
public class Echo implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        return event;
    }
}
"""

C_ECHO = ROOT / "runtimes" / "tests" / "arm64" / "echo_runtime.c"


def zip_files(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if name == "bootstrap" else 0o100644) << 16
            info.create_system = 3
            zf.writestr(info, content)
    return buf.getvalue()


def java_package(work: Path) -> bytes:
    """bench.Echo compiled with javac --release 17 against the aws-lambda-java-core API (the
    interfaces, as a user's jar carries them), classes at the zip's root."""
    javac = shutil.which("javac")
    if not javac:
        raise SystemExit("javac is needed for the Java rows (Debian: openjdk-17-jdk-headless)")
    src = work / "java-src" / "bench"
    src.mkdir(parents=True)
    (src / "Echo.java").write_text(JAVA_ECHO)
    core = ROOT / "runtimes" / "tests" / "java" / "aws-lambda-java-core"
    sources = [str(p) for p in core.rglob("*.java")] + [str(src / "Echo.java")]
    classes = work / "java-classes"
    subprocess.run([javac, "--release", "17", "-nowarn", "-d", str(classes), *sources], check=True)
    files = {str(p.relative_to(classes)): p.read_bytes() for p in classes.rglob("*.class")}
    return zip_files(files)


def c_package(work: Path) -> bytes:
    cc = shutil.which("gcc")
    if not cc:
        raise SystemExit("gcc is needed for the C floor row")
    out = work / "bootstrap"
    subprocess.run([cc, "-static", "-O2", "-o", str(out), str(C_ECHO)], check=True)
    return zip_files({"bootstrap": out.read_bytes()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """Lambda's REST API over one keep-alive connection (local mode: no signature needed)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes = b"", headers=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def create(self, name: str, runtime: str, handler: str, code: bytes, memory: int):
        body = json.dumps({"FunctionName": name, "Runtime": runtime, "Role": ROLE, "Handler": handler,
                           "Code": {"ZipFile": base64.b64encode(code).decode()}, "MemorySize": memory,
                           "Timeout": 30}).encode()
        status, _, out = self.call("POST", "/2015-03-31/functions", body, {"Content-Type": "application/json"})
        if status != 201:
            raise SystemExit(f"CreateFunction {name} ({runtime}): HTTP {status} {out[:400]!r}")
        for _ in range(600):
            status, _, out = self.call("GET", f"/2015-03-31/functions/{name}/configuration")
            cfg = json.loads(out)
            if cfg.get("State") == "Active":
                return
            time.sleep(0.05)
        raise SystemExit(f"{name} never became Active")

    def invoke(self, name: str, payload: bytes, tail: bool):
        headers = {"X-Amz-Log-Type": "Tail"} if tail else {}
        t0 = time.perf_counter()
        status, h, out = self.call("POST", f"/2015-03-31/functions/{name}/invocations", payload, headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200 or "x-amz-function-error" in h:
            raise SystemExit(f"invoke {name}: HTTP {status} {h.get('x-amz-function-error')} {out[:400]!r}")
        log = base64.b64decode(h.get("x-amz-log-result", "")).decode(errors="replace")
        return elapsed, out, log


def report_value(log: str, key: str):
    m = re.search(rf"{key}: ([0-9.]+) ms", log)
    return float(m.group(1)) if m else None


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--cold", type=int, default=8, help="cold starts per runtime")
    ap.add_argument("--warm", type=int, default=300, help="warm invokes per runtime")
    ap.add_argument("--memory-mb", type=int, default=512)
    ap.add_argument("--isolation", default="namespaces" if os.geteuid() == 0 else "process")
    ap.add_argument("--only", default="", help="comma-separated subset of c,python,node,ruby,java17,java21")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "runtimes-latest.txt"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kindling-rt-bench-"))
    packages = {"c": ("provided.al2023", "echo", c_package(work))}
    for key, (runtime, handler, files) in ECHO.items():
        packages[key] = (runtime, handler, zip_files(files))
    java = java_package(work)
    packages["java17"] = ("java17", "bench.Echo::handleRequest", java)
    packages["java21"] = ("java21", "bench.Echo::handleRequest", java)
    order = ["c", "python", "node", "ruby", "java17", "java21"]
    if args.only:
        order = [k for k in order if k in args.only.split(",")]

    port = free_port()
    data = work / "data"
    log_path = work / "kindling.log"
    server = subprocess.Popen(
        [args.kindling, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
         "--isolation", args.isolation, "--idle-timeout", "600"],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"kindling did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        api = Api(port)
        payload = json.dumps({"hello": "world", "n": 1}).encode()
        rows = []
        notes = {}
        for key in order:
            runtime, handler, code = packages[key]
            # One throw-away function first: one-off work (the Java runtime's compilation and
            # CDS archive, interpreter discovery) is not a cold start.
            api.create(f"warmup-{key}", runtime, handler, code, args.memory_mb)
            api.invoke(f"warmup-{key}", payload, True)
            cold, init = [], []
            for i in range(args.cold):
                name = f"cold-{key}-{i}"
                api.create(name, runtime, handler, code, args.memory_mb)
                time.sleep(0.25)  # an isolated event, not overlapping the previous one
                elapsed, out, log = api.invoke(name, payload, True)
                assert json.loads(out) in (json.loads(payload), {"machine": "x86_64", "event": json.loads(payload)}), out
                cold.append(elapsed)
                if (v := report_value(log, "Init Duration")) is not None:
                    init.append(v)
                for line in log.splitlines():
                    if "Kindling WARNING" in line:
                        notes[key] = line.split("Kindling WARNING: ", 1)[-1]
            name = f"cold-{key}-0"
            warm, duration = [], []
            for i in range(args.warm):
                tail = i % 10 == 0
                elapsed, _, log = api.invoke(name, payload, tail)
                warm.append(elapsed)
                if tail and (v := report_value(log, "Duration")) is not None:
                    duration.append(v)
            rows.append((key, runtime, cold, init, warm, duration))
            print(f"{key}: cold p50 {statistics.median(cold):.1f} ms, warm p50 {statistics.median(warm):.2f} ms",
                  file=sys.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        f"Kindling runtimes benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, rev {rev}, "
        f"binary {args.kindling}",
        f"isolation {args.isolation}, MemorySize {args.memory_mb} MB, {args.cold} cold starts and {args.warm} warm "
        f"invokes per runtime, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 shared cores)",
        "",
        "Cold: CreateFunction, then the first invoke of a fresh function (own package: unpack, sandbox, "
        "runtime start, handler load).",
        "Warm: the same environment, one keep-alive connection. ms.",
        "",
        f"{'runtime':<24} {'cold p50':>9} {'cold min':>9} {'cold max':>9} {'Init p50':>9} {'warm p50':>9} "
        f"{'warm p99':>9} {'Dur p50':>8}",
    ]
    for key, runtime, cold, init, warm, duration in rows:
        label = f"{runtime} ({key})" if key not in runtime else runtime
        lines.append(
            f"{label:<24} {statistics.median(cold):>9.1f} {min(cold):>9.1f} {max(cold):>9.1f} "
            f"{pct(init, 50):>9.1f} {statistics.median(warm):>9.2f} {pct(warm, 99):>9.2f} {pct(duration, 50):>8.2f}")
    if notes:
        lines.append("")
        lines.append("Substitutes on this host (from the functions' logs):")
        for key, note in notes.items():
            lines.append(f"  {key}: {note}")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
