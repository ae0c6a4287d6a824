#!/usr/bin/env python3
"""Phase timeline of one Kindling cold start, from kernel tracepoints (perf, system-wide).

Usage: coldtrace.py HOST:PORT SERVER_PID FUNCTION [--count N] [--gap SECONDS]
Invokes FUNCTION (whose environment must not be warm) N times over fresh connections, with
`perf record` tracing forks, execs, cgroup attaches (pwrite64), connects and renames, and
prints the phases of each cold start in milliseconds from the moment Kindling accepted the
client connection. Run as root; needs `perf` with tracepoints. Kindling must have been started
with a short --idle-timeout so that the environment is gone between invokes (the script waits
--gap seconds between invokes).
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

EVENTS = [
    "syscalls:sys_exit_accept4",
    "syscalls:sys_enter_rename",
    "syscalls:sys_enter_renameat2",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "syscalls:sys_enter_pwrite64",
    "syscalls:sys_exit_pwrite64",
    "syscalls:sys_enter_connect",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
]


def invoke(addr, fn):
    t0 = time.perf_counter()
    req = urllib.request.Request(
        f"http://{addr}/2015-03-31/functions/{fn}/invocations",
        data=b"{}",
        headers={"X-Amz-Log-Type": "Tail", "Connection": "close"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        r.read()
    return (time.perf_counter() - t0) * 1000


def main():
    addr, server, fn = sys.argv[1], sys.argv[2], sys.argv[3]
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 3
    gap = float(sys.argv[sys.argv.index("--gap") + 1]) if "--gap" in sys.argv else 2.5
    out = tempfile.mktemp(suffix=".perf")
    cmd = ["perf", "record", "-a", "-o", out] + sum((["-e", e] for e in EVENTS), []) + ["--", "sleep", str(count * gap + 1.5)]
    rec = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    client = []
    for _ in range(count):
        client.append(invoke(addr, fn))
        time.sleep(gap)
    rec.wait()
    text = subprocess.run(["perf", "script", "-i", out, "-F", "comm,pid,tid,time,event,trace"],
                          capture_output=True, text=True).stdout
    os.unlink(out)
    # Split into cold starts at each accept4 that returned a connection on the API listener.
    starts = []
    cur = None
    runtime_pids = set()
    tracked = {server}
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
        if not m:
            continue
        comm, pid, tid, ts, ev, rest = m.groups()
        ts = float(ts) * 1000
        if ev.endswith("sys_exit_accept4") and pid == server and not rest.strip().endswith("0xfffffffffffffff5"):
            if cur is None or ts - cur["t0"] > 500:
                cur = {"t0": ts, "ev": []}
                starts.append(cur)
            continue
        if cur is None:
            continue
        t = ts - cur["t0"]
        if ev.endswith("sched_process_fork"):
            mm = re.search(r"comm=(\S+) pid=(\d+) child_comm=(\S+) child_pid=(\d+)", rest)
            if mm and pid in tracked:
                child = mm.group(4)
                tracked.add(child)
                runtime_pids.add(child)
                cur["ev"].append((t, f"fork {mm.group(1)} -> {child}", child))
        elif ev.endswith("sched_process_exec") and pid in runtime_pids:
            cur["ev"].append((t, f"exec {rest.split()[0]}"))
        elif ev.endswith("sys_enter_pwrite64") and pid in runtime_pids:
            cur["ev"].append((t, "cgroup attach start (pwrite cgroup.procs)"))
        elif ev.endswith("sys_exit_pwrite64") and pid in runtime_pids:
            cur["ev"].append((t, "cgroup attach done"))
        elif ev.endswith("sys_enter_connect") and pid in runtime_pids:
            cur["ev"].append((t, "runtime connects to the Runtime API"))
        elif (ev.endswith("sys_enter_writev") or ev.endswith("sys_enter_sendto")) and pid in runtime_pids:
            cur["ev"].append((t, "runtime sends an HTTP request (GET /next or POST response)"))
        elif (ev.endswith("sys_enter_writev") or ev.endswith("sys_enter_sendto")) and pid == server:
            cur["ev"].append((t, "kindling writes a response (to runtime or client)"))
        elif "rename" in ev and pid == server:
            cur["ev"].append((t, "code package unpacked (rename)"))
    # Thread creations are forks too: keep only forks whose child later acts as a process.
    acting = set()
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+", line)
        if m and m.group(2) != server:
            acting.add(m.group(2))
    for s in starts:
        s["ev"] = [(e[0], e[1]) for e in s["ev"] if len(e) == 2 or e[2] in acting]
    for i, s in enumerate(starts):
        print(f"--- cold start {i + 1}: client saw {client[i]:.2f} ms" if i < len(client) else f"--- cold start {i + 1}")
        seen = set()
        for t, what in s["ev"]:
            key = what if not (what.startswith("cgroup") or "writes" in what or "sends" in what) else None
            if key and key in seen:
                continue
            if key:
                seen.add(key)
            print(f"  {t:8.2f} ms  {what}")


main()
