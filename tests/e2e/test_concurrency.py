"""Concurrency: reserved concurrency throttles, the account pool, and scaling out to several
execution environments for concurrent invokes."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest
from botocore.exceptions import ClientError

import kindling_e2e as k


def _throttle(err: ClientError, reason: str) -> None:
    k.assert_api_error(err, "TooManyRequestsException", 429)
    body = k.last_error_body("Invoke")
    assert body.get("Reason") == reason, f"raw 429 body {body}"
    assert body.get("Type") == "User", f"raw 429 body {body}"
    assert body.get("message") or body.get("Message"), f"raw 429 body without a message: {body}"


def _run_in_thread(endpoint: str, name: str, payload, **kwargs) -> cf.Future:
    """Invoke on a separate thread with its own client; the future holds the Invocation or the
    exception."""
    pool = cf.ThreadPoolExecutor(max_workers=1)
    client = k.make_client(endpoint)
    fut = pool.submit(k.invoke, client, name, payload, **kwargs)
    pool.shutdown(wait=False)
    return fut


def test_reserved_zero_throttles_every_invoke(lam, deploy, kind):
    name = deploy()
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for payload in ({"info": True}, {"x": 1}, {"y": 2}):
        err = k.invoke_error(lam, name, payload)
        _throttle(err, "ReservedFunctionConcurrentInvocationLimitExceeded")
    lam.delete_function_concurrency(FunctionName=name)
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 1


def test_reserved_one_admits_one_at_a_time(lam, server, logs, deploy, kind):
    name = deploy()
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    marker = k.unique("busy")
    slow = _run_in_thread(server.url, name, {"print": marker, "sleep_ms": 3000, "info": True})
    logs.wait_contains(name, marker, timeout=30)  # the slow invoke is running now
    assert not slow.done(), "the slow invoke finished before the second one was sent"
    err = k.invoke_error(lam, name, {"info": True})
    _throttle(err, "ReservedFunctionConcurrentInvocationLimitExceeded")
    first = slow.result(timeout=60)
    assert first.ok()["count"] == 1
    # Free again: the next invoke reuses the environment.
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 2


def test_concurrent_invokes_scale_out(lam, server, deploy, kind):
    name = deploy()
    n = 4
    barrier = threading.Barrier(n)
    clients = [k.make_client(server.url) for _ in range(n)]

    def call(i: int) -> k.Invocation:
        barrier.wait(timeout=30)
        return k.invoke(clients[i], name, {"sleep_ms": 1500, "info": True})

    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(call, range(n)))
    infos = [r.ok() for r in results]
    streams = {i["log_stream_name"] for i in infos}
    assert len(streams) == n, f"{n} overlapping invokes ran in {len(streams)} environments: {infos}"
    assert all(i["count"] == 1 for i in infos), [i["count"] for i in infos]
    assert len({r.request_id for r in results}) == n
    # Afterwards the environments are warm and reused.
    again = k.invoke(lam, name, {"info": True}).ok()
    assert again["log_stream_name"] in streams and again["count"] == 2


@pytest.fixture
def small_account(server_factory, kindling_binary):
    """A server whose account allows 3 concurrent executions, 1 of which must stay unreserved."""
    srv = server_factory("--account-concurrency", "3", "--min-unreserved-concurrency", "1",
                         *(["--idle-timeout", "600"] if k.supports_flag(kindling_binary, "--idle-timeout") else []))
    yield srv
    srv.kill()


@pytest.mark.runtimes("rust", "python")
def test_account_concurrency_pool(small_account, kind):
    lam = k.make_client(small_account.url)
    logs = small_account.logs
    reserved = k.create_function(lam, kind)
    busy = k.create_function(lam, kind)
    other = k.create_function(lam, kind)
    lam.put_function_concurrency(FunctionName=reserved, ReservedConcurrentExecutions=1)
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["ConcurrentExecutions"] == 3
    assert settings["UnreservedConcurrentExecutions"] == 2

    markers = [k.unique("busy"), k.unique("busy")]
    # Long enough that both still run after two cold starts and the checks below on a loaded
    # machine (4 s was not, at a load of ~11 on 2 cores).
    slow = [_run_in_thread(small_account.url, busy, {"print": m, "sleep_ms": 10000, "info": True})
            for m in markers]
    for m in markers:
        logs.wait_contains(busy, m, timeout=30)  # both unreserved slots are taken
    assert not any(f.done() for f in slow)

    err = k.invoke_error(lam, busy, {"info": True})
    _throttle(err, "ConcurrentInvocationLimitExceeded")
    err = k.invoke_error(lam, other, {"info": True})
    _throttle(err, "ConcurrentInvocationLimitExceeded")
    # Reserved concurrency is guaranteed even while the unreserved pool is full.
    assert k.invoke(lam, reserved, {"info": True}).ok()["count"] == 1

    for f in slow:
        f.result(timeout=60).ok()
    assert k.invoke(lam, other, {"info": True}).ok()["count"] == 1
