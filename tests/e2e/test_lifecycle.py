"""Execution-environment lifecycle on dedicated servers: idle shutdown and server stop."""

from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

import kindling_e2e as k


def _require_flag(binary, flag: str) -> None:
    assert k.supports_flag(binary, flag), f"`kindling serve` has no {flag} flag"


@pytest.mark.slow
@pytest.mark.runtimes("rust", "ric", "python", "node")
def test_idle_environment_is_shut_down(server_factory, kindling_binary, kind):
    _require_flag(kindling_binary, "--idle-timeout")
    srv = server_factory("--idle-timeout", "2")
    lam = k.make_client(srv.url)
    marker = k.unique("idlemark")
    name = k.create_function(lam, kind, env={"E2E_MARKER": marker})

    first = k.invoke(lam, name, {"info": True}, tail=True)
    assert first.ok()["count"] == 1
    assert k.report_for(first.log, first.request_id).init_duration is not None
    found = k.processes_with(marker)
    assert found, "no runtime process carries the function's environment right after an invoke"

    try:
        k.wait_for(lambda: not k.processes_with(marker), timeout=30, interval=0.2,
                   what="runtime processes to exit after the idle timeout")
    except AssertionError:
        left = k.processes_with(marker)
        described = k.describe_pids(left)
        srv.kill()
        k.kill_pids(left)
        raise AssertionError(f"idle environment not shut down within 30 s (--idle-timeout 2): "
                             f"{described}") from None

    second = k.invoke(lam, name, {"info": True}, tail=True)
    info = second.ok()
    assert info["count"] == 1, "state survived idle shutdown"
    rep = k.report_for(second.log, second.request_id)
    assert rep.init_duration is not None, f"invoke after idle shutdown is not a cold start: {rep.line!r}"
    srv.stop()


@pytest.mark.slow
def test_sigterm_leaves_no_runtime_behind(server_factory, kinds):
    srv = server_factory()
    lam = k.make_client(srv.url)
    marker = k.unique("stopmark")
    idle_fns = [k.create_function(lam, kinds[r], env={"E2E_MARKER": marker})
                for r in ("python", "node")]
    for name in idle_fns:
        k.invoke(lam, name, {"info": True}).ok()  # warm, idle environments
    busy = k.create_function(lam, kinds["python"], env={"E2E_MARKER": marker}, Timeout=20)
    busy_text = k.unique("inflight")
    pool = cf.ThreadPoolExecutor(max_workers=1)
    inflight = pool.submit(k.invoke, k.make_client(srv.url), busy,
                           {"print": busy_text, "sleep_ms": 15_000, "info": True})
    srv.logs.wait_contains(busy, busy_text, timeout=30)
    running = k.processes_with(marker)
    assert len(running) >= 3, f"expected 3 runtime processes, found {k.describe_pids(running)}"

    started = time.monotonic()
    rc = srv.stop(timeout=30)
    stopped_after = time.monotonic() - started
    try:
        inflight.result(timeout=30)
    except Exception:
        pass  # the in-flight caller may see an error or a platform error payload
    pool.shutdown(wait=False)

    leftovers = []

    def gone():
        leftovers[:] = k.processes_with(marker)
        return not leftovers

    try:
        k.wait_for(gone, timeout=5, interval=0.1, what="runtime processes to go")
    except AssertionError:
        described = k.describe_pids(leftovers)
        k.kill_pids(leftovers)  # processes this test's server started; do not leak them
        raise AssertionError(
            f"after SIGTERM and exit of kindling ({stopped_after:.1f}s, status {rc}) these runtime "
            f"processes remain: {described}") from None
    assert rc == 0, f"kindling exited with status {rc} after SIGTERM:\n{srv.log_tail()}"
