"""Node-wide caps, on real `kindling serve --isolation namespaces` processes: each environment
is capped on its own (MemorySize, 1,024 processes), and the node's cgroup level caps them all
together (`--max-processes`, `--max-memory`), so that a few hostile functions cannot exhaust
the host's pids or memory; and the host's OOM killer takes functions before Kindling."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import pytest

import iso_support as k
from iso_support import deploy, invoke, ok, ping, unique, wait_until

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

MIB = 1 << 20
CAP_SYS_RESOURCE = 24


def has_capability(pid: int, cap: int) -> bool:
    for line in k.read_proc(pid, "status").decode().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False

# Forks sleeping children (each marked by the function's HOG_MARK variable) until told to stop
# or a fork fails; reports how many it made and the error.
FORKER = r'''
import errno, os, time

def attack(event, context):
    made, error = 0, None
    for _ in range(event["children"]):
        try:
            pid = os.fork()
        except OSError as e:
            error = errno.errorcode.get(e.errno, str(e.errno))
            break
        if pid == 0:
            try:
                time.sleep(600)
            finally:
                os._exit(0)
        made += 1
    return {"made": made, "error": error}
'''


def host_pid(function: str) -> int:
    """The host pid of one of the function's runtime processes."""
    pids = k.pids_with_env("AWS_LAMBDA_FUNCTION_NAME", function)
    assert pids, f"no process of {function} on the host"
    return pids[0]


def node_file(function: str, v1_controller: str, v1_file: str, v2_file: str) -> Path:
    """A file of the node's cgroup level (the parent of the function's environment cgroup)."""
    f = k.process_cgroup_file(host_pid(function), v1_controller, v1_file, v2_file)
    assert f is not None, f"no {v1_controller} cgroup for {function}"
    return f.parent.parent / f.name


def test_functions_together_cannot_fork_past_the_nodes_process_cap(server_factory):
    cap = 300
    server = server_factory.start("max-procs", extra_args=["--max-processes", str(cap)])
    mark = unique("hog")
    hogs = [unique("hog-procs") for _ in range(2)]
    for name in hogs:
        deploy(server, name, k.function_source(FORKER), memory=512,
               environment={"HOG_MARK": mark})
    for name in hogs:
        ping(server, name)
    node_pids = node_file(hogs[0], "pids", "pids.max", "pids.max")
    assert node_pids.read_text().strip() == str(cap), node_pids

    # Together they ask for 2 x 1,000 processes, each within its own 1,024.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(
            lambda name: invoke(server, name, {"children": 1000},
                                client=server.new_client(read_timeout=120)), hogs))
    made = []
    for r in results:
        assert r.status == 200 and r.function_error is None, r.describe()
        made.append(r.payload["made"])
        assert r.payload["error"] == "EAGAIN", f"a fork past the node's cap: {r.payload}"
    sleepers = k.pids_with_env("HOG_MARK", mark)
    current = int((node_pids.parent / "pids.current").read_text())
    environments = [p for p in node_pids.parent.iterdir() if p.is_dir()]
    print(f"forked {made}, {len(sleepers)} sleepers and pythons on the host, "
          f"node pids.current {current} of {cap}, {len(environments)} environments")
    # Forks stop at the cap; only a program joining its new environment's cgroup (a move,
    # which pids.max does not refuse: here a pre-initialized environment started meanwhile)
    # may pass it, by one per environment.
    assert current <= cap + len(environments)
    assert sum(made) <= cap and sum(made) >= cap // 2, made
    assert len(sleepers) <= cap

    # Kindling still serves: another function cold-starts (the node is full: an idle hog is
    # retired to make room) and answers.
    other = unique("after-hogs")
    deploy(server, other, k.function_source("def attack(event, context):\n    return {}\n"))
    assert ping(server, other)["pong"] is True
    assert server.proc.poll() is None

    # Everything is reaped: retiring or stopping ends every sleeper.
    assert server.stop() == 0
    wait_until(lambda: not k.pids_with_env("HOG_MARK", mark), 30,
               what="the hogs' sleeping children to be reaped")


HOG = r'''
import os

def attack(event, context):
    if event.get("oom_score_adj"):
        return {"self": open("/proc/self/oom_score_adj").read().strip()}
    chunks = []
    for i in range(event["mb"] // 8):
        chunks.append(bytearray(b"\x5a" * (8 << 20)))
    return {"allocated_mb": 8 * len(chunks)}

'''


def test_functions_together_stay_under_the_nodes_memory_cap_and_kindling_survives(
        server_factory):
    cap_mb = 320
    server = server_factory.start("max-memory", extra_args=["--max-memory", str(cap_mb)])
    # Kindling (root) keeps itself out of the host OOM killer's way when it may (lowering
    # needs CAP_SYS_RESOURCE, which some containers' root lacks: then it says so); functions
    # volunteer. (Set while the sandbox is prepared, which may end after the API listens.)
    if has_capability(server.pid, CAP_SYS_RESOURCE):
        wait_until(lambda: k.read_proc(server.pid, "oom_score_adj").strip() == b"-900", 30,
                   what=f"Kindling's oom_score_adj to be -900:\n{server.log_tail()}")
    else:
        wait_until(lambda: "could not lower Kindling's oom_score_adj" in server.log_tail(200),
                   30, what="the warning that Kindling's oom_score_adj stays")
        assert k.read_proc(server.pid, "oom_score_adj").strip() == b"0"
    hogs = [unique("hog-mem") for _ in range(2)]
    for name in hogs:
        deploy(server, name, k.function_source(HOG), memory=1024, timeout=120)
    for name in hogs:
        assert ok(server, name, {"oom_score_adj": True}) == {"self": "1000"}
    assert k.read_proc(host_pid(hogs[0]), "oom_score_adj").strip() == b"1000"
    node_limit = node_file(hogs[0], "memory", "memory.limit_in_bytes", "memory.max")
    assert int(node_limit.read_text()) == cap_mb * MIB, node_limit

    # Each may use 1,024 MB on its own; together they may not pass the node's 320 MB.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(
            lambda name: invoke(server, name, {"mb": 900},
                                client=server.new_client(read_timeout=150)), hogs))
    for r in results:
        print("hog:", r.describe()[:300])
        assert r.status == 200 and r.function_error == "Unhandled", r.describe()
        assert r.payload.get("errorType") == "Runtime.OutOfMemory", r.describe()
        used = r.max_memory_used_mb()
        assert used is not None and used <= cap_mb + 8, r.describe()
    print("Max Memory Used:", [r.max_memory_used_mb() for r in results])

    # Kindling survived and serves; the functions start afresh.
    assert server.proc.poll() is None
    for name in hogs:
        assert ping(server, name)["pong"] is True
    small = ok(server, hogs[0], {"mb": 64})
    assert small["allocated_mb"] == 64


def test_process_mode_ignores_the_node_caps_and_still_volunteers_functions(server_factory):
    """Process mode has no cgroups: the caps do not apply (and do not stop it), and the
    functions still come first for the host's OOM killer."""
    server = server_factory.start("caps-process", isolation="process",
                                  extra_args=["--max-processes", "300", "--max-memory", "320"])
    name = unique("caps-process")
    deploy(server, name, k.function_source(HOG))
    assert ok(server, name, {"oom_score_adj": True}) == {"self": "1000"}
    assert ok(server, name, {"mb": 64})["allocated_mb"] == 64
    assert "mode=Process" in server.log_tail(200)
