#!/usr/bin/env python3
"""Observability overhead on the warm invoke path (`benches/run --obs`).

Five release Kindlings (`--isolation process`), measured in turns with the Rust load generator
(`kindling-bench load`), warm echo-rs function:

- off:        no OTLP endpoint, no telemetry subscriber, /metrics never scraped;
- otlp:       `--otlp-endpoint` to a collector stand-in (OTLP/HTTP protobuf, Kindling's default;
              every invocation exports 2-4 spans; `--otlp-protocol http/json` to measure JSON);
- subscriber: the function carries an external extension (a layer) subscribed to the Telemetry
              API for platform and function events (Lambda's default buffering: maxItems
              10000, maxBytes 262144, timeoutMs 1000; `--sub-timeout-ms` to change the timeout):
              compiled, as the function is (`kindling-bench telemetry-extension`: parses every
              batch as JSON and counts its records), or `--py-extension` (http.server, counts
              without parsing);
- scrape:     /metrics is scraped every second during the runs;
- on:         all three (each can be left out with --no-otlp/--no-subscriber/--no-scrape).

Rows: single-client latency (p50, p99) and 4-client throughput, `--reps` times each, interleaved;
each repetition's single-client requests go in `--slices` slices, the rows taking turns slice by
slice, and the p50 verdict is the median of 'on' minus 'off' within each slice round (a
bootstrap interval beside it), since a window's noise moves p50 by more than the rows differ;
4-client turns likewise go in `--tp-slices` slices taken in turns, and a repetition's
throughput cost is the median of 'on' against 'off' within its slice rounds; the
server's CPU per invocation of each row over 'off' is each feature's cost; the CPU of the
server's children (the function and, with a subscriber, the extension receiving the batches)
is given apart, since on a small machine an extension's CPU competes with the function's. `--perf DIR`
profiles each server's first 4-client slice of the last repetition (`perf report -i DIR/<row>.data`). `--base BIN` runs
every row on a second binary too, in the same turns, and compares them pair by pair;
`--rows` picks rows.
Printed and written to benches/results/obs-latest.txt, with the targets (<= 5 % throughput,
<= 5 us p50).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import random
import tempfile
import threading
import time
import urllib.request
import zipfile

EXTENSION = r'''#!/usr/bin/python3
# Telemetry API subscriber: registers for no events (it never holds invocations up),
# subscribes to platform and function events and discards every batch it receives.
import json, os, sys, threading, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
COUNT = [0]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        COUNT[0] += self.rfile.read(int(self.headers["Content-Length"])).count(b'"time"')
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
srv = HTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
r = urllib.request.urlopen(urllib.request.Request(API + "/2020-01-01/extension/register",
    method="POST", data=b'{"events": ["SHUTDOWN"]}', headers={"Lambda-Extension-Name": "subscriber"}))
eid = r.headers["Lambda-Extension-Identifier"]
sub = {"schemaVersion": "2022-12-13", "types": ["platform", "function"],
       "buffering": {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": TIMEOUT_MS},
       "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d" % srv.server_address[1]}}
urllib.request.urlopen(urllib.request.Request(API + "/2022-07-01/telemetry", method="PUT",
    data=json.dumps(sub).encode(), headers={"Lambda-Extension-Identifier": eid}))
urllib.request.urlopen(urllib.request.Request(API + "/2020-01-01/extension/event/next",
    headers={"Lambda-Extension-Identifier": eid}))
print("[subscriber] items received:", COUNT[0], flush=True)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Stands in for an OpenTelemetry collector (`kindling-bench otlp-sink`, compiled): walks
    each protobuf export down to its spans and counts them, answers 200. A real collector runs
    on another machine; this one shares the measured machine, so it is kept as cheap as a
    compiled decoder makes it, and its CPU is reported apart."""

    def __init__(self, bench: str):
        self.proc = subprocess.Popen([bench, "otlp-sink"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"otlp-sink did not start: {line}")
        self.url = f"http://127.0.0.1:{line[1]}"

    def counts(self) -> dict:
        with urllib.request.urlopen(self.url + "/count", timeout=10) as r:
            return dict(kv.split("=") for kv in r.read().decode().split())

    def settle(self, deadline_s: float = 3.0):
        """Waits until no span has arrived for 0.7 s (longer than the exporter's 500 ms flush
        timer), at most `deadline_s`."""
        end = time.monotonic() + deadline_s
        last = self.counts().get("spans")
        while time.monotonic() < end:
            time.sleep(0.7)
            now = self.counts().get("spans")
            if now == last:
                return
            last = now

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Kindling:
    def __init__(self, binary: str, work: str, name: str, extra: list[str]):
        self.port = free_port()
        self.data = os.path.join(work, name)
        self.log = open(os.path.join(work, f"{name}.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
             "--isolation", "process", *extra], stdout=self.log, stderr=subprocess.STDOUT)
        self.addr = f"127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{name} did not start")
                time.sleep(0.05)

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"http://{self.addr}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return json.loads(text) if text else {}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def py_zip() -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return event\n")
    return base64.b64encode(buf.getvalue()).decode()


