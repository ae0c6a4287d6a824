#!/usr/bin/env python3
"""How much of a 2-CPU machine's idle time passed while the other CPU had runnable tasks
waiting (queued, not running), from `perf script` text of
`perf record -a -e sched:sched_switch,sched:sched_wakeup,sched:sched_migrate_task`.

    sched_idle.py SCRIPT.txt

Prints per CPU its idle share and the part of it during which the other CPU had queued
tasks, the idle periods' count and median/p90 length, and which tasks were waiting (ms,
shared equally among those queued together). The run queue is rebuilt from the events
(a woken task is queued on its target CPU until switched in; a preempted one, state R, is
queued on its CPU; migrations move queued tasks), so it is an estimate.
"""

import re
import sys
from collections import Counter, defaultdict

HEAD = r"\s*(?P<comm>.+?)\s+(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<t>[\d.]+):\s+sched:"
SWITCH = re.compile(
    HEAD + r"sched_switch:\s+prev_comm=(?P<pc>.*?) prev_pid=(?P<pp>\d+) prev_prio=\d+ "
    r"prev_state=(?P<ps>\S+) ==> next_comm=(?P<nc>.*?) next_pid=(?P<np>\d+)"
)
WAKE = re.compile(HEAD + r"sched_wakeup:\s+comm=(?P<wc>.*?) pid=(?P<wp>\d+) prio=\d+ target_cpu=(?P<tc>\d+)")
MIGRATE = re.compile(
    HEAD + r"sched_migrate_task:\s+comm=.*? pid=(?P<mp>\d+) prio=\d+ orig_cpu=(?P<o>\d+) dest_cpu=(?P<d>\d+)"
)


def main():
    queued = defaultdict(dict)  # cpu -> {pid: since}
    running = {}
    comm = {}
    idle = Counter()
    idle_other_queued = Counter()
    waiting = Counter()
    idle_start, periods = {}, []
    first = last = None
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            m = SWITCH.match(line) or WAKE.match(line) or MIGRATE.match(line)
            if not m:
                continue
            t = float(m.group("t"))
            if last is not None:
                dt = t - last
                for c in (0, 1):
                    if running.get(c) == 0:
                        idle[c] += dt
                        other = queued[1 - c]
                        if other:
                            idle_other_queued[c] += dt
                            for p in other:
                                waiting[comm.get(p, "?")] += dt / len(other)
            else:
                first = t
            last = t
            d = m.groupdict()
            if "np" in d and d["np"] is not None:
                cpu, prev, nxt = int(d["cpu"]), int(d["pp"]), int(d["np"])
                comm[prev], comm[nxt] = d["pc"], d["nc"]
                if nxt == 0:
                    idle_start[cpu] = t
                elif prev == 0 and cpu in idle_start:
                    periods.append(t - idle_start.pop(cpu))
                running[cpu] = nxt
                queued[cpu].pop(nxt, None)
                if d["ps"].startswith("R") and prev != 0:
                    queued[cpu][prev] = t
            elif "wp" in d and d["wp"] is not None:
                pid, cpu = int(d["wp"]), int(d["tc"])
                comm[pid] = d["wc"]
                if running.get(cpu) != pid:
                    queued[cpu][pid] = t
            else:
                pid, o, dest = int(d["mp"]), int(d["o"]), int(d["d"])
                if pid in queued[o]:
                    queued[dest][pid] = queued[o].pop(pid)
    span = (last or 0) - (first or 0)
    if span <= 0:
        sys.exit("no sched events")
    for c in (0, 1):
        print(
            f"cpu{c}: idle {100 * idle[c] / span:.1f}% of {span:.2f} s, with tasks queued on the "
            f"other CPU {100 * idle_other_queued[c] / span:.1f}%"
        )
    periods.sort()
    if periods:
        n = len(periods)
        print(
            f"idle periods: {n}, median {1e6 * periods[n // 2]:.0f} us, p90 {1e6 * periods[int(n * 0.9)]:.0f} us"
        )
    top = ", ".join(f"{k} {1e3 * v:.1f}" for k, v in waiting.most_common(5))
    print(f"waiting on the other CPU meanwhile (ms): {top}")


if __name__ == "__main__":
    main()
