"""A synchronous invocation does not die with its caller: when the HTTP client goes away
(client-side timeout, killed curl), the function still runs to completion, its END and REPORT
are logged, and its environment stays warm for the next invocation."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

import kindling_e2e as k

# Sleeps, then prints the marker: the marker in the log proves the handler finished.
SLOW = """import time

COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("sleep_s"):
        time.sleep(event["sleep_s"])
        print("finished " + event["marker"])
    return {"count": COUNT}
"""


def _abandoned_invoke(port: int, name: str, event: dict, give_up_after: float) -> None:
    """Sends an Invoke and closes the connection after `give_up_after` seconds without
    reading the answer (as a client with that read timeout would)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=give_up_after)
    try:
        conn.request("POST", f"/2015-03-31/functions/{name}/invocations",
                     body=json.dumps(event).encode(), headers={"Content-Type": "application/json"})
        with pytest.raises((socket.timeout, TimeoutError)):
            conn.getresponse()
    finally:
        conn.close()


def test_invocation_outlives_its_caller(lam, server, logs, kinds):
    name = k.create_function(lam, kinds["python"], zip_bytes=k.make_zip({"app.py": SLOW}),
                             Handler="app.handler")
    warm = k.invoke(lam, name, {}, tail=True)
    assert warm.ok()["count"] == 1

    marker = k.unique("outlived")
    _abandoned_invoke(server.port, name, {"sleep_s": 2, "marker": marker}, give_up_after=0.3)

    # The handler finishes although nobody waits for it.
    logs.wait_contains(name, f"finished {marker}", timeout=15)
    messages = logs.wait_contains(name, "REPORT RequestId", timeout=5)
    starts = [m.split()[2] for m in messages if m.startswith("START RequestId: ")]
    assert len(starts) == 2, f"expected the warm-up and the abandoned invocation: {messages}"
    abandoned = [r for r in starts if r != warm.request_id][0]
    k.wait_for(lambda: any(m.startswith(f"REPORT RequestId: {abandoned}")
                           for m in logs.messages(name)),
               timeout=10, what="the abandoned invocation's REPORT")
    messages = logs.messages(name)
    assert f"END RequestId: {abandoned}" in messages, messages
    report = k.report_for("\n".join(messages), abandoned)
    assert report.duration >= 1900, f"the handler did not run its 2 s: {report.line!r}"

    # Its environment went back to the pool: the next invocation is warm.
    after = k.invoke(lam, name, {}, tail=True)
    assert after.ok()["count"] == 3, "a new environment served the next invocation"
    rep = k.report_for(after.log, after.request_id)
    assert rep.init_duration is None, f"the next invocation was a cold start: {rep.line!r}"
