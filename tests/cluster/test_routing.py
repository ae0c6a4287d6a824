"""Synchronous invokes reach a warm environment where one exists: a node with no idle
environment for a function forwards the invoke to a live node that advertises one (same code
revision), and runs it itself when that node is full, unreachable or dead. A node that dies
fails only the calls it was running."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import support

from conftest import wait_for

# Reports its start to the sink when asked (`report`), sleeps, and says which node ran it
# (`AWS_ENDPOINT_URL` names the node) in which process (one per environment).
HANDLER = r'''
import json, os, time, urllib.request

def handler(event, context):
    node = os.environ.get("AWS_ENDPOINT_URL")
    if event.get("report"):
        body = {"node": node, "key": event.get("key"), "id": context.aws_request_id}
        req = urllib.request.Request(os.environ["SINK"], data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
    time.sleep(float(event.get("sleep", 0)))
    return {"node": node, "pid": os.getpid()}
'''


class Result:
    def __init__(self, resp):
        self.headers = resp["ResponseMetadata"]["HTTPHeaders"]
        body = json.loads(resp["Payload"].read())
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, body
        self.node = body["node"]
        self.pid = body["pid"]
        self.log = base64.b64decode(resp.get("LogResult", "")).decode()


def lam(node):
    # One attempt: a failed call is seen as it failed, never retried.
    return boto3.client("lambda", endpoint_url=node.url,
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=90,
                                      connect_timeout=5))


def invoke(client, name: str, event: dict | None = None) -> Result:
    return Result(client.invoke(FunctionName=name, LogType="Tail",
                                Payload=json.dumps(event or {}).encode()))


def metric(srv, name: str, **labels) -> float | None:
    """A sample of `name` with exactly `labels`, from the node's /metrics."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if want else f"{name} "
    for line in srv.metrics().splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return None


def cold_starts(node, function: str) -> float:
    total = 0.0
    for line in node.metrics().splitlines():
        if line.startswith("kindling_cold_starts_total{") and f'function="{function}"' in line:
            total += float(line.split()[-1])
    return total


def make_function(client, sink) -> str:
    name = support.unique("route")
    support.create_function(client, name,
                            zip_bytes=support.make_zip({"lambda_function.py": HANDLER}),
                            Handler="lambda_function.handler", Timeout=60,
                            Environment={"Variables": {"SINK": f"{sink.url}/{name}"}})
    return name


def node_id(node) -> str:
    return node.nodes()["node_id"]


def sees_warm(node, peer_id: str) -> bool:
    return (metric(node, "kindling_cluster_warm_targets", node=peer_id) or 0) >= 1


def test_invokes_on_other_nodes_run_in_the_warm_environment_of_the_node_that_has_one(
        start_node, sink):
    a, b, c = start_node(), start_node(), start_node()
    la, lb, lc = lam(a), lam(b), lam(c)
    name = make_function(la, sink)
    first = invoke(la, name)
    assert first.node == a.url
    assert "Init Duration" in first.log, first.log
    a_id = node_id(a)
    for n in (b, c):
        wait_for(lambda n=n: sees_warm(n, a_id), timeout=15, what="A's warm target advertised")

    # B and C have no environment: A's warm one serves them (no cold start anywhere).
    for client in (lb, lc):
        r = invoke(client, name)
        assert (r.node, r.pid) == (a.url, first.pid), "not A's warm environment"
        assert "REPORT RequestId" in r.log and "Init Duration" not in r.log, r.log
        assert r.headers.get("x-kindling-node") == a_id
    for n in (b, c):
        assert cold_starts(n, name) == 0, "a node started an environment"
    assert cold_starts(a, name) == 1
    assert metric(a, "kindling_forwarded_in_invocations_total", outcome="served") == 2
    assert metric(b, "kindling_forwarded_invocations_total", outcome="served") == 1

    # Four calls at once on B: A has one idle environment; the others start on B.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: invoke(lb, name, {"sleep": 1.5}), range(4)))
    ran = Counter(r.node for r in results)
    assert set(ran) <= {a.url, b.url}, ran
    assert ran[a.url] >= 1 and ran[b.url] >= 2, ran
    assert 1 <= cold_starts(b, name) <= ran[b.url]
    assert (metric(b, "kindling_forwarded_invocations_total", outcome="declined") or 0) >= 1
    assert cold_starts(c, name) == 0
    # Once B has idle environments of its own, it runs there (no hop at all).
    served = metric(b, "kindling_forwarded_invocations_total", outcome="served")
    assert invoke(lb, name).node == b.url
    assert metric(b, "kindling_forwarded_invocations_total", outcome="served") == served

    # A new revision is not routed to environments of the old one.
    la.update_function_configuration(FunctionName=name, Description="v2")
    support.wait_active(la, name)
    r = invoke(lc, name)
    assert r.node == c.url and "Init Duration" in r.log


