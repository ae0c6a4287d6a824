#!/usr/bin/env python3
"""Scheduler counters per warm invoke, by who spends them: Kindling's threads, the runtimes,
the supervisors (kindling-init) and the load generator, at several client counts.

    warm_sched.py --pid SERVER_PID --addr HOST:PORT --bench KINDLING_BENCH
                  [--conns 4,16] [--secs 3] [--rounds 3] [--label NAME]

Per thread it reads /proc/<pid>/task/<tid>/schedstat (CPU time and run-queue wait in ns,
time slices), .../status (voluntary and involuntary context switches) and .../sched
(se.nr_migrations), before and after one `kindling-bench load` run (no warm-up inside the run:
a warm-up run at the same client count comes first, so every environment exists), and
divides the differences by the invokes the run completed. The client's own counters come
from `perf stat` around it (--perf-client), else its own report. Machine-wide: /proc/stat's
context switches, interrupts, softirq and idle time (without CONFIG_IRQ_TIME_ACCOUNTING the
softirq time is a tick sample of work also inside the tasks' CPU). Prints one line per group
and client count.
"""

import argparse
import os
import re
import subprocess
import sys


def tasks(pid):
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def thread_counters(pid, tid):
    base = f"/proc/{pid}/task/{tid}"
    st = read(f"{base}/schedstat").split()
    if len(st) < 3:
        return None
    status = read(f"{base}/status")
    vol = re.search(r"voluntary_ctxt_switches:\s+(\d+)", status)
    invol = re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status)
    mig = re.search(r"se\.nr_migrations\s*:\s*(\d+)", read(f"{base}/sched"))
    return {
        "cpu_ns": int(st[0]),
        "wait_ns": int(st[1]),
        "slices": int(st[2]),
        "vol": int(vol.group(1)) if vol else 0,
        "invol": int(invol.group(1)) if invol else 0,
        "mig": int(mig.group(1)) if mig else 0,
    }


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        s = read(f"/proc/{d}/stat")
        if not s:
            continue
        rest = s[s.rfind(")") + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def comm(pid):
    return read(f"/proc/{pid}/comm").strip()


def snapshot(server):
    """{(group, pid, tid): counters} for the server's threads and every descendant."""
    out = {}
    for tid in tasks(server):
        c = thread_counters(server, tid)
        if c:
            out[("server", server, tid)] = c
    kids = children_map()
    queue = list(kids.get(server, []))
    while queue:
        p = queue.pop()
        queue.extend(kids.get(p, []))
        name = comm(p)
        group = "init" if name.startswith("kindling-init") else "fn"
        for tid in tasks(p):
            c = thread_counters(p, tid)
            if c:
                out[(group, p, tid)] = c
    return out


def machine():
    text = read("/proc/stat")
    m = {}
    for line in text.splitlines():
        f = line.split()
        if f[0] == "cpu":
            # user nice system idle iowait irq softirq steal
            m["idle_ticks"] = int(f[4]) + int(f[5])
            m["irq_ticks"] = int(f[6])
            m["softirq_ticks"] = int(f[7])
            m["steal_ticks"] = int(f[8])
        elif f[0] == "ctxt":
            m["ctxt"] = int(f[1])
        elif f[0] == "intr":
            m["intr"] = int(f[1])
    return m


FIELDS = ["cpu_ns", "wait_ns", "slices", "vol", "invol", "mig"]


def diff(a, b):
    """Per group: summed counter differences (threads present in both snapshots only) and
    the number of distinct processes that ran."""
    groups = {}
    for key, after in b.items():
        before = a.get(key)
        if before is None:
            continue
        g = groups.setdefault(key[0], {f: 0 for f in FIELDS} | {"procs": set()})
        for f in FIELDS:
            g[f] += after[f] - before[f]
        if after["cpu_ns"] > before["cpu_ns"]:
            g["procs"].add(key[1])
    return groups


def run_load(bench, addr, pid, conns, secs, warmup_ms, perf_client=False):
    perf = ["perf", "stat", "-x", ",", "-e", "task-clock,context-switches,cpu-migrations"]
    cmd = (perf if perf_client else []) + [
        bench, "load", "--addr", addr, "--pid", str(pid), "--conns", str(conns),
        "--warmup-ms", str(warmup_ms), "--secs", str(secs),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = p.stdout.strip().splitlines()[-1]
    ok = int(re.search(r"ok=(\d+)", line).group(1))
    rps = float(re.search(r"rps=(\d+)", line).group(1))
    client = {}
    m = re.search(r"client=([0-9.]+)us", line)
    if m:
        client["task-clock"] = float(m.group(1)) * ok / 1000
    for row in p.stderr.splitlines():
        f = row.split(",")
        if len(f) > 3 and f[2] in ("task-clock", "context-switches", "cpu-migrations"):
            client[f[2]] = float(f[0])
    return ok, rps, line, client


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--conns", default="4,16")
    ap.add_argument("--secs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--perf-dir", help="also `perf record -a -g` each measured run into this dir")
    ap.add_argument("--perf-client", action="store_true", help="client's switches through perf stat")
    a = ap.parse_args()
    hz = os.sysconf("SC_CLK_TCK")
    for r in range(a.rounds):
        for conns in [int(c) for c in a.conns.split(",")]:
            # Warm up at this client count (every environment exists and is thawed).
            run_load(a.bench, a.addr, a.pid, conns, 1, 0)
            s0, m0 = snapshot(a.pid), machine()
            rec = None
            if a.perf_dir:
                data = f"{a.perf_dir}/{a.label}-x{conns}-r{r}.data"
                rec = subprocess.Popen(
                    ["perf", "record", "-q", "-a", "-g", "-F", "1999", "-e", "cpu-clock",
                     "-o", data, "--", "sleep", str(a.secs)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            # The load starts inside `perf stat`: a warm-up of 0 keeps the counters and the
            # invoke count over the same requests (connection set-up is a few of them).
            ok, rps, _line, client = run_load(a.bench, a.addr, a.pid, conns, a.secs, 0, a.perf_client)
            s1, m1 = snapshot(a.pid), machine()
            if rec:
                rec.wait()
                with open(f"{data}.ok", "w") as f:
                    f.write(f"{ok} {a.pid}\n")
            groups = diff(s0, s1)
            n = max(ok, 1)
            mach = {k: (m1[k] - m0[k]) for k in m0}
            wall_ticks = a.secs * hz * os.cpu_count()
            print(
                f"{a.label} r{r} x{conns} rps={rps:.0f} ok={ok} "
                f"machine/inv: ctxt={mach['ctxt'] / n:.2f} intr={mach['intr'] / n:.2f} "
                f"idle={100 * mach['idle_ticks'] / wall_ticks:.1f}% "
                f"softirq={mach['softirq_ticks'] * 1e6 / hz / n:.1f}us "
                f"steal={mach['steal_ticks'] * 1e6 / hz / n:.1f}us"
            )
            for name in ["server", "fn", "init"]:
                g = groups.get(name)
                if not g:
                    continue
                print(
                    f"{a.label} r{r} x{conns}   {name:<6} procs={len(g['procs']):>2} "
                    f"cpu={g['cpu_ns'] / n / 1000:.1f}us wait={g['wait_ns'] / n / 1000:.1f}us "
                    f"slices={g['slices'] / n:.2f} vol={g['vol'] / n:.2f} "
                    f"invol={g['invol'] / n:.3f} mig={g['mig'] / n:.3f}"
                )
            print(
                f"{a.label} r{r} x{conns}   client cpu={client.get('task-clock', 0) * 1000 / n:.1f}us "
                f"cs={client.get('context-switches', 0) / n:.2f} "
                f"mig={client.get('cpu-migrations', 0) / n:.3f}"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
