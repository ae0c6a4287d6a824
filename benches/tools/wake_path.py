#!/usr/bin/env python3
"""Where a single-client warm invoke's wall time goes between threads, from
`perf record -a -e sched:sched_switch,sched:sched_waking` taken while `kindling-bench load`
sends one request at a time (benches/results/obs-2026-12-07-instances.txt used it).

    wake_path.py DATA...

For each perf.data, prints per wake-up edge (waker -> woken thread name: the Kindling worker
`tokio-rt-worker`, the function's runtime `bootstrap`, the client `kindling-bench`) how often it
happens per invoke, its latency from `sched_waking` to running (median; onto an idle vCPU and
onto a busy one), how often it crosses vCPUs and how often the target vCPU was idle; then,
per answer of the worker to the client, two stretches of the worker's own run: from being
woken by the runtime's response to waking the runtime with the 202, and from the 202 to waking
the client (observability's per-invoke work sits in the second); and each thread's CPU time
by vCPU. The client thread is the `kindling-bench` thread the worker wakes most.
"""

import bisect
import collections
import re
import statistics
import subprocess
import sys

KV = re.compile(r"(\w+)=(\S+)")
LINE = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
WORKER, RUNTIME, CLIENT = "tokio-rt-worker", "bootstrap", "kindling-bench"


def load(data):
    """comms (tid -> name); runs (tid -> [start, end, cpu]); wakes (tid -> [(t, waker tid,
    waker cpu, target cpu, target idle)])."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,cpu,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    comms, runs, wakes = {}, collections.defaultdict(list), collections.defaultdict(list)
    open_run, current = {}, {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        comm, tid, cpu, t, ev, rest = m.groups()
        tid, cpu, t = int(tid), int(cpu), float(t)
        comms.setdefault(tid, comm)
        if ev.startswith("sched:sched_switch"):
            left, right = rest.split("==>")
            p, n = dict(KV.findall(left)), dict(KV.findall(right))
            prev, nxt = int(p["prev_pid"]), int(n["next_pid"])
            comms[prev], comms[nxt] = p["prev_comm"], n["next_comm"]
            if prev in open_run:
                open_run.pop(prev)[1] = t
            run = [t, None, cpu]
            runs[nxt].append(run)
            open_run[nxt] = run
            current[cpu] = nxt
        elif ev.startswith("sched:sched_waking"):
            d = dict(KV.findall(rest))
            target = int(d["target_cpu"])
            wakes[int(d["pid"])].append((t, tid, cpu, target, current.get(target) == 0))
    return comms, runs, wakes


def q(xs):
    if len(xs) < 4:
        return "n/a"
    p25, p50, p75 = statistics.quantiles(xs, n=4)
    return f"p25 {p25:6.1f}  p50 {p50:6.1f}  p75 {p75:6.1f}  mean {statistics.mean(xs):6.1f}"


def report(data):
    comms, runs, wakes = load(data)
    starts = {tid: [r[0] for r in rs] for tid, rs in runs.items()}
    by_count = collections.Counter()
    for tid, ws in wakes.items():
        if comms.get(tid) == CLIENT:
            by_count[tid] = sum(1 for w in ws if comms.get(w[1]) == WORKER)
    if not by_count:
        print(f"{data}: no client wake-ups")
        return
    client = by_count.most_common(1)[0][0]
    invokes = by_count[client]
    print(f"== {data}: {invokes} answers to the client")
    edges = collections.defaultdict(list)
    for tid, ws in wakes.items():
        for (t, waker, wcpu, target, idle) in ws:
            i = bisect.bisect_left(starts.get(tid, []), t)
            lat = (runs[tid][i][0] - t) * 1e6 if i < len(runs[tid]) else None
            edges[(comms.get(waker, "?"), comms.get(tid, "?"))].append((lat, target != wcpu, idle))
    print(f"  {'waker -> woken':<36} {'per inv':>7} {'lat p50':>8} {'idle':>6} {'busy':>6} "
          f"{'x-cpu':>6} {'to idle':>7}")
    for (a, b), v in sorted(edges.items(), key=lambda kv: -len(kv[1])):
        if len(v) < invokes * 0.05:
            continue
        lat = [x[0] for x in v if x[0] is not None]
        li = [x[0] for x in v if x[0] is not None and x[2]]
        lb = [x[0] for x in v if x[0] is not None and not x[2]]
        med = lambda xs: f"{statistics.median(xs):6.1f}" if xs else "   n/a"
        print(f"  {a + ' -> ' + b:<36} {len(v) / invokes:7.2f} {med(lat):>8} {med(li)} {med(lb)} "
              f"{100 * sum(x[1] for x in v) / len(v):5.0f}% {100 * sum(x[2] for x in v) / len(v):6.0f}%")
    # The worker's stretches around the 202, per answer to the client.
    runtime = max((t for t in wakes if comms.get(t) == RUNTIME), key=lambda t: len(wakes[t]),
                  default=None)
    to_runtime = [(w[0], w[1]) for w in wakes.get(runtime, [])]
    rt_times = [w[0] for w in to_runtime]
    before, after = [], []
    for (t, waker, _, _, _) in wakes[client]:
        if comms.get(waker) != WORKER:
            continue
        i = bisect.bisect_right(starts[waker], t) - 1
        if i < 0:
            continue
        began = runs[waker][i][0]
        j = bisect.bisect_right(rt_times, t) - 1
        if j < 0 or rt_times[j] < began or to_runtime[j][1] != waker:
            continue
        before.append((rt_times[j] - began) * 1e6)
        after.append((t - rt_times[j]) * 1e6)
    print(f"  worker woken -> wakes the runtime (202): {q(before)}")
    print(f"  202 -> wakes the client (answer):        {q(after)}")
    cpu = collections.defaultdict(collections.Counter)
    for tid, rs in runs.items():
        if comms.get(tid) in (WORKER, RUNTIME, CLIENT):
            for r in rs:
                if r[1] is not None:
                    cpu[comms[tid]][r[2]] += (r[1] - r[0]) * 1e6 / invokes
    print("  CPU time per invoke by vCPU (us): " + "; ".join(
        f"{c} " + " ".join(f"cpu{k} {v:.0f}" for k, v in sorted(cc.items()))
        for c, cc in cpu.items()))


if __name__ == "__main__":
    for path in sys.argv[1:]:
        report(path)
