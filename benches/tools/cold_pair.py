#!/usr/bin/env python3
"""Paired cold starts: old vs new binary, --prewarm 0 and --prewarm 2, python3.12 trivial handler.

    OLD=path/to/kindling NEW=path/to/kindling python3 benches/tools/cold_pair.py [N]

Four servers (namespaces), N fresh functions each, in alternating turns 250 ms apart: client
round trip of the first invoke and its Init Duration (benches/results/cold-pyc-paired-*.txt)."""
import sys, time, tempfile, shutil, statistics, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prewarm import start, stop
from runtimes import ECHO, zip_files, report_value
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
runtime, handler, files = ECHO["python"]
code = zip_files(files)
work = Path(tempfile.mkdtemp(prefix="dens-cold-"))
servers = {}
for b in ("old", "new"):
    for pw in ("0", "2"):
        servers[(b, pw)] = start(os.environ[b.upper()], "namespaces", ["--prewarm", pw, "--prewarm-runtimes", runtime], work, f"{b}-{pw}")
time.sleep(3)
res = {k: ([], []) for k in servers}
try:
    for i in range(N):
        for k, (proc, api) in servers.items():
            name = f"c{i}"
            api.create(name, runtime, handler, code, 512)
            time.sleep(0.25)
            rt, _, log = api.invoke(name, b"{}", True)
            res[k][0].append(rt)
            res[k][1].append(report_value(log, "Init Duration") or float("nan"))
finally:
    for proc, api in servers.values():
        stop(proc)
shutil.rmtree(work, ignore_errors=True)
print(f"cold starts, python3.12 trivial handler, namespaces, {N} each, alternating; load {os.getloadavg()[0]:.1f}")
for k, (rt, init) in res.items():
    print(f"  {k[0]:3} --prewarm {k[1]}: round trip min {min(rt):6.1f} p50 {statistics.median(rt):6.1f} ms;  Init Duration min {min(init):6.1f} p50 {statistics.median(init):6.1f} ms")
