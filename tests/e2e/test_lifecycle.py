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

    # Python functions also leave a detached child behind: it must go with the environment.
    spawn = {"spawn": True} if kind.key in ("python", "ric") else {}
    first = k.invoke(lam, name, {"info": True, **spawn}, tail=True)
    assert first.ok()["count"] == 1
    assert k.report_for(first.log, first.request_id).init_duration is not None
    k.wait_for(lambda: len(k.processes_with(marker)) >= (2 if spawn else 1), timeout=5,
               what="the runtime process (and its child) carrying the function's environment")

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


def _warm_environments(lam, kinds, marker: str) -> None:
    """One warm, idle environment per runtime client, all carrying `marker` in their env."""
    for r in k.RUNTIMES:
        name = k.create_function(lam, kinds[r], env={"E2E_MARKER": marker})
        spawn = {"spawn": True} if r in ("python", "ric") else {}  # a detached child too
        k.invoke(lam, name, {"info": True, **spawn}).ok()


def _assert_no_leftovers(marker: str, what: str) -> None:
    leftovers: list[int] = []

    def gone():
        leftovers[:] = k.processes_with(marker)
        return not leftovers

    try:
        k.wait_for(gone, timeout=5, interval=0.1, what="runtime processes to go")
    except AssertionError:
        described = k.describe_pids(leftovers)
        k.kill_pids(leftovers)  # processes this test's server started; do not leak them
        raise AssertionError(f"{what}, these runtime processes remain: {described}") from None


@pytest.mark.runtimes("python", "ric")
@pytest.mark.parametrize("how", ["crash", "timeout"])
def test_reset_ends_every_process_of_the_environment(lam, kind, how):
    """A crash or timeout resets the environment: its runtime and any process it started are
    gone (here: a detached `sleep` child)."""
    marker = k.unique("resetmark")
    name = k.create_function(lam, kind, env={"E2E_MARKER": marker}, Timeout=1)
    k.invoke(lam, name, {"spawn": True, "info": True}).ok()
    # The detached child may take a moment to show up with its environment in /proc.
    old = k.wait_for(lambda: (lambda p: p if len(p) >= 2 else None)(k.processes_with(marker)),
                     timeout=5, what="the runtime and its child process")
    event = {"crash": 1} if how == "crash" else {"sleep_ms": 5000}
    k.invoke(lam, name, event).error()

    def old_gone():
        return not (set(old) & set(k.processes_with(marker)))

    try:
        k.wait_for(old_gone, timeout=5, interval=0.1, what="the reset environment's processes to go")
    except AssertionError:
        left = sorted(set(old) & set(k.processes_with(marker)))
        described = k.describe_pids(left)
        k.kill_pids(left)
        raise AssertionError(f"after a {how}, processes of the old environment remain: {described}") from None
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 1


def test_sigterm_stops_idle_environments(server_factory, kinds):
    srv = server_factory()
    lam = k.make_client(srv.url)
    marker = k.unique("stopmark")
    _warm_environments(lam, kinds, marker)
    k.wait_for(lambda: len(k.processes_with(marker)) >= len(k.RUNTIMES) + 2, timeout=5,
               what="runtime processes (4 runtimes and 2 detached children)")

    started = time.monotonic()
    rc = srv.stop(timeout=30)
    took = time.monotonic() - started
    _assert_no_leftovers(marker, f"after SIGTERM and exit of kindling ({took:.1f}s, status {rc})")
    assert rc == 0, f"kindling exited with status {rc} after SIGTERM:\n{srv.log_tail()}"
    assert took < 10, f"kindling took {took:.1f}s to stop with only idle environments"


@pytest.mark.slow
def test_sigterm_with_invocation_in_flight(server_factory, kinds):
    """A stop must not wait for a long invocation to finish: shutdown is bounded (here: 25 s)
    even when a function may run for its full Timeout (up to 900 s)."""
    srv = server_factory()
    lam = k.make_client(srv.url)
    marker = k.unique("stopmark")
    busy = k.create_function(lam, kinds["python"], env={"E2E_MARKER": marker}, Timeout=120)
    text = k.unique("inflight")
    pool = cf.ThreadPoolExecutor(max_workers=1)
    inflight = pool.submit(k.invoke, k.make_client(srv.url, read_timeout=180), busy,
                           {"print": text, "sleep_ms": 45_000, "info": True})
    pool.shutdown(wait=False)
    srv.logs.wait_contains(busy, text, timeout=30)
    assert k.processes_with(marker), "the busy runtime process is not visible"

    started = time.monotonic()
    stop_error = None
    rc = None
    try:
        rc = srv.stop(timeout=25)
    except AssertionError as e:  # did not exit in time: it was killed
        stop_error = str(e).splitlines()[0].rstrip(":")
    took = time.monotonic() - started
    try:
        inflight.result(timeout=60)
    except Exception:
        pass  # the caller may get a platform error or a dropped connection
    _assert_no_leftovers(marker, f"after SIGTERM of kindling ({took:.1f}s)")
    assert stop_error is None, (
        f"{stop_error}: SIGTERM with one invocation in flight (sleeping 45 s, Timeout 120 s) "
        "did not stop the server")
    assert rc == 0, f"kindling exited with status {rc} after SIGTERM:\n{srv.log_tail()}"


def test_sigkill_leaves_no_runtime_behind(server_factory, kinds):
    """Even a server that dies without cleaning up takes its runtimes with it."""
    srv = server_factory()
    lam = k.make_client(srv.url)
    marker = k.unique("killmark")
    _warm_environments(lam, kinds, marker)
    k.wait_for(lambda: len(k.processes_with(marker)) >= len(k.RUNTIMES) + 2, timeout=5,
               what="runtime processes (4 runtimes and 2 detached children)")
    srv.kill()
    _assert_no_leftovers(marker, "after SIGKILL of kindling")