# The compiled subscriber: kindling-bench's `telemetry-extension`, shipped in the layer.
RUST_EXTENSION = """#!/bin/sh
exec "$(dirname "$0")/../bin/kindling-bench" telemetry-extension --name subscriber --timeout-ms TIMEOUT_MS
"""


def layer_zip(timeout_ms: int, bench: str | None) -> str:
    """The subscriber's layer: with `bench`, the compiled extension (kindling-bench in bin/ and
    a wrapper in extensions/); else the Python one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name: str, data: bytes | str):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        if bench:
            with open(bench, "rb") as f:
                add("bin/kindling-bench", f.read())
            add("extensions/subscriber", RUST_EXTENSION.replace("TIMEOUT_MS", str(timeout_ms)))
        else:
            add("extensions/subscriber", EXTENSION.replace("TIMEOUT_MS", str(timeout_ms)))
    return base64.b64encode(buf.getvalue()).decode()


LINE = re.compile(r"ok=(\d+) .*?rps=(\d+) p50=([\d.]+)us p90=([\d.]+)us p99=([\d.]+)us"
                  r".*?cpu/inv: server=([\d.]+)us children=([\d.]+)us.*?foreign=(\d+)%"
                  r" sent=(\d+)")


def load(bench: str, k: Kindling, extra: list[str]) -> dict:
    out = subprocess.run([bench, "load", "--addr", k.addr, "--pid", str(k.proc.pid), *extra],
                         capture_output=True, text=True, timeout=300)
    m = LINE.search(out.stdout)
    if not m:
        raise RuntimeError(f"unexpected load output: {out.stdout}{out.stderr}")
    ok, rps, p50, p90, p99, srv, children, foreign, sent = m.groups()
    return {"ok": int(ok), "rps": float(rps), "p50": float(p50), "p99": float(p99),
            "server_cpu": float(srv), "children_cpu": float(children), "foreign": int(foreign),
            "sent": int(sent)}


FEATURES = ("otlp", "subscriber", "scrape")

# Context switches per invocation (--sched): warm_sched.py's per-thread counters.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
import warm_sched  # noqa: E402

SCHED_KEYS = ("cs_machine", "cs_server", "cs_fn", "cs_ext", "intr_machine")


def sched_snapshot(k: Kindling) -> tuple[dict, dict]:
    return warm_sched.snapshot(k.proc.pid), warm_sched.machine()


def sched_per_invoke(k: Kindling, before: tuple[dict, dict], invokes: int) -> dict:
    """Context switches (voluntary and not) per invocation since `before`: the whole machine,
    the server's threads, the function's processes and the extension's; interrupts."""
    after, m1 = warm_sched.snapshot(k.proc.pid), warm_sched.machine()
    threads, m0 = before
    out = {key: 0.0 for key in SCHED_KEYS}
    for key, c in after.items():
        c0 = threads.get(key)
        if c0 is None:
            continue
        n = (c["vol"] - c0["vol"]) + (c["invol"] - c0["invol"])
        if key[0] == "server":
            out["cs_server"] += n
        elif key[0] == "fn":
            name = warm_sched.comm(key[1])
            out["cs_ext" if name.startswith("kindling-bench") else "cs_fn"] += n
    out["cs_machine"] = m1["ctxt"] - m0["ctxt"]
    out["intr_machine"] = m1["intr"] - m0["intr"]
    return {key: v / max(invokes, 1) for key, v in out.items()}