def test_a_client_cannot_pass_its_call_off_as_forwarded(start_node, sink):
    a, b = start_node(), start_node()
    la, lb = lam(a), lam(b)
    name = make_function(la, sink)
    invoke(la, name)
    wait_for(lambda: sees_warm(b, node_id(a)), timeout=15, what="A's warm target advertised")

    def with_hop(request, **_):
        request.headers["x-kindling-hop"] = "not-the-token"

    lb.meta.events.register("before-send.lambda.Invoke", with_hop)
    # The hop header only stops forwarding: B serves the call itself (a cold start).
    r = invoke(lb, name)
    assert r.node == b.url and "Init Duration" in r.log
    assert "x-kindling-node" not in r.headers
    la.meta.events.register("before-send.lambda.Invoke", with_hop)
    # On A (an idle environment there) it runs as usual.
    assert invoke(la, name).node == a.url


def test_a_dead_node_fails_only_its_in_flight_calls(start_node, sink):
    a, b, c = start_node(), start_node(), start_node()
    la, lb, lc = lam(a), lam(b), lam(c)
    name = make_function(la, sink)
    # Three environments on A (three calls at once).
    with ThreadPoolExecutor(3) as pool:
        warm = list(pool.map(lambda _: invoke(la, name, {"sleep": 3}), range(3)))
    assert len({r.pid for r in warm}) >= 2, "A started fewer than two environments"
    a_id = node_id(a)
    for n in (b, c):
        wait_for(lambda n=n: sees_warm(n, a_id), timeout=15, what="A's warm target advertised")

    outcomes: dict[str, object] = {}

    def call(key, client, event):
        try:
            outcomes[key] = invoke(client, name, event)
        except Exception as e:  # noqa: BLE001  (a ClientError, or a dropped connection)
            outcomes[key] = e

    def started_on(key):
        return [r for r in sink.get(name) if r["key"] == key]

    # X: forwarded by B, running in an environment of A when A dies.
    x = threading.Thread(target=call, args=("x", lb, {"report": True, "key": "x", "sleep": 60}))
    x.start()
    wait_for(lambda: started_on("x"), timeout=30, what="x to start")
    assert started_on("x")[0]["node"] == a.url
    # D: a direct call on A, in flight too.
    d = threading.Thread(target=call, args=("d", la, {"report": True, "key": "d", "sleep": 60}))
    d.start()
    wait_for(lambda: started_on("d"), timeout=30, what="d to start")

    # Calls keep coming on C (forwarded to A's idle environment while A lives) as A is killed.
    stop = threading.Event()
    background: list[tuple[float, object]] = []

    def keep_calling():
        while not stop.is_set():
            try:
                background.append((time.monotonic(), invoke(lc, name)))
            except Exception as e:  # noqa: BLE001
                background.append((time.monotonic(), e))

    t = threading.Thread(target=keep_calling)
    t.start()
    wait_for(lambda: len(background) >= 3, timeout=30, what="calls on C")
    killed = time.monotonic()
    a.srv.kill()
    x.join(30)
    d.join(30)
    assert not x.is_alive() and not d.is_alive()
    # B's caller learns at once that the node running its call died (not after 60 s).
    assert time.monotonic() - killed < 20

    def failed_on_a(err) -> bool:
        return (isinstance(err, ClientError)
                and err.response["Error"]["Code"] == "ServiceException"
                and err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
                and a_id in err.response["Error"]["Message"])

    assert failed_on_a(outcomes["x"]), outcomes["x"]
    assert not isinstance(outcomes["d"], Result), "a call on the killed node answered"

    # B finds no environment of its own and still lists A (not yet declared dead): it cannot
    # reach it and runs the call itself, without waiting for A to be declared dead.
    start = time.monotonic()
    r = invoke(lb, name)
    assert r.node == b.url
    assert time.monotonic() - start < 15
    wait_for(lambda: len([1 for at, _ in background if at > killed + 1]) >= 3, timeout=60,
             what="calls on C after the kill")
    stop.set()
    t.join(60)
    # C's calls: served by A before the kill, by C after; the only one that may have failed is
    # the one A was running when it died.
    failures = [e for _, e in background if not isinstance(e, Result)]
    assert len(failures) <= 1 and all(failed_on_a(e) for e in failures), failures
    after = [res for at, res in background if at > killed + 1]
    assert after and all(isinstance(res, Result) and res.node == c.url for res in after), after
    unreachable = sum(metric(n, "kindling_forwarded_invocations_total", outcome="unreachable")
                      or 0 for n in (b, c))
    assert unreachable >= 1, "nobody tried the dead node"
    # Once A is declared dead, nobody routes to it any more.
    for n in (b, c):
        wait_for(lambda n=n: not sees_warm(n, a_id), timeout=20, what="A forgotten")
    assert invoke(lc, name).node == c.url
