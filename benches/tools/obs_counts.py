#!/usr/bin/env python3
"""Load-insensitive counts of what observability costs a warm invoke: the server's heap
allocations per invoke (perf uprobes on libc's malloc/realloc/calloc) and its system calls per
invoke (strace -c -f), per row of benches/obs.py (off, otlp, subscriber, on = otlp +
subscriber; /metrics scrapes cost nothing per invoke), for one or more Kindling binaries.
Single client, so batches are as large as a single client makes them.

    benches/tools/obs_counts.py --bench B --rust-fn F --out FILE [--n 2000] BIN[=LABEL] ...

(Instruction counts would be better still, but this machine has no hardware counters and
valgrind cannot run the server: it does not implement clone3, which the sandbox uses.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from obs import Kindling, Sink, layer_zip, load  # noqa: E402

ROWS = {"off": set(), "otlp": {"otlp"}, "subscriber": {"subscriber"},
        "on": {"otlp", "subscriber"}}

def setup(binary, bench, rust_fn, work, name, feats, sink):
    extra = ["--otlp-endpoint", sink.url] if "otlp" in feats else []
    k = Kindling(binary, work, name, extra)
    subprocess.run([bench, "deploy", "--addr", k.addr, "--rust-fn", rust_fn],
                   check=True, capture_output=True, timeout=600)
    if "subscriber" in feats:
        layer = k.api("POST", "/2018-10-31/layers/subscriber/versions",
                      {"Content": {"ZipFile": layer_zip(1000, bench)}})["LayerVersionArn"]
        k.api("PUT", "/2015-03-31/functions/echo-rs/configuration", {"Layers": [layer]})
    path = ["--path", "/2015-03-31/functions/echo-rs/invocations"]
    deadline = time.time() + 600
    while True:
        try:
            load(bench, k, ["--warmup", "100", "--n", "300", *path])
            return k, path
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(1)


def allocations(binary, args, work, name, feats, sink) -> dict:
    """Heap allocations per invoke (perf uprobes on libc's malloc/realloc/calloc, which
    `ensure_probes` adds), with the batch tasks' share of the run (they send after it)."""
    k, path = setup(binary, args.bench, args.rust_fn, work, name, feats, sink)
    try:
        out = os.path.join(work, f"{name}.allocs")
        pp = subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(PROBES), "-p",
                               str(k.proc.pid), "-o", out],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = load(args.bench, k, ["--warmup", "0", "--n", str(args.n), *path])
        # The batch tasks send what the run queued (OTLP: 500 ms; Telemetry: timeoutMs).
        time.sleep(1.5)
        pp.send_signal(2)
        pp.wait(timeout=30)
    finally:
        k.stop()
    counts = {}
    for line in open(out):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            counts[f[2].split(":")[-1]] = int(f[0])
    ok = max(r["ok"], 1)
    return {p: counts.get(p, 0) / ok for p in ("malloc", "realloc", "calloc")}


PROBES = ("probe_libc:malloc", "probe_libc:realloc", "probe_libc:calloc")


def ensure_probes() -> None:
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    if "probe_libc:malloc" in listed:
        return
    libc = next(line.split()[-1] for line in subprocess.run(
        ["ldconfig", "-p"], capture_output=True, text=True).stdout.splitlines()
        if "libc.so.6" in line and "x86-64" in line)
    subprocess.run(["perf", "probe", "-q", "-x", libc, "-a", "malloc", "-a", "realloc",
                    "-a", "calloc"], check=True)


def syscalls(binary, args, work, name, feats, sink) -> tuple[float, str]:
    k, path = setup(binary, args.bench, args.rust_fn, work, name, feats, sink)
    try:
        out = os.path.join(work, f"{name}.strace")
        sp = subprocess.Popen(["strace", "-f", "-c", "-p", str(k.proc.pid), "-o", out],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        r = load(args.bench, k, ["--warmup", "0", "--n", str(args.n), *path])
        time.sleep(2)
        sp.send_signal(2)
        sp.wait(timeout=30)
    finally:
        k.stop()
    calls = {}
    for line in open(out):
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    ok = max(r["ok"], 1)
    top = sorted(calls.items(), key=lambda kv: -kv[1])
    detail = " ".join(f"{s} {c / ok:.2f}" for s, c in top if c / ok >= 0.01)
    return sum(calls.values()) / ok, detail


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+", help="BIN or BIN=LABEL")
    ap.add_argument("--bench", required=True)
    ap.add_argument("--rust-fn", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rows", default="off,otlp,subscriber,on")
    ap.add_argument("--no-strace", action="store_true")
    args = ap.parse_args()
    rows = [r for r in args.rows.split(",") if r in ROWS]
    bins = [(b.split("=", 1) + [os.path.basename(b)])[:2] for b in args.binaries]
    work = tempfile.mkdtemp(prefix="kindling-obs-counts-")
    sink = Sink(args.bench)
    ensure_probes()
    lines = [f"Observability counts per warm invoke of echo-rs (single client, {args.n} invokes), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "allocations: the server's malloc/realloc/calloc calls (perf uprobes); "
             "syscalls: strace -c -f of the server", ""]
    try:
        for path, label in bins:
            lines.append(f"== {label} ({path})")
            lines.append(f"{'':11} {'malloc':>8} {'realloc':>8} {'calloc':>8} "
                         f"{'syscalls':>9}")
            for row in rows:
                name = f"{label}-{row}"
                a = allocations(path, args, work, name, ROWS[row], sink)
                sc, detail = (0.0, "") if args.no_strace else syscalls(
                    path, args, work, name + "-st", ROWS[row], sink)
                lines.append(f"{row:11} {a['malloc']:8.2f} {a['realloc']:8.2f} "
                             f"{a['calloc']:8.2f} {sc:9.2f}")
                if detail:
                    lines.append(f"{'':11} syscalls: {detail}")
                print("\n".join(lines[-2:]), flush=True)
            lines.append("")
    finally:
        sink.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
