"""Synchronous Invoke through every runtime client: payload round trip, function errors, warm
state, context object, environment variables, remaining time, client context, trace id."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

import kindling_e2e as k

# Exercises escapes, nesting, numbers and key order (ASCII only; non-ASCII is its own test).
ECHO_VALUE = {
    "zeta": 1,
    "alpha": [True, False, None, -2.5, 0.1, 9007199254740991],
    "nested": {"quote": "a\"b\\c/d", "ctrl": "\b\f\n\r\t\u0001", "empty": {}, "list": []},
    "text": "hello",
}
UNICODE_VALUE = {"greeting": "h\u00e9llo w\u00f6rld \u2603 \U0001F600", "cjk": "\u6f22\u5b57"}


def canonical(kind: k.RuntimeKind, value) -> bytes:
    """The bytes each runtime's JSON serializer produces for `value`: Python (both Kindling's
    bootstrap and awslambdaric on 3.11) writes json.dumps' defaults; Node and serde_json write
    compact JSON with raw UTF-8."""
    if kind.key in ("python", "ric"):
        return json.dumps(value).encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_echo_exact_bytes(lam, deploy, kind):
    name = deploy()
    body = canonical(kind, ECHO_VALUE)
    inv = k.invoke(lam, name, raw=body)
    assert inv.status == 200
    assert inv.function_error is None
    assert inv.executed_version == "$LATEST"
    assert inv.payload == body, f"payload changed on the way:\nsent {body!r}\ngot  {inv.payload!r}"
    assert k.re.fullmatch(k.UUID_RE, inv.request_id), f"x-amzn-RequestId {inv.request_id!r}"
    assert "x-amz-function-error" not in inv.headers


def test_echo_unicode_and_scalars(lam, deploy, kind):
    name = deploy()
    assert k.invoke(lam, name, UNICODE_VALUE).ok() == UNICODE_VALUE
    # Events need not be objects.
    for value in ("just a string", 42, [1, "two", None], None, True):
        assert k.invoke(lam, name, raw=json.dumps(value).encode()).ok() == value


def test_event_whitespace_is_delivered_as_json(lam, deploy, kind):
    name = deploy()
    raw = b' \n{ "a" : [ 1 , 2 ] ,\t"b" : { } }\n '
    assert k.invoke(lam, name, raw=raw).ok() == {"a": [1, 2], "b": {}}


def test_empty_payload_is_empty_object(lam, deploy, kind):
    name = deploy()
    inv = k.invoke(lam, name)  # boto3 sends no body
    assert inv.ok() == {}


@pytest.mark.runtimes("rust", "python", "node")
def test_large_payload_round_trip(lam, deploy, kind):
    name = deploy()
    value = {"blob": "x" * (5 * 1024 * 1024)}
    inv = k.invoke(lam, name, value)
    assert inv.ok() == value


def test_function_error_shape(lam, deploy, kind):
    name = deploy()
    inv = k.invoke(lam, name, {"fail": True, "message": "boom: something broke"})
    err = inv.error()
    assert err.get("errorType") == "FixtureError", err
    assert err.get("errorMessage") == "boom: something broke", err
    assert set(err) == set(kind.error_keys), f"{kind.key} error payload keys {sorted(err)}"
    if kind.key in ("python", "ric"):
        assert err["requestId"] == inv.request_id, (err["requestId"], inv.request_id)
        assert isinstance(err["stackTrace"], list) and any("handler.py" in s for s in err["stackTrace"])
    if kind.key == "node":
        assert isinstance(err["trace"], list) and err["trace"][0].startswith("FixtureError: boom")
    # A function error does not reset the environment: the module state carries on.
    after = k.invoke(lam, name, {"info": True}).ok()
    assert after["count"] == 2, f"environment was not reused after a function error: {after}"


def test_warm_reuse_keeps_state(lam, deploy, kind):
    name = deploy()
    first = k.invoke(lam, name, {"info": True}).ok()
    second = k.invoke(lam, name, {"info": True}).ok()
    assert (first["count"], second["count"]) == (1, 2), (first, second)
    assert first["log_stream_name"] == second["log_stream_name"], "a second environment was started"
    assert first["pid"] == second["pid"]
    # Echoes count too (every invocation runs the handler).
    k.invoke(lam, name, {"x": 1}).ok()
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 4


def _check_log_stream(stream: str, version: str) -> None:
    m = k.LOG_STREAM_RE.match(stream or "")
    assert m, f"log stream {stream!r} is not YYYY/MM/DD/[version]<32 hex>"
    assert m.group(4) == version, f"log stream {stream!r} should carry [{version}]"
    day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    today = dt.datetime.now(dt.timezone.utc).date()
    assert day in (today, today - dt.timedelta(days=1)), f"log stream date {day} is not today (UTC)"


def test_context_object(lam, deploy, kind):
    name = deploy()
    inv = k.invoke(lam, name, {"info": True})
    info = inv.ok()
    # The function really runs under the runtime client this case is about.
    assert info["runtime"] == {"rust": "rust", "node": "node"}.get(kind.key, "python"), info
    if kind.key in ("python", "ric"):
        assert (info["client"] == "awslambdaric") == (kind.key == "ric"), info
    assert info["aws_request_id"] == inv.request_id, "context request id != x-amzn-RequestId"
    assert info["function_name"] == name
    assert info["function_version"] == "$LATEST"
    assert info["invoked_function_arn"] == k.function_arn(name)
    assert info["memory_limit_in_mb"] == "128"
    assert info["log_group_name"] == f"/aws/lambda/{name}"
    _check_log_stream(info["log_stream_name"], "$LATEST")
    # Each invocation has its own id.
    inv2 = k.invoke(lam, name, {"info": True})
    assert inv2.ok()["aws_request_id"] == inv2.request_id != inv.request_id


def test_invoked_arn_is_as_invoked(lam, deploy, kind):
    name = deploy()
    arn = k.function_arn(name)
    assert k.invoke(lam, arn, {"info": True}).ok()["invoked_function_arn"] == arn
    partial = f"{k.ACCOUNT}:function:{name}"
    info = k.invoke(lam, partial, {"info": True}).ok()
    assert info["function_name"] == name


LAMBDA_VARS = [
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_RUNTIME_API", "_HANDLER",
    "AWS_EXECUTION_ENV", "AWS_LAMBDA_INITIALIZATION_TYPE", "TZ",
]
USER_VARS = {
    "E2E_PLAIN": "value 1",
    "E2E_UNICODE": "h\u00e9llo w\u00f6rld",
    "E2E_EQUALS": "a=b=c",
    "E2E_JSONISH": '{"a": [1, 2]}',
}


def test_environment_variables(lam, deploy, kind):
    name = deploy(env=USER_VARS, MemorySize=256)
    info = k.invoke(lam, name, {"env": [*USER_VARS, *LAMBDA_VARS]}).ok()
    env = info["env"]
    for key, value in USER_VARS.items():
        assert env[key] == value, f"{key}: {env[key]!r} != {value!r}"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert info["memory_limit_in_mb"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    _check_log_stream(env["AWS_LAMBDA_LOG_STREAM_NAME"], "$LATEST")
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == info["log_stream_name"]
    assert env["AWS_REGION"] == k.REGION
    assert env["AWS_DEFAULT_REGION"] == k.REGION
    if k.expected_isolation_is_namespaces():
        assert env["LAMBDA_TASK_ROOT"] == "/var/task"
        assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    else:
        assert env["LAMBDA_TASK_ROOT"], "LAMBDA_TASK_ROOT is not set"
    assert k.re.fullmatch(r"[^:\s]+:\d+", env["AWS_LAMBDA_RUNTIME_API"] or ""), env["AWS_LAMBDA_RUNTIME_API"]
    assert env["_HANDLER"] == kind.handler
    expected_exec_env = {"python": "AWS_Lambda_python3.11", "node": "AWS_Lambda_nodejs20.x"}.get(kind.key)
    assert env["AWS_EXECUTION_ENV"] == expected_exec_env, "AWS_EXECUTION_ENV (unset for provided.*)"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"


def test_environment_update_reaches_new_invokes(lam, deploy, kind):
    name = deploy(env={"E2E_STAGE": "one"})
    assert k.invoke(lam, name, {"env": "E2E_STAGE"}).ok()["env"]["E2E_STAGE"] == "one"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"E2E_STAGE": "two"}})
    k.wait_active(lam, name)
    info = k.invoke(lam, name, {"env": "E2E_STAGE"}).ok()
    assert info["env"]["E2E_STAGE"] == "two", "configuration update did not reach the next invoke"
    assert info["count"] == 1, "an environment with the old configuration was reused"


def test_filesystem(lam, deploy, kind):
    """/tmp is writable and survives warm reuse; the code is read-only; with namespaces
    isolation each function has its own /tmp."""
    name = deploy()
    first = k.invoke(lam, name, {"fs": True})
    fs1 = first.ok()["fs"]
    assert fs1["tmp_written"], "/tmp is not writable"
    second = k.invoke(lam, name, {"fs": True})
    fs2 = second.ok()["fs"]
    assert fs2["tmp_previous"] == first.request_id, f"/tmp did not survive warm reuse: {fs2}"
    if k.expected_isolation_is_namespaces():
        assert fs1["tmp_previous"] is None, f"a new environment saw another's /tmp: {fs1}"
        assert not fs1["task_root_writable"], "the code directory (/var/task) is writable"
        other = deploy()
        fs3 = k.invoke(lam, other, {"fs": True}).ok()["fs"]
        assert fs3["tmp_previous"] is None, f"another function's /tmp is visible: {fs3}"


def test_remaining_time(lam, deploy, kind):
    name = deploy(Timeout=6)
    info = k.invoke(lam, name, {"info": True, "sleep_ms": 500}).ok()
    start, end = info["remaining_start"], info["remaining_end"]
    assert 4000 < start <= 6000, f"remaining time at start {start} ms (Timeout=6 s)"
    assert end <= start - 450, f"remaining time did not decrease across a 500 ms sleep: {start} -> {end}"
    # The deadline is per invocation: the next one starts with the full timeout again.
    again = k.invoke(lam, name, {"info": True}).ok()
    assert again["count"] == 2
    assert 4000 < again["remaining_start"] <= 6000, again["remaining_start"]


def test_client_context(lam, deploy, kind):
    name = deploy()
    ctx = {"client": {"installation_id": "i-1", "app_title": "t", "app_version_name": "1.0",
                      "app_version_code": "1", "app_package_name": "p"},
           "custom": {"tenant": "acme", "mode": "e2e"}, "env": {"platform": "linux"}}
    encoded = base64.b64encode(json.dumps(ctx).encode()).decode()
    info = k.invoke(lam, name, {"info": True}, client_context=encoded).ok()
    assert info["client_custom"] == ctx["custom"]
    # And none without the header.
    assert not k.invoke(lam, name, {"info": True}).ok()["client_custom"]


def test_trace_id_reaches_the_function(lam, deploy, kind):
    name = deploy()
    trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"

    def add_header(request, **_kwargs):
        request.headers["X-Amzn-Trace-Id"] = trace

    lam.meta.events.register("before-sign.lambda.Invoke", add_header)
    try:
        info = k.invoke(lam, name, {"env": "_X_AMZN_TRACE_ID"}).ok()
    finally:
        lam.meta.events.unregister("before-sign.lambda.Invoke", add_header)
    value = info["env"]["_X_AMZN_TRACE_ID"] or ""
    assert "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700" in value, f"_X_AMZN_TRACE_ID = {value!r}"


def test_python312_runtime_runs(lam, kinds):
    """python3.12 runs on the host's interpreter (3.11 here) and says it is python3.12."""
    name = k.create_function(lam, kinds["python"], Runtime="python3.12")
    info = k.invoke(lam, name, {"env": "AWS_EXECUTION_ENV"}).ok()
    assert info["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert k.invoke(lam, name, ECHO_VALUE).ok() == ECHO_VALUE
