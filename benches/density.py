#!/usr/bin/env python3
"""Idle warm Python environments: Kindling's own memory and each environment's private memory.

    benches/run --density            (builds release Kindling, then runs this)
    python3 benches/density.py --kindling target/release/kindling [--envs N]

One Kindling (`--isolation namespaces`, pre-initialized environments on), N Python functions
(python3.12, a trivial handler) each invoked once: N idle warm environments (frozen after
500 ms, as usual). Then, from /proc: Kindling's resident memory before and after (and per
environment), and for every environment's processes (the supervisor `kindling-init` and the
runtime) their private memory (Private_Clean + Private_Dirty of smaps_rollup: what the
environment alone costs) and PSS. Writes benches/results/density-latest.txt.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prewarm import start, stop  # noqa: E402
from runtimes import ECHO, pct, zip_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rollup(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (supervisors are cloned from worker threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--envs", type=int, default=200)
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "density-latest.txt"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kindling-density-"))
    runtime, handler, files = ECHO["python"]
    code = zip_files(files)
    proc, api = start(args.kindling, "namespaces",
                      ["--prewarm", "2", "--prewarm-runtimes", runtime], work, "density")
    try:
        time.sleep(2)
        base_rss = rss_kib(proc.pid)
        started = time.monotonic()
        for i in range(args.envs):
            name = f"idle-{i}"
            api.create(name, runtime, handler, code, args.memory_mb)
            api.invoke(name, b"{}", False)
        took = time.monotonic() - started
        time.sleep(3)  # idle: frozen after 500 ms
        after_rss = rss_kib(proc.pid)
        envs = []
        for sup in children(proc.pid):
            comm = Path(f"/proc/{sup}/comm").read_text().strip()
            if comm != "kindling-init":
                continue
            procs = [sup] + children(sup)
            roll = [rollup(p) for p in procs]
            private = sum(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in roll)
            pss = sum(r.get("Pss", 0) for r in roll)
            rss = sum(r.get("Rss", 0) for r in roll)
            runtime_private = sum(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in roll[1:])
            envs.append((private, pss, rss, runtime_private, len(procs)))
    finally:
        stop(proc)
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    priv = [e[0] / 1024 for e in envs]
    rt_priv = [e[3] / 1024 for e in envs]
    pss = [e[1] / 1024 for e in envs]
    rss = [e[2] / 1024 for e in envs]
    lines = [
        f"Kindling density benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, rev {rev}, "
        f"binary {args.kindling}",
        f"{args.envs} python3.12 functions invoked once each ({took:.1f} s), MemorySize {args.memory_mb} MB, "
        f"namespaces, --prewarm 2; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        "",
        f"environments found (supervisor + runtime trees, incl. 2 waiting): {len(envs)}",
        f"Kindling RSS: {base_rss / 1024:.1f} MB before, {after_rss / 1024:.1f} MB after "
        f"({(after_rss - base_rss) / max(args.envs, 1):.1f} KiB per environment; "
        f"extrapolated to 1,000: {(base_rss + (after_rss - base_rss) * 1000 / max(args.envs, 1)) / 1024:.1f} MB, target <= 200 MB)",
        f"per environment, MB        p50     p90     max",
        f"  private (whole tree)  {pct(priv, 50):6.2f}  {pct(priv, 90):6.2f}  {max(priv, default=0):6.2f}   target <= 3 MB",
        f"  private (runtime)     {pct(rt_priv, 50):6.2f}  {pct(rt_priv, 90):6.2f}  {max(rt_priv, default=0):6.2f}",
        f"  PSS                   {pct(pss, 50):6.2f}  {pct(pss, 90):6.2f}  {max(pss, default=0):6.2f}",
        f"  RSS                   {pct(rss, 50):6.2f}  {pct(rss, 90):6.2f}  {max(rss, default=0):6.2f}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
