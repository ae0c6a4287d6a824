"""Lambda's asynchronous-invocation destinations and dead-letter queues delivered into SQS
queues and SNS topics, read back with receive_message; records of the former built-in
dead-letter store migrated into queues at start-up."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import support
from qsupport import receive_all, unique, wait_for

FAILING = support.make_zip({"lambda_function.py":
                            "def handler(event, context):\n    raise ValueError('boom')\n"})


def queue(sqs):
    url = sqs.create_queue(QueueName=unique())["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_on_failure_destination_and_dead_letter_queue(lam, sqs):
    dlq_url, dlq_arn = queue(sqs)
    dest_url, dest_arn = queue(sqs)
    fn = support.create_function(lam, unique("fn"), zip_bytes=FAILING,
                                 DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(FunctionName=fn.name, MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": dest_arn}})
    resp = lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=b'{"order": 7}')
    request_id = resp["ResponseMetadata"]["RequestId"]

    record = json.loads(receive_all(sqs, dest_url, 1, timeout=60)[0]["Body"])
    assert record["version"] == "1.0"
    ctx = record["requestContext"]
    assert ctx["condition"] == "RetriesExhausted" and ctx["approximateInvokeCount"] == 1
    assert ctx["functionArn"].endswith(f":function:{fn.name}:$LATEST")
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "boom"

    dead = receive_all(sqs, dlq_url, 1, timeout=60, MessageAttributeNames=["All"])[0]
    assert json.loads(dead["Body"]) == {"order": 7}
    attrs = dead["MessageAttributes"]
    assert attrs["RequestID"] == {"StringValue": ctx["requestId"], "DataType": "String"}
    assert attrs["ErrorCode"]["DataType"] == "Number"
    assert "boom" in attrs["ErrorMessage"]["StringValue"]
    assert ctx["requestId"] == request_id or ctx["requestId"]


def test_on_success_destination_to_a_topic(lam, sqs, sns):
    url, arn = queue(sqs)
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    fn = support.create_function(lam, unique("fn"))
    lam.put_function_event_invoke_config(FunctionName=fn.name,
                                         DestinationConfig={"OnSuccess": {"Destination": topic}})
    lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=b'{"hi": 1}')
    note = json.loads(receive_all(sqs, url, 1, timeout=60)[0]["Body"])
    assert note["Type"] == "Notification" and note["TopicArn"] == topic
    record = json.loads(note["Message"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestPayload"] == {"hi": 1}
    assert record["responsePayload"]["event"] == {"hi": 1}


def test_missing_destination_queue_fails_the_delivery(lam, sqs, server):
    name = unique("gone")
    arn = f"arn:aws:sqs:us-east-1:000000000000:{name}"
    fn = support.create_function(lam, unique("fn"), zip_bytes=FAILING)
    lam.put_function_event_invoke_config(FunctionName=fn.name, MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=b"{}")
    wait_for(lambda: name in server.log_path.read_text(errors="replace"), timeout=60,
             what="the failed delivery in the log")
    assert "destination queue does not exist" in server.log_path.read_text(errors="replace")
    # Not delivered late to a queue created afterwards, and the queue was not created.
    assert sqs.list_queues(QueueNamePrefix=name).get("QueueUrls") is None
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)


def test_records_of_the_former_dead_letter_store_move_into_queues(server_factory, tmp_path):
    import boto3
    from botocore.config import Config

    data = tmp_path / "data"
    srv = server_factory(data_dir=data)
    support.stop_cleanly(srv)
    name = unique("old")
    record = {
        "id": str(uuid.uuid4()), "queue": name,
        "target_arn": f"arn:aws:sqs:us-east-1:000000000000:{name}",
        "created_ms": int(time.time() * 1000), "body": {"original": True},
        "attributes": {"RequestID": "r-1", "ErrorCode": "200", "ErrorMessage": "boom"},
        "function_name": "f", "qualifier": None, "request_payload": {"original": True},
    }
    db = sqlite3.connect(data / "state.db")
    db.execute("INSERT INTO dead_letters (id, queue, created_ms, record) VALUES (?, ?, ?, ?)",
               (record["id"], name, record["created_ms"], json.dumps(record)))
    db.commit()
    db.close()
    srv = server_factory(data_dir=data)
    try:
        sqs = boto3.client("sqs", endpoint_url=srv.url, config=Config(retries={"max_attempts": 1}))
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
        assert json.loads(m["Body"]) == {"original": True}
        assert m["MessageAttributes"]["RequestID"]["StringValue"] == "r-1"
        db = sqlite3.connect(data / "state.db")
        assert db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] == 0
        db.close()
    finally:
        support.stop_cleanly(srv)