# Where the server's CPU goes, by symbol (perf report of --perf's recordings).
PERF_GROUPS = (
    ("telemetry", r"kindling_runtime_api::telemetry"),
    ("records", r"kindling_scheduler::logs::(start_record|runtime_done_record|report_record|init_)"),
    ("otel", r"kindling_otel|kindling_scheduler::spans"),
    ("metrics", r"kindling_metrics"),
    ("json ser", r"serde_json::ser|serialize_str|format_escaped"),
    ("malloc", r"malloc|_int_free|cfree|realloc|unlink_chunk"),
    ("ctx switch", r"finish_task_switch"),
)


def perf_shares(data: str) -> tuple[int, list[float]]:
    """Samples in `data` and the share (%) of each of PERF_GROUPS."""
    out = subprocess.run(["perf", "report", "-q", "--no-children", "-g", "none", "--sort", "symbol",
                          "-n", "-i", data], capture_output=True, text=True).stdout
    total, acc = 0, [0] * len(PERF_GROUPS)
    for line in out.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1))
        total += n
        for i, (_, rx) in enumerate(PERF_GROUPS):
            if re.search(rx, m.group(2)):
                acc[i] += n
                break
    return total, [100.0 * a / max(total, 1) for a in acc]


def table(med: dict, configs: dict) -> list[str]:
    """One binary's rows (medians)."""
    lines = [
        f"{'':11} {'single client':>48} | {'4 clients':>60}",
        f"{'':11} {'p50 us':>8} {'p99 us':>8} {'srv cpu/inv us':>15} {'children us':>12} | "
        f"{'rps':>7} {'srv cpu/inv us':>15} {'children us':>12} {'sink us':>8} {'foreign %':>10}",
    ]
    for n in configs:
        m = med[n]
        lines.append(f"{n:11} {m['p50']:8.1f} {m['p99']:8.1f} {m['lat_cpu']:15.1f} "
                     f"{m['lat_children']:12.1f} | {m['rps']:7.0f} {m['tp_cpu']:15.1f} "
                     f"{m['tp_children']:12.1f} {m['tp_sink']:8.1f} {m['foreign']:10.0f}")
    return lines


def costs(med: dict, rows: dict, configs: dict) -> list[str]:
    """Each row's CPU over 'off' (server, then children) for one binary."""
    lines = ["server CPU per invocation over 'off' (us, and % of off's):"]
    for n in configs:
        if n == "off":
            continue
        d1 = med[n]["lat_cpu"] - med["off"]["lat_cpu"]
        d4 = med[n]["tp_cpu"] - med["off"]["tp_cpu"]
        lines.append(
            f"  {n:11} single client {d1:+7.1f} us ({100 * d1 / med['off']['lat_cpu']:+5.1f} %)"
            f"   4 clients {d4:+7.1f} us ({100 * d4 / med['off']['tp_cpu']:+5.1f} %)"
            f"   runs: {rows[n]['lat_cpu']} / {rows[n]['tp_cpu']}")
    lines += [f"  {'off runs':11} {rows['off']['lat_cpu']} / {rows['off']['tp_cpu']}", "",
              "children's CPU per invocation over 'off' (us; with a subscriber: the "
              "extension's share):"]
    for n in configs:
        if n == "off":
            continue
        c1 = med[n]["lat_children"] - med["off"]["lat_children"]
        c4 = med[n]["tp_children"] - med["off"]["tp_children"]
        lines.append(f"  {n:11} single client {c1:+7.1f} us   4 clients {c4:+7.1f} us")
    lines += ["", "server + children + collector stand-in CPU per invocation over 'off', 4 clients "
              "(what competes for the cores; us, and % of off's):"]
    total = {n: med[n]["tp_cpu"] + med[n]["tp_children"] + med[n]["tp_sink"] for n in configs}
    for n in configs:
        if n == "off":
            continue
        d = total[n] - total["off"]
        lines.append(f"  {n:11} {d:+7.1f} us ({100 * d / total['off']:+5.1f} %)")
    return lines


