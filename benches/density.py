#!/usr/bin/env python3
"""Idle warm Python environments: Kindling's own memory and each environment's private memory.

    benches/run --density            (builds release Kindling, then runs this)
    python3 benches/density.py --kindling target/release/kindling [--envs N]

One Kindling (`--isolation namespaces`, pre-initialized environments on), N Python functions
(python3.12, a trivial handler) each invoked once: N idle warm environments (frozen after
500 ms, as usual). Then, from /proc: Kindling's resident memory before and after (and per
environment), and for every environment's processes (the supervisor `kindling-init` and the
runtime) their private memory (Private_Clean + Private_Dirty of smaps_rollup: what the
environment alone costs) and PSS. With `--churn N`, Kindling then serves N invocations of
one of them (payloads of 1-256 KiB, which churn its heap) and the environments are measured
again: a supervisor's private memory must not grow with what Kindling writes (#15; it did
while supervisors kept the copy of Kindling's address space their clone gave them).
Writes benches/results/density-latest.txt.
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


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
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


def by_mapping(pid: int) -> dict:
    """Private memory (kB) of one process by kind of mapping, from /proc/<pid>/smaps."""
    sizes, kind = {}, None
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return sizes
    for line in text.splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0] and len(head) >= 5:
            name = head[5] if len(head) > 5 else ""
            kind = ("heap" if name == "[heap]" else "stack" if name == "[stack]" else
                    "anon" if not name else "libpython" if "libpython" in name else
                    ".so" if ".so" in name else "other")
        elif line.startswith(("Private_Clean:", "Private_Dirty:")):
            sizes[kind] = sizes.get(kind, 0) + int(head[1])
    return sizes


KINDS = [("heap", "malloc heap [heap]"), ("anon", "anonymous (pymalloc arenas, mmap'd malloc)"),
         ("libpython", "libpython's written pages"), (".so", "other shared objects"),
         ("stack", "stack"), ("other", "other (executable, ...)")]


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (supervisors are cloned from worker threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def measure(kindling_pid: int) -> list[tuple]:
    """(tree private, PSS, RSS, runtime private, processes, supervisor private, runtime private by
    kind of mapping) per environment."""
    envs = []
    for sup in children(kindling_pid):
        try:
            comm = Path(f"/proc/{sup}/comm").read_text().strip()
        except OSError:
            continue
        if comm != "kindling-init":
            continue
        procs = [sup] + children(sup)
        roll = [rollup(p) for p in procs]
        private = sum(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in roll)
        pss = sum(r.get("Pss", 0) for r in roll)
        rss = sum(r.get("Rss", 0) for r in roll)
        runtime_private = sum(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in roll[1:])
        sup_private = roll[0].get("Private_Clean", 0) + roll[0].get("Private_Dirty", 0)
        kinds = {}
        for p in procs[1:]:
            for k, v in by_mapping(p).items():
                kinds[k] = kinds.get(k, 0) + v
        envs.append((private, pss, rss, runtime_private, len(procs), sup_private, kinds))
    return envs


def rows(envs: list[tuple], label: str) -> list[str]:
    def col(i):
        return [e[i] / 1024 for e in envs]

    out = [f"per environment, MB ({label})"]
    for name, i, note in (("private (whole tree)", 0, "   target <= 3 MB"), ("private (supervisor)", 5, ""),
                          ("private (runtime)", 3, ""), ("PSS", 1, ""), ("RSS", 2, "")):
        v = col(i)
        out.append(f"  {name:<20}  {pct(v, 50):6.2f}  {pct(v, 90):6.2f}  {max(v, default=0):6.2f}{note}")
    out.append("  the runtime's private memory by mapping, MB (p50)")
    for kind, label in KINDS:
        v = [e[6].get(kind, 0) / 1024 for e in envs]
        out.append(f"    {label:<44}  {pct(v, 50):6.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kindling", default=str(ROOT / "target" / "release" / "kindling"))
    ap.add_argument("--envs", type=int, default=200)
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--churn", type=int, default=0, help="invocations that churn Kindling's heap")
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
        after_anon = rss_kib(proc.pid, "RssAnon")
        envs = measure(proc.pid)
        churned, churn_rss, churn_anon = [], 0, 0
        if args.churn:
            sizes = [1 << k for k in range(10, 19)]  # 1 KiB .. 256 KiB
            for i in range(args.churn):
                body = b'{"pad": "' + b"x" * sizes[i % len(sizes)] + b'"}'
                api.invoke("idle-0", body, False)
            time.sleep(3)
            churn_rss = rss_kib(proc.pid)
            churn_anon = rss_kib(proc.pid, "RssAnon")
            churned = measure(proc.pid)
    finally:
        stop(proc)
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
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
        f"Kindling's anonymous memory (RssAnon, what a supervisor that kept its clone's copy could "
        f"come to own): {after_anon / 1024:.1f} MB",
        "                                p50     p90     max",
    ] + rows(envs, "idle, after their start")
    if args.churn:
        lines += [
            "",
            f"after {args.churn} invocations of idle-0 (payloads 1-256 KiB): Kindling RSS {churn_rss / 1024:.1f} MB "
            f"(RssAnon {churn_anon / 1024:.1f} MB); "
            f"{len(churned)} environments",
        ] + rows(churned, "idle, after Kindling's churn")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
