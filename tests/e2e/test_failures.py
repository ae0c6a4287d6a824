"""Invocations that fail: timeouts, crashes, init errors, broken packages, unsupported runtimes.
Each must end with Lambda's error payload, never a hang or a 5xx (except InvalidRuntime, 502)."""

from __future__ import annotations

import pytest

from botocore.exceptions import ClientError

import kindling_e2e as k


@pytest.mark.slow
def test_timeout_then_fresh_environment(lam, deploy, kind):
    name = deploy(Timeout=1)
    warm = k.invoke(lam, name, {"info": True}).ok()
    assert warm["count"] == 1

    inv = k.invoke(lam, name, {"sleep_ms": 10_000}, tail=True)
    err = inv.error()
    assert err.get("errorType") == "Sandbox.Timedout", err
    message = err.get("errorMessage", "")
    assert message.endswith("Task timed out after 1.00 seconds"), message
    assert inv.request_id in message, f"timeout message does not name the request: {message!r}"
    assert 1.0 <= inv.elapsed < 8.0, f"timeout answered after {inv.elapsed:.2f}s (Timeout=1)"
    assert inv.log is not None and "Task timed out after 1.00 seconds" in inv.log, inv.log
    assert f"END RequestId: {inv.request_id}" in inv.log, inv.log
    k.report_for(inv.log, inv.request_id)

    after = k.invoke(lam, name, {"info": True}).ok()
    assert after["count"] == 1, f"the timed-out environment was reused: {after}"
    assert after["log_stream_name"] != warm["log_stream_name"], "no new environment after a timeout"


def test_crash_then_fresh_environment(lam, deploy, kind):
    name = deploy()
    before = k.invoke(lam, name, {"info": True}).ok()
    inv = k.invoke(lam, name, {"crash": 1})
    err = inv.error()
    assert err.get("errorType") == "Runtime.ExitError", err
    assert "exit status 1" in err.get("errorMessage", ""), err
    assert inv.request_id in err.get("errorMessage", ""), err
    assert inv.elapsed < 10, f"crash reported after {inv.elapsed:.1f}s"

    after = k.invoke(lam, name, {"info": True}).ok()
    assert after["count"] == 1, f"state survived a crash: {after}"
    assert after["log_stream_name"] != before["log_stream_name"]


def test_response_too_large(lam, deploy, kind):
    name = deploy()
    inv = k.invoke(lam, name, {"big": 7 * 1024 * 1024})
    err = inv.error()
    assert err.get("errorType") == "Function.ResponseSizeTooLarge", err
    assert inv.request_id in err.get("errorMessage", ""), err
    # The function keeps working (on this environment or a fresh one).
    assert k.invoke(lam, name, {"info": True}).ok()["runtime"]


def test_response_just_under_the_limit(lam, deploy, kind):
    name = deploy()
    n = 6 * 1024 * 1024 - 100  # the answer is {"big": "xx..."}: 11 bytes of JSON around it
    inv = k.invoke(lam, name, {"big": n})
    assert len(inv.payload) <= 6 * 1024 * 1024
    assert len(inv.ok()["big"]) == n


def test_runtime_exit_while_idle_gives_a_cold_start(lam, deploy, kind):
    """The runtime process dies between invocations (after answering): the next invocation
    must get a fresh environment, not the dead one's exit error."""
    marker = k.unique("exitmark")
    name = deploy(env={"E2E_MARKER": marker})
    first = k.invoke(lam, name, {"info": True, "exit_after_ms": 300}).ok()
    assert first["count"] == 1
    k.wait_for(lambda: not k.processes_with(marker), timeout=15, interval=0.05,
               what="the runtime process to exit on its own")
    inv = k.invoke(lam, name, {"info": True})
    info = inv.ok()
    assert info["count"] == 1 and info["log_stream_name"] != first["log_stream_name"], info


def test_runtime_that_exits_after_each_answer(lam):
    """A custom runtime that answers one event and exits without asking for the next one: every
    invocation must run on a fresh environment (cold start) and succeed."""
    name = k.unique("e2e-oneshot")
    bootstrap = (k.FIXTURES / "oneshot" / "bootstrap").read_bytes()
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=k.ROLE,
                        Handler="oneshot", Code={"ZipFile": k.make_zip({"bootstrap": (bootstrap, 0o755)})})
    k.wait_active(lam, name)
    outcomes = []
    for i in range(4):
        inv = k.invoke(lam, name, {"i": i}, tail=True)
        if inv.function_error:
            outcomes.append(f"invoke {i}: {inv.function_error} {inv.payload[:200]!r}")
            continue
        assert inv.json["event"] == {"i": i} and inv.json["request_id"] == inv.request_id
        rep = k.report_for(inv.log, inv.request_id)
        if rep.init_duration is None:
            outcomes.append(f"invoke {i}: no Init Duration (not a cold start): {rep.line!r}")
    assert not outcomes, "\n".join(outcomes)


