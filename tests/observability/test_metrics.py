"""`/metrics` in the Prometheus text format, parsed with the Prometheus client library's own
parser, checked against what the test did; health endpoints."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

import support
from conftest import client
from obs_support import invoke, make_function, wait_for

SLOW_CODE = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"""


def scrape(url: str, path: str = "/metrics") -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url + path, timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_lambda_metrics_match_what_ran(lam, endpoint):
    name = make_function(lam, code=SLOW_CODE)
    for _ in range(3):
        invoke(lam, name, {})
    failed = invoke(lam, name, {"fail": True})
    assert failed.get("FunctionError") == "Unhandled"
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    for _ in range(2):
        invoke(lam, name, {}, Qualifier="live")
    for _ in range(2):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    latest = {"function": name, "resource": name, "executed_version": "$LATEST"}
    aliased = {"function": name, "resource": f"{name}:live", "executed_version": version}

    def settled():
        s = scrape(endpoint)
        return s if value(s, "kindling_lambda_invocations_total", **latest) == 6 else None
    s = wait_for(settled, timeout=60, what="6 invocations of $LATEST")
    assert value(s, "kindling_lambda_errors_total", **latest) == 1
    assert value(s, "kindling_lambda_duration_seconds_count", **latest) == 6
    assert value(s, "kindling_lambda_duration_seconds_bucket", le="+Inf", **latest) == 6
    assert value(s, "kindling_lambda_duration_seconds_sum", **latest) > 0
    assert value(s, "kindling_lambda_invocations_total", **aliased) == 2
    assert value(s, "kindling_lambda_errors_total", **aliased) == 0
    # One environment started for $LATEST (its first), one for version N.
    assert value(s, "kindling_lambda_init_duration_seconds_count", **latest) == 1
    assert value(s, "kindling_lambda_init_duration_seconds_count", **aliased) == 1
    assert value(s, "kindling_cold_starts_total", function=name, cause="first") == 1
    assert sum(v for (n, l), v in s.items() if n == "kindling_cold_starts_total"
               and dict(l)["function"] == name) == 2
    assert value(s, "kindling_lambda_async_events_received_total", function=name) == 2
    assert value(s, "kindling_lambda_async_event_age_seconds_count", function=name) == 2
    assert value(s, "kindling_environments", state="idle") >= 2
    assert value(s, "kindling_sandbox_setup_seconds_count") >= 2
    assert value(s, "kindling_store_call_seconds_count", operation="enqueue") >= 1


def test_throttles_and_concurrency(lam, endpoint):
    throttled = make_function(lam, code=SLOW_CODE)
    lam.put_function_concurrency(FunctionName=throttled, ReservedConcurrentExecutions=0)
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            invoke(lam, throttled, {})
        assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    s = scrape(endpoint)
    assert value(s, "kindling_lambda_throttles_total", function=throttled,
                 reason="ReservedFunctionConcurrentInvocationLimitExceeded") == 2
    slow = make_function(lam, code=SLOW_CODE)
    invoke(lam, slow, {})  # warm
    t = threading.Thread(target=invoke, args=(lam, slow, {"sleep": 3}))
    t.start()
    try:
        s = wait_for(lambda: (lambda s: s if value(
            s, "kindling_lambda_concurrent_executions", function=slow) == 1 else None)(
                scrape(endpoint)), timeout=10, interval=0.1, what="one execution in progress")
        assert value(s, "kindling_lambda_unreserved_concurrent_executions") >= 1
        assert value(s, "kindling_environments", state="busy") >= 1
    finally:
        t.join()
    s = scrape(endpoint)
    assert value(s, "kindling_lambda_concurrent_executions", function=slow) == 0


def test_queue_depth_and_age(endpoint):
    sqs = client("sqs")
    name = support.unique("metrics-q")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    time.sleep(1.1)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    assert len(received["Messages"]) == 1
    s = scrape(endpoint, "/_kindling/metrics")
    assert value(s, "kindling_sqs_messages", queue=name, state="visible") == 2
    assert value(s, "kindling_sqs_messages", queue=name, state="in_flight") == 1
    assert value(s, "kindling_sqs_oldest_message_age_seconds", queue=name) >= 1.0


def test_health_endpoints(endpoint):
    with urllib.request.urlopen(endpoint + "/_kindling/health/live", timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    with urllib.request.urlopen(endpoint + "/_kindling/health/ready", timeout=10) as r:
        body = json.loads(r.read())
        assert r.status == 200 and body["store"]["ok"] is True
    s = scrape(endpoint)
    assert value(s, "kindling_store_probe_seconds_count") >= 1
