"""`--cpu-latency-qos`: the server holds a CPU latency request (`/dev/cpu_dma_latency`) while
invocations run, and withdraws it once they stop. Needs root (the device is root's)."""

from __future__ import annotations

import os
import time

import pytest

import kindling_e2e as k

DEVICE = "/dev/cpu_dma_latency"


def _holds_device(pid: int) -> bool:
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{fd}") == DEVICE:
                return True
        except OSError:
            pass  # closed meanwhile
    return False


@pytest.mark.runtimes("rust")
def test_the_request_is_held_while_invocations_run(server_factory, kindling_binary, kind):
    assert k.supports_flag(kindling_binary, "--cpu-latency-qos"), "no --cpu-latency-qos flag"
    assert os.geteuid() == 0, "the CPU latency request device is root's: run as root"
    srv = server_factory("--cpu-latency-qos")
    pid = srv.proc.pid
    lam = k.make_client(srv.url)
    name = k.create_function(lam, kind)
    k.invoke(lam, name, {"n": 0}).ok()
    k.wait_for(lambda: not _holds_device(pid), timeout=5, what="no request while idle")
    for _ in range(2):
        held = False
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            k.invoke(lam, name, {"n": 1}).ok()
            held = _holds_device(pid)
        assert held, f"{DEVICE} never held while invoking"
        k.wait_for(lambda: not _holds_device(pid), timeout=5,
                   what="the request to be withdrawn once invocations stopped")
