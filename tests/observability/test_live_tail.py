"""CloudWatch Logs `StartLiveTail` with boto3's `start_live_tail`: an event stream over plain
HTTP/1.1 (botocore reads it as `responseStream`). botocore prefixes the host with `stream-`
(`stream-127.0.0.1` cannot resolve), so the client turns host-prefix injection off, as users do
with AWS_DISABLE_HOST_PREFIX_INJECTION=true."""

from __future__ import annotations

import queue
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from obs_support import invoke, make_function

pytestmark = pytest.mark.usefixtures("endpoint")


def tail_client():
    return boto3.client("logs", config=Config(inject_host_prefix=False, read_timeout=30,
                                              retries={"total_max_attempts": 1}))


def group_arn(name: str) -> str:
    return f"arn:aws:logs:{support.REGION}:{support.ACCOUNT}:log-group:/aws/lambda/{name}"


def follow(response, out: "queue.Queue"):
    try:
        for event in response["responseStream"]:
            out.put(event)
    except Exception as e:  # noqa: BLE001 — handed to the test
        out.put(e)


def test_live_tail_streams_new_events(lam):
    name = make_function(lam)
    invoke(lam, name, {"lines": ["before the session"]})
    logs = tail_client()
    resp = logs.start_live_tail(logGroupIdentifiers=[group_arn(name)], logEventFilterPattern="tail-marker")
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events: queue.Queue = queue.Queue()
    threading.Thread(target=follow, args=(resp, events), daemon=True).start()
    first = events.get(timeout=10)
    assert not isinstance(first, Exception), first
    start = first["sessionStart"]
    assert start["logGroupIdentifiers"] == [group_arn(name)]
    assert start["logEventFilterPattern"] == "tail-marker" and start["sessionId"]

    marker = f"tail-marker-{uuid.uuid4().hex}"
    invoke(lam, name, {"lines": [marker, "not matching"]})
    got, updates, deadline = [], 0, time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        e = events.get(timeout=5)
        assert not isinstance(e, Exception), e
        update = e["sessionUpdate"]
        updates += 1
        assert update["sessionMetadata"]["sampled"] is False
        got += update["sessionResults"]
    assert [r["message"] for r in got] == [marker], got
    r = got[0]
    assert r["logGroupIdentifier"] == group_arn(name)
    assert r["logStreamName"].startswith(time.strftime("%Y/%m/%d/", time.gmtime(r["timestamp"] / 1000)))
    assert abs(r["timestamp"] / 1000 - time.time()) < 60
    # Without events, an (empty) update still comes about every second.
    e = events.get(timeout=5)
    assert not isinstance(e, Exception) and "sessionUpdate" in e, e
    resp["responseStream"].close()


def test_live_tail_errors(lam):
    logs = tail_client()
    with pytest.raises(ClientError) as e:
        logs.start_live_tail(logGroupIdentifiers=[group_arn("no-such-function-" + uuid.uuid4().hex[:6])])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    name = make_function(lam)
    invoke(lam, name, {"lines": ["x"]})
    with pytest.raises(ClientError) as e:
        logs.start_live_tail(logGroupIdentifiers=[group_arn(name)], logStreamNames=["a"],
                             logStreamNamePrefixes=["b"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.start_live_tail(logGroupIdentifiers=[group_arn(name) + "*"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
