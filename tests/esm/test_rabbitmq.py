"""RabbitMQ as an event source in the Amazon MQ shape: Kindling reads a broker named with
`--mq-broker`, `pika` publishes to the local RabbitMQ (127.0.0.1:5672, guest/guest). Messages
are acknowledged after success, requeued (then `redelivered`) on failure, and dead-lettered
through the queue's dead-letter exchange when they fail again."""

from __future__ import annotations

import base64
import json
import os

import pika
import pytest
from botocore.exceptions import ClientError

import support
from esm_support import clients_for, make_function, unique, wait_for, wait_state

AMQP = os.environ.get("KINDLING_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:local:b-0f3c1a2e-1111-4222-8333-944455566677"

RMQ_HANDLER = r'''
import base64, json, os, urllib.request

def handler(event, context):
    msgs = [m for ms in event["rmqMessagesByQueue"].values() for m in ms]
    datas = [base64.b64decode(m["data"]).decode() for m in msgs]
    req = urllib.request.Request(os.environ["SINK"], method="POST", data=json.dumps(
        {"ids": datas, "failed": [d for d in datas if "poison" in d], "event": event,
         "redelivered": [m["redelivered"] for m in msgs]}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    if any("poison" in d for d in datas):
        raise RuntimeError("poison")
    return {}
'''


@pytest.fixture(scope="module")
def rabbit():
    try:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"RabbitMQ is not reachable at {AMQP} (.ci/run starts it): {e}")
    yield conn.channel()
    conn.close()


@pytest.fixture(scope="module")
def mq_server(server_factory):
    srv = server_factory(extra=["--mq-broker", f"local={AMQP}"])
    yield srv
    support.stop_cleanly(srv)


def queues(rabbit) -> tuple[str, str]:
    name, dlq = unique("jobs"), unique("jobs-dlq")
    rabbit.queue_declare(dlq, auto_delete=False)
    rabbit.queue_declare(name, auto_delete=False, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    return name, dlq


def depth(rabbit, name: str) -> int:
    return rabbit.queue_declare(name, passive=True).method.message_count


def test_validation(mq_server, sink):
    _, lam = clients_for(mq_server.url)
    fn = make_function(lam, sink)
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=BROKER_ARN.replace(
            "broker:local", "broker:other"), Queues=["q"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "--mq-broker" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=BROKER_ARN)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_messages_are_acked_requeued_and_dead_lettered(mq_server, rabbit, sink):
    _, lam = clients_for(mq_server.url)
    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": RMQ_HANDLER}))
    name, dlq = queues(rabbit)
    m = lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=BROKER_ARN, Queues=[name],
                                        BatchSize=10)
    assert m["Queues"] == [name] and m["BatchSize"] == 10
    wait_state(lam, m["UUID"], "Enabled")
    props = pika.BasicProperties(content_type="text/plain", headers={"h": "v", "n": 7},
                                 delivery_mode=2, message_id="mid-1")
    for i in range(5):
        rabbit.basic_publish("", name, f"job-{i}".encode(), props)

    def done():
        return {d for r in sink.get(fn) for d in r["ids"]} >= {f"job-{i}" for i in range(5)}

    wait_for(done, timeout=60, what="5 RabbitMQ messages processed")
    event = sink.get(fn)[0]["event"]
    assert event["eventSource"] == "aws:rmq" and event["eventSourceArn"] == BROKER_ARN
    [(key, msgs)] = event["rmqMessagesByQueue"].items()
    assert key == f"{name}::/"
    first = msgs[0]
    assert first["redelivered"] is False
    assert base64.b64decode(first["data"]).decode().startswith("job-")
    bp = first["basicProperties"]
    assert bp["contentType"] == "text/plain" and bp["deliveryMode"] == 2
    assert bp["messageId"] == "mid-1" and bp["bodySize"] == len("job-0")
    assert bp["headers"]["h"] == {"bytes": list(b"v")} and bp["headers"]["n"] == 7
    wait_for(lambda: depth(rabbit, name) == 0, timeout=20, what="the queue to be acknowledged")

    rabbit.basic_publish("", name, b"poison-1", props)
    wait_for(lambda: depth(rabbit, dlq) == 1, timeout=60, what="the poison message dead-lettered")
    attempts = [r["redelivered"] for r in sink.get(fn) if "poison-1" in r["ids"]]
    assert attempts == [[False], [True]], attempts
    method, _, body = rabbit.basic_get(dlq, auto_ack=True)
    assert body == b"poison-1"
    assert depth(rabbit, name) == 0
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_filter_criteria_match_json_data_and_ack_the_rest(mq_server, rabbit, sink):
    """FilterCriteria patterns see `data` decoded (JSON parsed); messages no pattern matches
    are acknowledged without an invocation (Lambda drops them), not requeued or dead-lettered."""
    _, lam = clients_for(mq_server.url)
    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": RMQ_HANDLER}))
    name, dlq = queues(rabbit)
    m = lam.create_event_source_mapping(
        FunctionName=fn, EventSourceArn=BROKER_ARN, Queues=[name], BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["order"]}})}]})
    wait_state(lam, m["UUID"], "Enabled")
    bodies = [json.dumps({"kind": "order", "n": 1}), json.dumps({"kind": "refund", "n": 2}),
              "plain text order", json.dumps({"kind": "order", "n": 3}), "\xff\xfe"]
    for b in bodies:
        rabbit.basic_publish("", name, b.encode("latin-1") if b == "\xff\xfe" else b.encode())
    wanted = {bodies[0], bodies[3]}
    wait_for(lambda: {d for r in sink.get(fn) for d in r["ids"]} >= wanted, timeout=60,
             what="the two matching messages processed")
    wait_for(lambda: depth(rabbit, name) == 0, timeout=20,
             what="every message acknowledged, matching or not")
    seen = [d for r in sink.get(fn) for d in r["ids"]]
    assert sorted(seen) == sorted(wanted), seen
    assert depth(rabbit, dlq) == 0
    lam.delete_event_source_mapping(UUID=m["UUID"])
