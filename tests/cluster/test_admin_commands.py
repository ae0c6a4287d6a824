"""`kindling queue` and `kindling dlq` against a cluster's shared PostgreSQL store
(`--store postgres://...`): they see the asynchronous events and the SQS messages accepted by
any node, and a redrive's events run on whichever node leases them."""

from __future__ import annotations

import json
import subprocess

import esm_support
from conftest import PG, _binary, make_reporter, wait_for


def kindling(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(_binary()), *args], capture_output=True, text=True, timeout=60)


def queue_rows(store: str) -> dict[str, tuple[int, int]]:
    res = kindling("queue", "--store", store)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["FUNCTION", "DEPTH", "IN_FLIGHT", "OLDEST_AGE_S"], res.stdout
    return {cells[0]: (int(cells[1]), int(cells[2]))
            for cells in (line.split() for line in lines[1:])}


def test_queue_and_dlq_commands_read_the_shared_store(nodes, database, sink):
    store = f"{PG}/{database}"
    (sqs_a, lam_a), (sqs_b, lam_b), (sqs_c, _) = (esm_support.clients_for(n.url) for n in nodes)
    # Events accepted by B, still waiting or running (each sleeps 3 s): the command sees them.
    fn = make_reporter(lam_a, sink, sleep=3)
    for i in range(3):
        assert lam_b.invoke(FunctionName=fn, InvocationType="Event",
                            Payload=json.dumps({"n": i}).encode())["StatusCode"] == 202
    depth, in_flight = wait_for(lambda: queue_rows(store).get(fn), timeout=10, interval=0.1,
                                what=f"{fn} in `kindling queue`")
    # DEPTH counts every queued event, IN_FLIGHT those leased to a node.
    assert 1 <= depth <= 3 and in_flight <= depth
    wait_for(lambda: len(sink.get(fn)) == 3, timeout=60, what="the three events to run")
    wait_for(lambda: fn not in queue_rows(store), timeout=10, what="the queue to drain")

    # A message sent through C to a queue made through A: listed without being received.
    url = sqs_a.create_queue(QueueName=esm_support.unique("dlq"))["QueueUrl"]
    name = url.rsplit("/", 1)[1]
    sqs_c.send_message(QueueUrl=url, MessageBody=json.dumps({"redriven": True}))
    res = kindling("dlq", "list", "--store", store, "--queue", name)
    assert res.returncode == 0, res
    listed = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(m["queue"], m["body"]) for m in listed] == [(name, {"redriven": True})]
    # Redriven to the function: it runs on some node with the original event.
    res = kindling("dlq", "redrive", "--store", store, "--queue", name, "--function", fn)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "redrove 1 message(s)"
    ran = wait_for(lambda: [r for r in sink.get(fn) if r["event"] == {"redriven": True}],
                   timeout=60, what="the redriven event to run")
    assert len(ran) == 1
    attrs = sqs_b.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    # A store that cannot be reached: a clear failure, not a hang.
    res = kindling("queue", "--store", "postgres://postgres@127.0.0.1:1/none")
    assert res.returncode != 0 and "PostgreSQL" in res.stderr, res
