"""X-Ray trace headers: every invocation gets `Lambda-Runtime-Trace-Id` (and every runtime client
sets `_X_AMZN_TRACE_ID` from it), continuing an incoming `X-Amzn-Trace-Id` (same Root, new
Parent, other fields kept) or starting a new trace; Event invocations and their function
destinations continue the trace they were accepted with."""

from __future__ import annotations

import re
import time

import kindling_e2e as k

TRACE_RE = re.compile(
    r"^Root=1-(?P<time>[0-9a-f]{8})-(?P<id>[0-9a-f]{24});Parent=(?P<parent>[0-9a-f]{16});"
    r"Sampled=(?P<sampled>[01])(?P<rest>(;[^;]+)*)$"
)
INCOMING_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
INCOMING = f"Root={INCOMING_ROOT};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"

# Prints `TRACE <tag> <its trace header>` and returns the header; `tag` comes from the event
# or, in a destination record, from the original event (`requestPayload`).
TRACE_PRINTER = """import os

def handler(event, context):
    value = os.environ.get("_X_AMZN_TRACE_ID")
    tag = event.get("tag") or (event.get("requestPayload") or {}).get("tag")
    print("TRACE %s %s" % (tag, value))
    return {"tag": tag}
"""


def _client_sending(endpoint: str, header: str):
    """A client whose Invoke requests carry `X-Amzn-Trace-Id: header`."""
    lam = k.make_client(endpoint)

    def add_header(request, **_kwargs):
        request.headers["X-Amzn-Trace-Id"] = header

    lam.meta.events.register("before-sign.lambda.Invoke", add_header)
    return lam


def _parse(value) -> re.Match:
    m = TRACE_RE.match(value or "")
    assert m, f"not an X-Ray trace header: {value!r}"
    return m


def test_every_invocation_gets_a_new_trace(lam, deploy, kind):
    name = deploy()
    first = k.invoke(lam, name, {"env": "_X_AMZN_TRACE_ID"})
    second = k.invoke(lam, name, {"env": "_X_AMZN_TRACE_ID"})
    a = _parse(first.ok()["env"]["_X_AMZN_TRACE_ID"])
    b = _parse(second.ok()["env"]["_X_AMZN_TRACE_ID"])
    assert a.group("id") != b.group("id"), "two invocations share a trace"
    assert abs(int(a.group("time"), 16) - time.time()) < 120, "Root does not carry the epoch time"
    assert a.group("sampled") == "0"
    # The Invoke response names the trace the invocation ran with.
    assert first.headers.get("x-amzn-trace-id") == a.group(0), first.headers


def test_an_incoming_trace_is_continued(server, deploy, kind):
    name = deploy()
    lam = _client_sending(server.url, INCOMING)
    inv = k.invoke(lam, name, {"env": "_X_AMZN_TRACE_ID"})
    m = _parse(inv.ok()["env"]["_X_AMZN_TRACE_ID"])
    assert f"1-{m.group('time')}-{m.group('id')}" == INCOMING_ROOT, m.group(0)
    assert m.group("parent") != "53995c3f42cd8ad8", "the invocation needs a Parent of its own"
    assert m.group("sampled") == "1"
    assert m.group("rest") == ";Lineage=a87bd80c:0", "fields of other services are kept"


def _traces(logs: k.KindlingLogs, function: str, tag: str) -> list[re.Match]:
    prefix = f"TRACE {tag} "
    lines = logs.wait_contains(function, prefix, timeout=30)
    return [_parse(line[len(prefix):]) for line in lines if line.startswith(prefix)]


def test_event_invocations_and_destinations_continue_the_trace(server, lam, logs, kinds):
    code = k.make_zip({"app.py": TRACE_PRINTER})
    target = k.create_function(lam, kinds["python"], zip_bytes=code, Handler="app.handler")
    source = k.create_function(lam, kinds["python"], zip_bytes=code, Handler="app.handler")
    lam.put_function_event_invoke_config(
        FunctionName=source,
        DestinationConfig={"OnSuccess": {"Destination": k.function_arn(target)}})

    # With an incoming header: the event runs in that trace, and so does its destination.
    sender = _client_sending(server.url, INCOMING)
    assert sender.invoke(FunctionName=source, InvocationType="Event",
                         Payload=b'{"tag": "incoming"}')["StatusCode"] == 202
    [ran] = _traces(logs, source, "incoming")
    [delivered] = _traces(logs, target, "incoming")
    for m in (ran, delivered):
        assert f"1-{m.group('time')}-{m.group('id')}" == INCOMING_ROOT, m.group(0)
        # The caller's lineage entry is kept; recursive loop detection appends one entry per
        # function the event has invoked (`<8 hex digits>:<count>`).
        assert re.fullmatch(r";Lineage=a87bd80c:0(\|[0-9a-f]{8}:\d+)+", m.group("rest")), m.group(0)
    assert len({"53995c3f42cd8ad8", ran.group("parent"), delivered.group("parent")}) == 3, (
        "each invocation has a Parent of its own")

    # Without one: the trace started when the event was accepted reaches the destination.
    assert lam.invoke(FunctionName=source, InvocationType="Event",
                      Payload=b'{"tag": "plain"}')["StatusCode"] == 202
    [ran] = _traces(logs, source, "plain")
    [delivered] = _traces(logs, target, "plain")
    assert ran.group("id") == delivered.group("id") and ran.group("time") == delivered.group("time")
    assert ran.group("id") != INCOMING_ROOT.rsplit("-", 1)[1]
