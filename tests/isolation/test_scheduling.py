"""A Kindling started under a real-time scheduling policy and a raised priority
(`chrt -f 10 nice -n -5 kindling serve`) runs its functions on the time-sharing policy
SCHED_BATCH (fair share; a woken function does not preempt the running task) at nice 0, in both
isolation modes: a function never inherits the power to starve the
host, and (namespaces mode, cgroup v1 with real-time group scheduling) environments still
start, where a real-time task could not join a cgroup with the cpu controller."""

from __future__ import annotations

import os
import shutil

import pytest

import iso_support as k
from iso_support import deploy, ok, unique

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

SRC = r'''
import os


def _sched_field(name):
    with open("/proc/self/sched") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == name:
                return int(value.split()[0])
    return None


def handler(event, context):
    return {
        "policy": os.sched_getscheduler(0),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "proc_policy": _sched_field("policy"),
        "proc_prio": _sched_field("prio"),
    }
'''


@pytest.mark.parametrize("isolation", ["namespaces", "process"])
def test_functions_run_at_sched_batch_nice_0_under_a_realtime_server(server_factory, isolation):
    assert shutil.which("chrt") and shutil.which("nice"), "chrt and nice (util-linux, coreutils)"
    srv = server_factory.start(f"rt-{isolation}", isolation=isolation,
                               prefix=["chrt", "-f", "10", "nice", "-n", "-5"])
    # The server itself runs as asked.
    assert os.sched_getscheduler(srv.pid) == os.SCHED_FIFO
    assert os.sched_getparam(srv.pid).sched_priority == 10
    assert os.getpriority(os.PRIO_PROCESS, srv.pid) == -5
    name = unique("rt")
    deploy(srv, name, SRC)
    got = ok(srv, name, {})
    assert got["policy"] == os.SCHED_BATCH, got
    assert got["nice"] == 0, got
    # /proc/self/sched: policy 3 (SCHED_BATCH), static priority 120 (nice 0).
    assert (got["proc_policy"], got["proc_prio"]) == (3, 120), got
