"""Concurrency limits across nodes: the account's unreserved pool and a function's reserved
concurrency hold for the whole cluster of three nodes on one PostgreSQL database (each node
admits against the slots it was granted), over-limit calls get Lambda's 429 with the right
Reason, the slots move to the node where the demand is, and a SIGKILLed node's slots come back
once it is declared dead.

The function sleeps and returns when its handler started and ended; the overlap of those
intervals among the calls that ran is the concurrency the cluster really admitted (a handler
runs inside its invocation's admission)."""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import support
from conftest import DEAD_AFTER, HEARTBEAT, now, wait_for

LIMIT = 6  # --account-concurrency of every node
FLAGS = ["--account-concurrency", str(LIMIT), "--min-unreserved-concurrency", "2"]

SLEEPER = r'''
import time

def handler(event, context):
    start = time.time()
    time.sleep(float(event.get("sleep", 1.0)))
    return {"start": start, "end": time.time()}
'''


def make_sleeper(node) -> str:
    name = support.unique("sleeper")
    lam = node.client("lambda")
    support.create_function(lam, name, zip_bytes=support.make_zip({"lambda_function.py": SLEEPER}),
                            Handler="lambda_function.handler", Timeout=30)
    return name


def invoke(node, name: str, sleep: float = 1.0) -> tuple[int, dict]:
    """One synchronous Invoke through `node`: (status, parsed body)."""
    req = urllib.request.Request(f"{node.url}/2015-03-31/functions/{name}/invocations",
                                 data=json.dumps({"sleep": sleep}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
        return 0, {"error": str(e)}  # the node was killed


def burst(targets: list, name: str, sleep: float = 1.0) -> list[tuple[int, dict]]:
    """Invokes once per entry of `targets` (a node each), all at once."""
    with cf.ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(lambda n: invoke(n, name, sleep), targets))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                   key=lambda x: (x[0], x[1]))
    running = most = 0
    for _, d in edges:
        running += d
        most = max(most, running)
    return most


def check(results, limit: int, reason: str, some: bool = True) -> tuple[int, int]:
    """Asserts the admitted calls never overlapped beyond `limit` and every refusal is a 429
    with `reason`; returns (ran, throttled)."""
    ran = [(b["start"], b["end"]) for s, b in results if s == 200]
    refused = [b for s, b in results if s != 200]
    for s, b in results:
        if s != 200:
            assert s == 429, (s, b)
            assert b.get("Type") == "User" and b.get("Reason") == reason, b
    assert ran or not some, results
    assert max_overlap(ran) <= limit, f"{max_overlap(ran)} ran at once, limit {limit}"
    return len(ran), len(refused)


def granted(node, scope: str) -> int:
    """The slots `node` holds in `scope`, from its /metrics."""
    want = f'kindling_concurrency_granted_slots{{scope="{scope}"}} '
    for line in node.metrics().splitlines():
        if line.startswith(want):
            return int(float(line.split()[-1]))
    return 0


def until_one_node_gets(node, name: str, want: int, limit: int, reason: str,
                        timeout: float) -> float:
    """Bursts of `limit + 2` calls on `node` alone until one runs at least `want` of them;
    returns when (monotonic)."""
    deadline = now() + timeout
    while True:
        ran, _ = check(burst([node] * (limit + 2), name), limit, reason, some=False)
        if ran >= want:
            return now()
        assert now() < deadline, f"{node.url} never ran {want} at once (last burst: {ran})"
        time.sleep(HEARTBEAT)


def test_the_account_limit_holds_across_nodes_and_follows_the_demand(start_node):
    nodes = [start_node(extra=FLAGS) for _ in range(3)]
    name = make_sleeper(nodes[0])
    reason = "ConcurrentInvocationLimitExceeded"

    # 7 calls per node at once: 21 against a limit of 6 for the whole cluster.
    results = burst(nodes * 7, name)
    ran, refused = check(results, LIMIT, reason)
    assert refused >= 21 - 2 * LIMIT, (ran, refused)
    total = sum(granted(n, "unreserved") for n in nodes)
    assert total <= LIMIT, total
    print(f"21 calls over 3 nodes, limit {LIMIT}: {ran} ran (at most "
          f"{max_overlap([(b['start'], b['end']) for s, b in results if s == 200])} at once), "
          f"{refused} got 429; grants now {[granted(n, 'unreserved') for n in nodes]}")

    # All demand on one node: it gets (nearly) the whole limit. A function of its own, warm
    # nowhere else: the burst's function has idle environments on the other nodes, and
    # synchronous invokes that find none idle here would be forwarded to them (routing).
    name = make_sleeper(nodes[1])
    started = now()
    until_one_node_gets(nodes[1], name, LIMIT - 1, LIMIT, reason, timeout=60)
    print(f"node 1 ran {LIMIT - 1}+ at once {now() - started:.1f}s after its demand began; "
          f"grants {[granted(n, 'unreserved') for n in nodes]}")
    assert sum(granted(n, "unreserved") for n in nodes) <= LIMIT

    # Node 1 dies while it holds (nearly) every slot: they come back after dead-after.
    stop = threading.Event()

    def keep_busy():
        while not stop.is_set() and invoke(nodes[1], name, 2.0)[0] != 0:
            time.sleep(0.05)
    busy = [threading.Thread(target=keep_busy) for _ in range(LIMIT + 2)]
    for t in busy:
        t.start()
    try:
        wait_for(lambda: granted(nodes[1], "unreserved") >= LIMIT - 1, timeout=30,
                 interval=0.1, what="node 1 to hold the slots")
        nodes[1].srv.kill()
        killed = now()
    finally:
        stop.set()
        for t in busy:
            t.join(timeout=60)
    got = until_one_node_gets(nodes[2], name, LIMIT - 1, LIMIT, reason,
                              timeout=DEAD_AFTER + 60)
    print(f"node 2 ran {LIMIT - 1}+ at once {got - killed:.1f}s after node 1 was killed")
    assert got - killed >= DEAD_AFTER * 0.8, \
        f"node 2 ran {LIMIT - 1} at once {got - killed:.1f}s after the kill: before node 1 was dead"
    assert granted(nodes[0], "unreserved") + granted(nodes[2], "unreserved") <= LIMIT


def test_reserved_concurrency_holds_across_nodes(start_node):
    nodes = [start_node(extra=FLAGS) for _ in range(3)]
    name = make_sleeper(nodes[0])
    reserved = 3
    nodes[1].client("lambda").put_function_concurrency(FunctionName=name,
                                                       ReservedConcurrentExecutions=reserved)
    reason = "ReservedFunctionConcurrentInvocationLimitExceeded"
    scope = f"function:{name}"
    # (The write returned after every node dropped its cached targets.)
    ran, refused = check(burst(nodes * 4, name), reserved, reason)
    assert refused >= 12 - 2 * reserved, (ran, refused)
    assert sum(granted(n, scope) for n in nodes) <= reserved

    # All demand on node 0: it gets the whole reservation.
    until_one_node_gets(nodes[0], name, reserved, reserved, reason, timeout=60)
    assert sum(granted(n, scope) for n in nodes) <= reserved
    # Another function meanwhile still has the unreserved pool (6 - 3 reserved).
    other = make_sleeper(nodes[2])
    check(burst(nodes * 2, other, sleep=0.2), LIMIT - reserved,
          "ConcurrentInvocationLimitExceeded")
