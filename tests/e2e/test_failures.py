"""Invocations that fail: timeouts, crashes, init errors, broken packages, unsupported runtimes.
Each must end with Lambda's error payload, never a hang or a 5xx (except InvalidRuntime, 502)."""

from __future__ import annotations

import pytest

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


def test_unsupported_runtime_is_a_clear_error(lam):
    name = k.unique("e2e-java")
    lam.create_function(FunctionName=name, Runtime="java21", Role=k.ROLE,
                        Handler="example.Handler::handleRequest",
                        Code={"ZipFile": k.make_zip({"example/Handler.class": b"\xca\xfe\xba\xbe"})})
    k.wait_active(lam, name)
    err = k.invoke_error(lam, name, {})
    message = k.assert_api_error(err, "InvalidRuntimeException", 502)
    assert "java21" in message, f"message does not name the runtime: {message!r}"
