#!/usr/bin/env python3
"""CPU per invoke by process group and symbol from `perf record -a -F HZ -e cpu-clock` files
written by warm_sched.py --perf-dir (each DATA has DATA.ok: the invokes it covered, and the
server's pid), and the difference between two of them.

    perf_per_invoke.py [--hz 1999] [--top 25] [--group fn] A.data [B.data]

Groups: `server` (every thread of the Kindling process), `fn` (the runtimes, comm
`bootstrap`), `client` (kindling-bench: its threads are `tokio-rt-worker`, like the server's), `idle` (swapper), `other`. Prints each group's
total, its user/kernel split, then the top symbols (self time) of --group in us per invoke;
with two files both side by side and B - A, sorted by the difference.
"""

import argparse
import subprocess
from collections import Counter


def load(path):
    with open(path + ".ok") as f:
        fields = f.read().split()
    ok, server = int(fields[0]), int(fields[1]) if len(fields) > 1 else -1
    out = subprocess.run(
        ["perf", "script", "-i", path, "-G", "-F", "pid,tid,comm,ip,sym"],
        capture_output=True, text=True, check=True,
    ).stdout
    pid_comm = {}
    rows = []
    for line in out.splitlines():
        # "<comm> <pid>/<tid> <ip> <sym>"; comm may contain spaces: split from the pid/tid field.
        parts = line.split()
        at = next((i for i, p in enumerate(parts) if "/" in p and p.split("/")[0].isdigit()), None)
        if at is None:
            continue
        comm = " ".join(parts[:at])
        pid, tid = (int(x) for x in parts[at].split("/"))
        ip = parts[at + 1] if len(parts) > at + 1 else "0"
        sym = " ".join(parts[at + 2:]) or "[unknown]"
        if pid == tid:
            pid_comm[pid] = comm
        rows.append((pid, comm, ip, sym))
    by, total = Counter(), Counter()
    for pid, comm, ip, sym in rows:
        main = pid_comm.get(pid, comm)
        if pid == server:
            g = "server"
        elif comm == "bootstrap":
            g = "fn"
        elif main.startswith("kindling-bench") or comm == "tokio-rt-worker":
            g = "client"
        elif pid == 0:
            g = "idle"
        else:
            g = "other"
        kernel = ip.startswith("ffff")
        by[(g, ("[k] " if kernel else "[.] ") + sym)] += 1
        total[g] += 1
        total[(g, "kernel" if kernel else "user")] += 1
    return by, total, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hz", type=float, default=1999)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--group", default="fn")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    runs = [load(p) for p in a.files]

    def us(n, ok):
        return n / a.hz * 1e6 / ok

    for p, (_, total, ok) in zip(a.files, runs):
        parts = []
        for g in ["server", "fn", "client", "other", "idle"]:
            parts.append(
                f"{g}={us(total[g], ok):.1f} (user {us(total[(g, 'user')], ok):.1f} "
                f"kernel {us(total[(g, 'kernel')], ok):.1f})"
            )
        print(f"{p}: invokes={ok}  us/invoke: " + "  ".join(parts))
    keys = set()
    for by, _, _ in runs:
        keys |= {k for k in by if k[0] == a.group}
    rows = [(k[1], [us(by.get(k, 0), ok) for by, _, ok in runs]) for k in keys]
    if len(runs) == 2:
        rows.sort(key=lambda r: -(r[1][1] - r[1][0]))
        print(f"{a.group}: A  B  B-A (us per invoke, self)  symbol")
        for sym, (x, y) in rows[: a.top]:
            print(f"  {x:7.2f} {y:7.2f} {y - x:+7.2f}  {sym[:100]}")
        print("  ...")
        for sym, (x, y) in rows[-5:]:
            print(f"  {x:7.2f} {y:7.2f} {y - x:+7.2f}  {sym[:100]}")
    else:
        rows.sort(key=lambda r: -r[1][0])
        for sym, (x,) in rows[: a.top]:
            print(f"  {x:7.2f}  {sym[:100]}")


if __name__ == "__main__":
    main()
