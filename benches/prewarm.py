#!/usr/bin/env python3
"""Cold starts with and without pre-initialized environments, in one run.

    benches/run --prewarm            (builds release Kindling, then runs this)
    python3 benches/prewarm.py --kindling target/release/kindling [--kindling-old OLD] [--cold N]

Kindlings side by side (same isolation): `--prewarm 0` (every cold start builds a sandbox and
starts the interpreter) and `--prewarm 2 --prewarm-runtimes ...` (Python, Node.js and custom
runtime cold starts take a pre-initialized environment: for `provided.al2023` a pre-built
sandbox whose program waits before its execve), and with `--kindling-old` a third, another
binary with `--prewarm 2` (for example the previous revision), so that old and new are
measured alternately under the same load. For each runtime (python3.12, nodejs20.x and the
static C custom runtime provided.al2023) `--cold` fresh functions each (own package:
CreateFunction, then the first invoke), measured in alternating turns so background load falls
on all alike, each after a 250 ms pause (isolated events; a pre-initialized pool refills within
it). Figures: client round trip of the first invoke and `Init Duration` from its REPORT. A last
row per server: a Python function whose import takes 200 ms (time.sleep), to show that Init
Duration is the import and nothing more.

Phases (servers of this binary, from their debug line "cold start phases" and the client's
clock): pre = request sent -> cold start begins (HTTP, admission), prepare = code, log stream,
command (blocking pool), spawn/claim = sandbox or claim, init = to the runtime's first /next,
post = Init done -> response received (the invocation itself, REPORT, log tail, HTTP). Minima
are the least load-sensitive. Writes benches/results/prewarm-latest.txt.
"""

import argparse
import json
import re
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtimes import ECHO, Api, c_package, pct, report_value, zip_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"python": 8.0, "node": 25.0, "c": 5.0}
HEAVY = ("python3.12", "app.handler", {"app.py": (
    "import time\n_t = time.monotonic()\ntime.sleep(0.2)\nIMPORT_MS = (time.monotonic() - _t) * 1000\n"
    "def handler(event, context):\n    return {'import_ms': IMPORT_MS}\n")})