def median_interval(xs: list[float], level: float = 0.9) -> tuple[float, float]:
    """A bootstrap interval of the median of xs (2,000 resamples, fixed seed)."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(2000))
    cut = int(len(meds) * (1 - level) / 2)
    return meds[cut], meds[-1 - cut]


def verdicts(med: dict, rows: dict, on_p50: list[float], off_p50: list[float],
             on_tp: list[list[float]], off_tp: list[list[float]],
             fresh: bool = False) -> list[str]:
    # p50: 'on' minus 'off' within each slice round (the two measured ~0.1 s apart), the
    # median of those differences; throughput: within each repetition. With fresh servers per
    # repetition, the p50 verdict is the median of the repetitions' differences instead: the
    # slices of one repetition share one pair of instances, so they are not independent draws
    # of what an instance adds (benches/results/obs-2026-12-07-instances.txt).
    if fresh:
        d = [on - off for on, off in zip(rows["on"]["p50"], rows["off"]["p50"])]
        what = f"median of {len(d)} paired repetitions, each a new pair of servers"
    else:
        d = [on - off for on, off in zip(on_p50, off_p50)]
        what = f"median of {len(d)} paired slice differences"
    d_p50 = statistics.median(d)
    lo, hi = median_interval(d)
    # Throughput: each repetition's cost is the median of 'on' against 'off' within its slice
    # rounds (the two measured back to back, the machine's slow and fast spells falling on
    # both); the verdict is the median of the repetitions' costs.
    rel = [statistics.median(100.0 * (off - on) / off for off, on in zip(offs, ons))
           for offs, ons in zip(off_tp, on_tp)]
    d_rps = statistics.median(rel)
    rlo, rhi = median_interval(rel)
    pooled = [100.0 * (off - on) / off
              for offs, ons in zip(off_tp, on_tp) for off, on in zip(offs, ons)]
    unpaired = med["on"]["p50"] - med["off"]["p50"]
    unpaired_rps = 100.0 * (med["off"]["rps"] - med["on"]["rps"]) / med["off"]["rps"]
    rounds = "; ".join(" ".join(f"{off:.0f}/{on:.0f}" for off, on in zip(offs, ons))
                       for offs, ons in zip(off_tp, on_tp))
    return [
        f"4-client slice rounds, rps off/on, repetitions separated by ';': {rounds}",
        f"all runs (off / on): p50 {rows['off']['p50']} / {rows['on']['p50']}; "
        f"rps {rows['off']['rps']} / {rows['on']['rps']}",
        f"p50 cost: {d_p50:+.1f} us, {what} (90 % interval "
        f"of that median {lo:+.1f} .. {hi:+.1f}; medians of the turns: {unpaired:+.1f}) "
        f"(target <= 5 us): {'PASS' if d_p50 <= 5 else 'MISS'}",
        f"throughput cost: {d_rps:+.1f} %, median of {len(rel)} repetitions' costs, each the "
        f"median of its {len(off_tp[0]) if off_tp else 0} paired slice rounds (90 % interval "
        f"{rlo:+.1f} .. {rhi:+.1f}; all {len(pooled)} slice rounds: median "
        f"{statistics.median(pooled):+.1f} %; medians of the turns: {unpaired_rps:+.1f} %) "
        f"(target <= 5 %): {'PASS' if d_rps <= 5 else 'MISS'}",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", required=True)
    ap.add_argument("--base", metavar="BIN",
                    help="a second Kindling binary (e.g. main's) measured in the same turns: "
                         "every row runs on both, alternately, and the report compares them")
    ap.add_argument("--base-rev", default="base", help="what --base is (for the report)")
    ap.add_argument("--rows", default="off,otlp,subscriber,scrape,on",
                    help="rows to run, comma-separated (off is always run)")
    ap.add_argument("--rust-fn", help="the Rust echo function (default: a Python echo)")
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rev", default="unknown")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--secs", type=float, default=4,
                    help="4-client measuring time per row and repetition (split into --tp-slices)")
    ap.add_argument("--tp-slices", type=int, default=4,
                    help="4-client turns are run as this many slices of secs/tp-slices, the rows "
                         "taking turns slice by slice; each repetition's throughput cost is the "
                         "median of 'on' against 'off' within its slice rounds")
    ap.add_argument("--tp-warmup-ms", type=int, default=1000,
                    help="each 4-client slice's unmeasured start (at least --sub-timeout-ms + "
                         "500): longer than the subscriber's flush timer, so the previous "
                         "slice's last batch is delivered before the window opens")
    ap.add_argument("--slices", type=int, default=8,
                    help="single-client turns are sent as this many slices of n/slices requests, "
                         "the rows taking turns slice by slice; the p50 verdict pairs 'on' and "
                         "'off' slice round by slice round")
    ap.add_argument("--no-otlp", action="store_true", help="'on' without span export")
    ap.add_argument("--no-subscriber", action="store_true", help="'on' without the extension")
    ap.add_argument("--no-scrape", action="store_true", help="'on' without /metrics scrapes")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument for every server's `serve` (repeatable), e.g. "
                         "--serve-arg=--cpu-latency-qos")
    ap.add_argument("--otlp-protocol", choices=("http/protobuf", "http/json"),
                    help="the servers' --otlp-protocol (default: theirs, http/protobuf)")
    ap.add_argument("--py-extension", action="store_true",
                    help="the subscriber in Python (http.server, counts records without parsing) "
                         "instead of the compiled one (kindling-bench telemetry-extension, parses "
                         "every batch)")
    ap.add_argument("--sub-timeout-ms", type=int, default=1000,
                    help="the subscriber's buffering timeoutMs (default Lambda's 1000)")
    ap.add_argument("--sched", action="store_true",
                    help="count context switches per invocation in the single-client turns: "
                         "machine-wide (/proc/stat) and the server's threads and children "
                         "(benches/tools/warm_sched.py's counters)")
    ap.add_argument("--fresh", action="store_true",
                    help="new servers (and so new environments) for every repetition: each "
                         "repetition compares another pair of instances, and the p50 verdict "
                         "is the median of the repetitions' differences (a server instance "
                         "keeps its own speed for minutes, by more than the rows differ)")
    ap.add_argument("--perf", metavar="DIR",
                    help="record each server's 4-client turns of the last repetition with "
                         "`perf record -e cpu-clock -g` into DIR/<row>[-base].data")
    args = ap.parse_args()
    slice_ms = max(100, int(1000 * args.secs / args.tp_slices))
    # Past the subscriber's flush timer (its batch and the extension's work on it) with room
    # for the bench tool's start.
    tp_warmup_ms = max(args.tp_warmup_ms, args.sub_timeout_ms + 500)

    enabled = [f for f in FEATURES if not getattr(args, "no_" + f)]
    # Rows: all off; each feature alone; all enabled features together ("on").
    configs = {"off": set()}
    for f in enabled:
        configs[f] = {f}
    configs["on"] = set(enabled)
    wanted = set(args.rows.split(",")) | {"off"}
    configs = {n: f for n, f in configs.items() if n in wanted}
    # The binaries measured: "new" (--kindling) and, with --base, "base".
    binaries = {"new": args.kindling}
    if args.base:
        binaries["base"] = args.base

    work = tempfile.mkdtemp(prefix="kindling-bench-obs-")
    sink = Sink(args.bench)
    protocol = ["--otlp-protocol", args.otlp_protocol] if args.otlp_protocol else []
    fn = "echo-rs" if args.rust_fn else "echo-py"
    path = ["--path", f"/2015-03-31/functions/{fn}/invocations"]
    servers: dict = {}
    generation = [0]

    def start_servers():
        """Starts one server per (row, binary), deploys the function (with the subscriber's
        layer where the row has it) and warms every one."""
        generation[0] += 1
        g = "" if generation[0] == 1 else f"-{generation[0]}"
        for name, feats in configs.items():
            for b, binary in binaries.items():
                servers[(name, b)] = Kindling(
                    binary, work, f"{name}-{b}{g}",
                    [*args.serve_arg,
                     *(["--otlp-endpoint", sink.url, *protocol] if "otlp" in feats else [])])
        for k in servers.values():
            if args.rust_fn:
                subprocess.run([args.bench, "deploy", "--addr", k.addr, "--rust-fn", args.rust_fn],
                               check=True, capture_output=True, timeout=120)
            else:
                k.api("POST", "/2015-03-31/functions", {
                    "FunctionName": fn, "Runtime": "python3.11", "Handler": "app.handler",
                    "Role": "arn:aws:iam::000000000000:role/bench",
                    "Code": {"ZipFile": py_zip()}})
        for (name, _), k in servers.items():
            if "subscriber" in configs[name]:
                layer = k.api("POST", "/2018-10-31/layers/subscriber/versions",
                              {"Content": {"ZipFile": layer_zip(
                                  args.sub_timeout_ms,
                                  None if args.py_extension else args.bench)}})["LayerVersionArn"]
                k.api("PUT", f"/2015-03-31/functions/{fn}/configuration", {"Layers": [layer]})
        # Warm every server (an update made a new environment with the extension).
        for k in servers.values():
            deadline = time.time() + 60
            while True:
                try:
                    load(args.bench, k, ["--warmup", "200", "--n", "500", *path])
                    break
                except RuntimeError:
                    if time.time() > deadline:
                        raise
                    time.sleep(1)

    target = [None]
    scraping = threading.Event()
    scrapes = [0]

    def scraper():
        # Once a second while a scrape row runs (its turns may be short slices: a scrape
        # still comes at most once a second, as Prometheus would send it).
        last = 0.0
        while True:
            scraping.wait()
            time.sleep(max(0.0, last + 1.0 - time.monotonic()))
            k = target[0]
            if not scraping.is_set() or k is None:
                continue
            try:
                urllib.request.urlopen(f"http://{k.addr}/metrics", timeout=10).read()
                scrapes[0] += 1
            except OSError:
                pass
            last = time.monotonic()
    threading.Thread(target=scraper, daemon=True).start()
    try:
        start_servers()
        rows = {b: {n: {} for n in configs} for b in binaries}
        # Paired differences (new - base) per repetition, per row.
        paired: dict[str, dict[str, list]] = {n: {} for n in configs}
        # Single-client p50 pairs: (row, binary) -> per slice round, that round's p50, so that
        # 'on' and 'off' are compared within one round (slices ~0.1 s apart), not across turns
        # seconds apart whose windows differ more than the rows do.
        slice_p50: dict[tuple, list] = {s: [] for s in servers}
        # 4-client rps per (row, binary): per repetition, its slices' in the order run.
        tp_rounds: dict[tuple, list] = {s: [] for s in servers}
        per_slice = max(1, args.n // args.slices)
        for rep in range(args.reps):
            if args.fresh and rep > 0:
                for k in servers.values():
                    k.stop()
                start_servers()
            # Alternate the rows' order too: whatever a turn leaves behind (a subscriber's
            # last batch, a halted vCPU) falls on 'off' and 'on' alike.
            # 'off' and 'on' side by side (then the single-feature rows), so that the two the
            # verdicts compare are measured back to back in every round.
            paired_first = [n for n in ("off", "on") if n in configs]
            row_order = paired_first + [n for n in configs if n not in paired_first]
            names = row_order if rep % 2 == 0 else list(reversed(row_order))
            # Alternate which binary goes first, so neither always follows the other.
            order = list(binaries) if rep % 2 == 0 else list(reversed(binaries))
            subjects = [(name, b) for name in names for b in order]
            # Single-client latency: args.n requests per subject as args.slices slices, the
            # subjects taking turns slice by slice (the order reversed every other round).
            lat_parts: dict[tuple, list] = {s: [] for s in subjects}
            for sl in range(args.slices):
                for name, b in (subjects if sl % 2 == 0 else list(reversed(subjects))):
                    k = servers[(name, b)]
                    target[0] = k
                    if "scrape" in configs[name]:
                        scraping.set()
                    before = sched_snapshot(k) if args.sched else None
                    warmup = 500 if sl == 0 else 50
                    lat = load(args.bench, k, ["--warmup", str(warmup), "--n", str(per_slice),
                                               *path])
                    scraping.clear()
                    if before is not None:
                        # The slice's warm-up requests are counted too.
                        for key, v in sched_per_invoke(k, before, lat["ok"] + warmup).items():
                            rows[b][name].setdefault(key, []).append(v)
                    lat_parts[(name, b)].append(lat)
                    slice_p50[(name, b)].append(lat["p50"])
            # 4-client throughput the same way: args.tp_slices slices per subject, the subjects
            # taking turns slice by slice (the order reversed every other round), each window
            # after tp_warmup_ms of unmeasured load.
            tp_parts: dict[tuple, list] = {s: [] for s in subjects}
            if any("otlp" in configs[n] for n in names):
                sink.settle()  # the single-client turns' last batch
            for sl in range(args.tp_slices):
                for name, b in (subjects if sl % 2 == 0 else list(reversed(subjects))):
                    k = servers[(name, b)]
                    target[0] = k
                    if "scrape" in configs[name]:
                        scraping.set()
                    perf = None
                    if args.perf and rep == args.reps - 1 and sl == 0:
                        os.makedirs(args.perf, exist_ok=True)
                        suffix = "" if b == "new" else "-" + b
                        perf = subprocess.Popen(
                            ["perf", "record", "-q", "-e", "cpu-clock", "-g", "-p",
                             str(k.proc.pid), "-o", os.path.join(args.perf, f"{name}{suffix}.data")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        time.sleep(0.3)
                    sink0 = sink.cpu_seconds()
                    tp = load(args.bench, k, ["--conns", "4", "--warmup-ms", str(tp_warmup_ms),
                                              "--measure-ms", str(slice_ms), *path])
                    if perf is not None:
                        perf.send_signal(2)
                        perf.wait(timeout=60)
                    scraping.clear()
                    if "otlp" in configs[name]:
                        # The call's last batch (sent within the exporter's 500 ms) is its own.
                        sink.settle()
                    # The collector stand-in's CPU over the call per request sent in it.
                    tp["sink_us"] = 1e6 * (sink.cpu_seconds() - sink0) / max(tp["sent"], 1)
                    tp_parts[(name, b)].append(tp)
            for name in names:
                got = {}
                for b in order:
                    parts = lat_parts[(name, b)]
                    ok = sum(p["ok"] for p in parts)
                    lat = {"p50": statistics.median(p["p50"] for p in parts),
                           "p99": statistics.median(p["p99"] for p in parts),
                           "server_cpu": sum(p["server_cpu"] * p["ok"] for p in parts) / ok,
                           "children_cpu": sum(p["children_cpu"] * p["ok"] for p in parts) / ok}
                    parts = tp_parts[(name, b)]
                    ok = sum(p["ok"] for p in parts)
                    sent = sum(p["sent"] for p in parts)
                    tp = {"rps": statistics.mean(p["rps"] for p in parts),
                          "server_cpu": sum(p["server_cpu"] * p["ok"] for p in parts) / max(ok, 1),
                          "children_cpu": sum(p["children_cpu"] * p["ok"] for p in parts)
                          / max(ok, 1),
                          "foreign": max(p["foreign"] for p in parts)}
                    sink_us = sum(p["sink_us"] * p["sent"] for p in parts) / max(sent, 1)
                    tp_rounds[(name, b)].append([p["rps"] for p in parts])
                    r = rows[b][name]
                    got[b] = {"lat_cpu": lat["server_cpu"], "tp_cpu": tp["server_cpu"],
                              "tp_children": tp["children_cpu"], "rps": tp["rps"],
                              "p50": lat["p50"]}
                    for key, v in (("p50", lat["p50"]), ("p99", lat["p99"]),
                                   ("lat_cpu", lat["server_cpu"]), ("rps", tp["rps"]),
                                   ("tp_cpu", tp["server_cpu"]), ("foreign", tp["foreign"]),
                                   ("lat_children", lat["children_cpu"]),
                                   ("tp_children", tp["children_cpu"]), ("tp_sink", sink_us)):
                        r.setdefault(key, []).append(v)
                if "base" in got:
                    for key in got["new"]:
                        paired[name].setdefault(key, []).append(got["new"][key] - got["base"][key])
        time.sleep(1.5)
        received, sink_cpu = sink.counts(), sink.cpu_seconds()
        load_avg = os.getloadavg()
        med = {b: {n: {k: statistics.median(v) for k, v in r.items()} for n, r in rs.items()}
               for b, rs in rows.items()}
        label = {"otlp": f"OTLP span export ({args.otlp_protocol or 'default encoding'})",
                 "subscriber": "Telemetry API subscriber ("
                               f"{'Python' if args.py_extension else 'compiled'} extension; "
                               "platform and function events, "
                               f"maxItems 10000, maxBytes 262144, timeoutMs {args.sub_timeout_ms})",
                 "scrape": "/metrics scraped every second"}
        lines = [
            f"Observability overhead, warm invoke of {fn} "
            f"({'Rust, lambda_runtime' if args.rust_fn else 'Python, Kindling bootstrap'}), "
            f"--isolation process, Kindling {args.rev}"
            + (f", every server with {' '.join(args.serve_arg)}" if args.serve_arg else "")
            + (f"; next to {args.base_rev} ({args.base}), the same rows in the same turns"
               if args.base else ""),
            "on = " + ", ".join(label[f] for f in enabled) + "; the middle rows have one each",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
            f"{load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} (1/5/15 min) at the end; "
            f"medians of {args.reps} interleaved repetitions ({args.n} requests single-client in "
            f"{args.slices} slices, "
            + ("new servers every repetition, " if args.fresh else "")
            + f"{args.secs:g} s at 4 clients in {args.tp_slices} slices, each after "
            f"{tp_warmup_ms} ms of unmeasured load)",
            "",
            "(children = the server's child processes: the function, and the subscribing "
            "extension; sink = the collector stand-in's CPU in the turn, per invocation)",
        ]
        for b in binaries:
            title = args.rev if b == "new" else args.base_rev
            lines += ["", f"== {title}"] if args.base else [""]
            lines += table(med[b], configs)
            if "off" in configs and len(configs) > 1:
                lines += [""] + costs(med[b], rows[b], configs)
            if "on" in configs:
                lines += [""] + verdicts(med[b], rows[b], slice_p50[("on", b)],
                                           slice_p50[("off", b)], tp_rounds[("on", b)],
                                           tp_rounds[("off", b)], args.fresh)
        if args.base:
            lines += ["", f"{args.rev} - {args.base_rev}, paired by turn (medians of the "
                      "per-repetition differences; negative CPU = cheaper):",
                      f"{'':11} {'srv cpu/inv 1c':>15} {'srv cpu/inv 4c':>15} "
                      f"{'children 4c':>12} {'rps 4c %':>9} {'p50 us':>8}"]
            for n in configs:
                d = {k: statistics.median(v) for k, v in paired[n].items()}
                rps_pct = 100.0 * d["rps"] / med["base"][n]["rps"]
                lines.append(f"{n:11} {d['lat_cpu']:+15.1f} {d['tp_cpu']:+15.1f} "
                             f"{d['tp_children']:+12.1f} {rps_pct:+9.1f} {d['p50']:+8.1f}")
        lines += [
            "",
            f"spans received by the collector stand-in: {received['spans']} "
            f"(undecodable exports: {received['bad']}; its CPU: {sink_cpu:.2f} s, "
            f"{1e6 * sink_cpu / max(int(received['spans']), 1):.2f} us per span); "
            f"/metrics scrapes: {scrapes[0]}",
        ]
        busy = max(m[n]["foreign"] for m in med.values() for n in configs)
        if busy > 20:
            lines.append(f"WARNING: other work took up to {busy:.0f} % of the machine: the p50 and "
                         "throughput verdicts above are noise; read CPU per invocation and the "
                         "perf shares")
        if args.sched:
            lines += ["", "context switches per invocation, single-client turns (medians; "
                      "machine = /proc/stat ctxt, ext = the subscribing extension):",
                      f"{'':16} " + " ".join(f"{key:>13}" for key in SCHED_KEYS)]
            for b in binaries:
                suffix = "" if b == "new" else "-" + b
                for n in configs:
                    lines.append(f"{n + suffix:16} " + " ".join(
                        f"{med[b][n][key]:13.2f}" for key in SCHED_KEYS))
        if args.perf:
            lines += ["", "perf (cpu-clock, the server's threads, each row's last 4-client turn): "
                      "share of the server's samples by symbol group",
                      f"{'':16} {'samples':>8} " + " ".join(f"{g:>10}" for g, _ in PERF_GROUPS)]
            for b in binaries:
                suffix = "" if b == "new" else "-" + b
                for n in configs:
                    total, shares = perf_shares(os.path.join(args.perf, f"{n}{suffix}.data"))
                    lines.append(f"{n + suffix:16} {total:8} "
                                 + " ".join(f"{x:9.2f}%" for x in shares))
        text = "\n".join(lines) + "\n"
        print(text)
        with open(args.out, "w") as f:
            f.write(text)
    finally:
        for k in servers.values():
            k.stop()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
