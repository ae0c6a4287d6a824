#!/usr/bin/env python3
"""Load-insensitive counts of what observability costs a warm invoke: the server's user-space
instructions per invoke (valgrind callgrind, instrumentation on only while the measured
invokes run) and its system calls per invoke (strace -c -f), per row of benches/obs.py (off,
otlp, subscriber, on = otlp + subscriber; /metrics scrapes cost nothing per invoke), for one or
more Kindling binaries.

    benches/tools/obs_counts.py --bench B --rust-fn F --out FILE [--n 2000] BIN[=LABEL] ...

Instruction counts do not depend on the machine's load; they leave out the kernel (see the
system calls) and the other processes (the function, the extension, the collector stand-in:
benches/obs.py's children and sink columns). Under callgrind the server runs ~50x slower, so
its batches are smaller than at full speed (each batch's fixed cost is over-counted).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from obs import Kindling, Sink, layer_zip, load  # noqa: E402

ROWS = {"off": set(), "otlp": {"otlp"}, "subscriber": {"subscriber"},
        "on": {"otlp", "subscriber"}}

# Exclusive instructions by symbol group (first match wins).
GROUPS = (
    ("otel", r"kindling_otel|kindling_scheduler::spans"),
    ("telemetry", r"kindling_runtime_api::telemetry"),
    ("records", r"kindling_scheduler::logs::"),
    ("malloc", r"malloc|_int_free|free|realloc|unlink_chunk|calloc|memalign"),
    ("tokio", r"tokio::"),
)


def setup(binary, bench, rust_fn, work, name, feats, sink, wrap=None):
    extra = ["--otlp-endpoint", sink.url] if "otlp" in feats else []
    k = Kindling(binary, work, name, extra, wrap=wrap)
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


def callgrind(binary, args, work, name, feats, sink) -> tuple[float, dict]:
    out = os.path.join(work, f"{name}.callgrind")
    wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    k, path = setup(binary, args.bench, args.rust_fn, work, name, feats, sink, wrap)
    try:
        subprocess.run(["callgrind_control", "-i", "on", str(k.proc.pid)], check=True,
                       capture_output=True)
        r = load(args.bench, k, ["--warmup", "0", "--n", str(args.n), *path])
        # Let the batch tasks send what the run queued (OTLP: 500 ms; Telemetry: timeoutMs).
        time.sleep(3)
        subprocess.run(["callgrind_control", "-d", str(k.proc.pid)], check=True,
                       capture_output=True)
        subprocess.run(["callgrind_control", "-i", "off", str(k.proc.pid)], check=True,
                       capture_output=True)
    finally:
        k.stop()
    dumps = sorted(f for f in os.listdir(work) if f.startswith(f"{name}.callgrind"))
    dump = os.path.join(work, [d for d in dumps if d != f"{name}.callgrind"][0]
                        if len(dumps) > 1 else dumps[0])
    text = subprocess.run(["callgrind_annotate", "--threshold=100", dump],
                          capture_output=True, text=True).stdout
    total = 0
    groups = {g: 0 for g, _ in GROUPS}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        sym = m.group(2)
        if "PROGRAM TOTALS" in sym:
            total = n
            continue
        for g, rx in GROUPS:
            if re.search(rx, sym):
                groups[g] += n
                break
    ok = max(r["ok"], 1)
    return total / ok, {g: v / ok for g, v in groups.items()}


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
    lines = [f"Observability counts per warm invoke of echo-rs (single client, {args.n} invokes), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "instructions: the server's user space (callgrind), exclusive by symbol group; "
             "syscalls: strace -c -f of the server", ""]
    try:
        for path, label in bins:
            lines.append(f"== {label} ({path})")
            lines.append(f"{'':11} {'instr/inv':>10} " + " ".join(f"{g:>9}" for g, _ in GROUPS)
                         + f" {'syscalls/inv':>13}")
            base = None
            for row in rows:
                name = f"{label}-{row}"
                ir, groups = callgrind(path, args, work, name, ROWS[row], sink)
                sc, detail = (0.0, "") if args.no_strace else syscalls(
                    path, args, work, name + "-st", ROWS[row], sink)
                base = ir if base is None else base
                lines.append(f"{row:11} {ir:10.0f} " + " ".join(f"{groups[g]:9.0f}" for g, _ in
                                                                GROUPS) + f" {sc:13.2f}"
                             + f"   (+{ir - base:.0f} over off)")
                if detail:
                    lines.append(f"{'':11} syscalls: {detail}")
                print(lines[-2] if detail else lines[-1], flush=True)
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