def start(kindling: str, isolation: str, extra: list[str], work: Path, tag: str):
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / f"{tag}.log", "wb")
    # Debug lines of the scheduler: the phases of each cold start.
    env = dict(os.environ, KINDLING_LOG="info,kindling_scheduler::start=debug")
    proc = subprocess.Popen(
        [kindling, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / tag),
         "--isolation", isolation, "--idle-timeout", "600", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, Api(port)
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"kindling ({tag}) did not start:\n{(work / f'{tag}.log').read_text()[-2000:]}")
            time.sleep(0.05)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def phase_lines(log: Path) -> dict:
    """function name -> (wall-clock time of the line, its fields) of "cold start phases"."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        line = ANSI.sub("", line)
        if "cold start phases" not in line:
            continue
        try:
            at = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        found[fields.get("function", "")] = (at, fields)
    return found


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--kindling-old", help="another binary measured alongside with --prewarm 2")
    ap.add_argument("--cold", type=int, default=10, help="cold starts per runtime and server")
    ap.add_argument("--memory-mb", type=int, default=512)
    ap.add_argument("--isolation", default="namespaces")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "prewarm-latest.txt"))
    ap.add_argument("--note", action="append", default=[], help="a line added to the results")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kindling-prewarm-bench-"))
    packages = {"c": ("provided.al2023", "echo", c_package(work))}
    for key in ("python", "node"):
        runtime, handler, files = ECHO[key]
        packages[key] = (runtime, handler, zip_files(files))
    heavy = (HEAVY[0], HEAVY[1], zip_files(HEAVY[2]))
    servers = {}
    # (client send time, client receive time) per (server, function).
    stamps = {}
    try:
        servers["off"] = start(args.kindling, args.isolation, ["--prewarm", "0"], work, "off")
        servers["on"] = start(args.kindling, args.isolation,
                              ["--prewarm", "2", "--prewarm-runtimes",
                               "python3.12,nodejs20.x,provided.al2023"], work, "on")
        if args.kindling_old:
            servers["old"] = start(args.kindling_old, args.isolation,
                                   ["--prewarm", "2", "--prewarm-runtimes", "python3.12,nodejs20.x"],
                                   work, "old")
        payload = json.dumps({"hello": "world", "n": 1}).encode()
        results = {(s, k): ([], []) for s in servers for k in packages}
        heavy_rows = {s: [] for s in servers}
        for key, (runtime, handler, code) in packages.items():
            for tag, (_, api) in servers.items():
                # One throw-away function first: interpreter discovery and the like are
                # one-off work, not a cold start.
                api.create(f"warmup-{key}", runtime, handler, code, args.memory_mb)
                api.invoke(f"warmup-{key}", payload, True)
            for i in range(args.cold):
                for tag, (_, api) in servers.items():
                    name = f"cold-{key}-{i}"
                    api.create(name, runtime, handler, code, args.memory_mb)
                    time.sleep(0.25)
                    sent = time.time()
                    elapsed, out, log = api.invoke(name, payload, True)
                    stamps[(tag, name)] = (sent, time.time())
                    # The C echo answers {"machine": ..., "event": ...}.
                    assert json.loads(out) in (json.loads(payload),
                                               {"machine": "x86_64", "event": json.loads(payload)}), out
                    client, init = results[(tag, key)]
                    client.append(elapsed)
                    if (v := report_value(log, "Init Duration")) is not None:
                        init.append(v)
            print(f"{key}: " + ", ".join(
                f"{tag} p50 {statistics.median(results[(tag, key)][0]):.1f} ms" for tag in servers),
                file=sys.stderr)
        for i in range(3):
            for tag, (_, api) in servers.items():
                name = f"heavy-{i}"
                api.create(name, *heavy, args.memory_mb)
                time.sleep(0.25)
                elapsed, out, log = api.invoke(name, payload, True)
                heavy_rows[tag].append((elapsed, report_value(log, "Init Duration"), json.loads(out)["import_ms"]))
    finally:
        for proc, _ in servers.values():
            stop(proc)
    phases = {tag: phase_lines(work / f"{tag}.log") for tag in servers}

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        f"Kindling pre-initialized environments benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"rev {rev}, binary {args.kindling}",
        f"isolation {args.isolation}, MemorySize {args.memory_mb} MB, {args.cold} cold starts per runtime and "
        f"server, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 shared cores)",
        "",
        "Cold: CreateFunction, then the first invoke of a fresh function (own package). client = round trip",
        "seen by the client, Init = 'Init Duration' of the REPORT. ms. off = --prewarm 0, on = --prewarm 2",
        "(python, node and provided pre-initialized)" + (f", old = {args.kindling_old} --prewarm 2 (python, node)."
                                                          if args.kindling_old else "."),
        "",
        f"{'runtime':<18} {'server':<4} {'client p50':>10} {'min':>7} {'max':>7} {'Init p50':>9} {'min':>7}   target",
    ]
    for key, (runtime, _, _) in packages.items():
        for tag in servers:
            client, init = results[(tag, key)]
            verdict = ""
            if tag == "on":
                verdict = f"<= {TARGETS[key]:.0f} ms " + ("PASS" if statistics.median(client) <= TARGETS[key] else "MISS")
            lines.append(f"{runtime:<18} {tag:<4} {statistics.median(client):>10.2f} {min(client):>7.2f} "
                         f"{max(client):>7.2f} {pct(init, 50):>9.2f} {min(init, default=float('nan')):>7.2f}   {verdict}")
    lines.append("")
    lines.append("Python function whose import sleeps 200 ms: client, Init Duration, import time measured by")
    lines.append("the function itself; Init - import = what the platform adds to the function's Init.")
    for tag, rows in heavy_rows.items():
        for client, init, imp in rows:
            lines.append(f"  {tag:<4} client {client:7.1f}  Init {init:7.1f}  import {imp:7.1f}  Init-import {init - imp:6.1f}")
    for tag, (client_off, client_on) in [("python", (results[("off", "python")][0], results[("on", "python")][0])),
                                         ("node", (results[("off", "node")][0], results[("on", "node")][0]))]:
        lines.append(f"  {tag}: pre-initialized saves {statistics.median(client_off) - statistics.median(client_on):.1f} ms "
                     f"of {statistics.median(client_off):.1f} ms (p50 off - p50 on)")
    lines.append("")
    lines.append("Phases of the first invokes (ms; servers with the phase line; p50 / min): pre = request -> cold")
    lines.append("start, prepare, spawn|claim, init = -> first /next, post = Init done -> response at the client.")
    for key, (runtime, _, _) in packages.items():
        for tag in servers:
            rows = []
            for i in range(args.cold):
                name = f"cold-{key}-{i}"
                if name not in phases[tag] or (tag, name) not in stamps:
                    continue
                at, f = phases[tag][name]
                sent, received = stamps[(tag, name)]
                ready = int(f["ready_us"]) / 1000
                prepare = int(f["prepare_us"]) / 1000
                setup = int(f["setup_us"]) / 1000
                rows.append(((at - ready / 1000 - sent) * 1000, prepare, setup - prepare, ready - setup,
                             (received - at) * 1000, f.get("prewarmed") == "true"))
            if not rows:
                continue
            cols = list(zip(*rows))
            text = "  ".join(f"{label} {statistics.median(c):6.2f} / {min(c):6.2f}"
                             for label, c in zip(("pre", "prepare", "spawn|claim", "init", "post"), cols))
            lines.append(f"  {runtime:<16} {tag:<4} {text}  pre-initialized {sum(cols[5])}/{len(rows)}")
    lines.extend(args.note)
    lines.append("")
    lines.append("Previous figures (benches/results/latest.txt, python namespaces first invoke after deploy, an")
    lines.append("idle machine): client 29.58 ms, Init 26.25 ms; rust (provided) 9.79 ms / 7.48 ms. Compare rows")
    lines.append("of one run only: the load average above says how much of the machine others used.")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
