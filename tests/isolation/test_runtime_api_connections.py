"""A function cannot exhaust Kindling's file descriptors through its own Runtime API.

Every connection to an environment's Runtime API is a descriptor (and a task) in Kindling's
own process. Before connections were capped per environment, a function whose processes each
opened ~1000 connections (their RLIMIT_NOFILE) and held them made Kindling run out of
descriptors: its API stopped accepting, and other functions could not start."""

from __future__ import annotations

import os
import time

import iso_support as k

HOLD = r'''
import os, select, socket, time

def attack(event, context):
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    r, w = os.pipe()
    for _ in range(event["procs"]):
        if os.fork() == 0:
            os.close(r)
            held = []
            for _ in range(event["per_proc"]):
                try:
                    held.append(socket.create_connection((host, int(port)), timeout=2))
                except OSError:
                    break
            os.write(w, b"%d\n" % len(held))
            deadline = time.monotonic() + event["hold"]
            while time.monotonic() < deadline:
                time.sleep(0.5)
            os._exit(0)
    os.close(w)
    # Until every child has connected all it could (or `wait` s), then the children hold on.
    data, deadline = b"", time.monotonic() + event["wait"]
    while data.count(b"\n") < event["procs"] and time.monotonic() < deadline:
        if select.select([r], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
    return {"opened": sum(int(x) for x in data.split()), "reported": data.count(b"\n")}
'''


def kindling_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_holding_many_runtime_api_connections_leaves_kindling_serving(server_factory):
    srv = server_factory.start("rapi-conns")
    hog, other = k.unique("hog"), k.unique("other")
    k.deploy(srv, hog, k.function_source(HOLD), timeout=90, memory=512)
    k.deploy(srv, other, k.function_source(""))
    before = kindling_fds(srv.pid)
    # 30 processes x 1000 connections: more than Kindling's descriptor limit here (20 000).
    out = k.ok(srv, hog, {"procs": 30, "per_proc": 1000, "wait": 60, "hold": 30})
    grown = kindling_fds(srv.pid) - before
    # Meanwhile Kindling serves on: its API, and a new environment of another function.
    started = time.monotonic()
    try:
        functions = srv.client().list_functions()["Functions"]
        assert {f["FunctionName"] for f in functions} >= {hog, other}
        k.ping(srv, other)
    except Exception as e:  # noqa: BLE001 - reported with the figures below
        raise AssertionError(f"with {grown} more descriptors in Kindling (Runtime API "
                             f"connections of one function: {out}), Kindling failed another "
                             f"function: {e!r}\n{srv.log_tail(5)}") from e
    took = time.monotonic() - started
    assert grown < 1000, f"one function's Runtime API connections ({out}): {grown} descriptors in Kindling"
    assert took < 15, f"ListFunctions and a cold start took {took:.1f} s"
    k.ping(srv, hog)