def test_out_of_memory(lam, deploy, kind):
    """Using more memory than MemorySize ends the invocation with a runtime error (Lambda
    enforces the limit) and the next invocation works."""
    name = deploy(MemorySize=128)
    inv = k.invoke(lam, name, {"alloc_mb": 400, "info": True}, tail=True)
    if not k.expected_isolation_is_namespaces() and inv.function_error is None:
        pytest.fail("memory limits are only enforced with namespaces isolation (cgroups): "
                    "run the suite as root")
    err = inv.error()
    assert err.get("errorType") == "Runtime.OutOfMemory", err
    assert inv.request_id in err.get("errorMessage", ""), err
    rep = k.report_for(inv.log, inv.request_id)
    assert rep.max_memory == 128, f"Max Memory Used should reach the limit: {rep.line!r}"
    after = k.invoke(lam, name, {"info": True}).ok()
    assert after["count"] == 1


@pytest.mark.runtimes("python", "ric", "node")
def test_import_error(lam, deploy, kind):
    name = deploy(Handler=kind.broken_handler)
    missing = "e2e-missing-package-7f3a" if kind.key == "node" else "e2e_missing_package_7f3a"
    for attempt in (1, 2):  # init is retried on the next invoke, with the same answer
        inv = k.invoke(lam, name, {"x": attempt})
        err = inv.error()
        assert err.get("errorType") == "Runtime.ImportModuleError", err
        message = err.get("errorMessage", "")
        assert missing in message, f"missing module not named: {message!r}"
        if kind.key != "node":
            assert "'broken'" in message, f"handler module not named: {message!r}"
        assert inv.elapsed < 15, f"init failure answered after {inv.elapsed:.1f}s"


@pytest.mark.runtimes("python", "ric", "node")
def test_handler_not_found(lam, deploy, kind):
    name = deploy(Handler=kind.missing_handler)
    err = k.invoke(lam, name, {}).error()
    assert err.get("errorType") == "Runtime.HandlerNotFound", err
    assert "nope" in err.get("errorMessage", ""), err


@pytest.mark.parametrize("case", ["missing", "not-executable"])
def test_custom_runtime_without_valid_bootstrap(lam, case):
    files = {"README.txt": "no bootstrap here"}
    if case == "not-executable":
        files["bootstrap"] = ("#!/bin/sh\nexit 0\n", 0o644)
    name = k.unique("e2e-noboot")
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=k.ROLE,
                        Handler="bootstrap", Code={"ZipFile": k.make_zip(files)})
    k.wait_active(lam, name)
    inv = k.invoke(lam, name, {})
    err = inv.error()
    assert err.get("errorType") == "Runtime.InvalidEntrypoint", err
    assert inv.elapsed < 15


def test_custom_runtime_exits_during_init(lam):
    name = k.unique("e2e-initexit")
    zip_bytes = k.make_zip({"bootstrap": ("#!/bin/sh\necho dying >&2\nexit 3\n", 0o755)})
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=k.ROLE,
                        Handler="bootstrap", Code={"ZipFile": zip_bytes})
    k.wait_active(lam, name)
    inv = k.invoke(lam, name, {}, tail=True)
    err = inv.error()
    assert err.get("errorType") == "Runtime.ExitError", err
    assert "exit status 3" in err.get("errorMessage", ""), err
    assert inv.elapsed < 15
    assert "dying" in (inv.log or ""), f"the runtime's stderr is missing from the tail: {inv.log!r}"


def test_unsupported_runtime_is_refused_at_create(lam):
    """A runtime Kindling cannot run (no .NET) is refused when the function is created, not
    when it is first invoked (a 502 there would be retried by botocore)."""
    name = k.unique("e2e-dotnet")
    try:
        lam.create_function(FunctionName=name, Runtime="dotnet8", Role=k.ROLE,
                            Handler="App::App.Function::Handler",
                            Code={"ZipFile": k.make_zip({"App.dll": b"MZ"})})
    except ClientError as e:
        message = k.assert_api_error(e, "InvalidParameterValueException", 400)
    else:
        raise AssertionError("dotnet8 was accepted")
    assert "dotnet8" in message and ".NET" in message, f"message does not say what is missing: {message!r}"
