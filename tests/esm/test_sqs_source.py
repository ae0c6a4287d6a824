"""SQS → function through event source mappings: the event's shape, delete on success, the
whole batch back on error, partial batch responses (Powertools' BatchProcessor), redrive to
the dead-letter queue, FIFO order per group, filters, scaling and throttling, disabling."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import support
from esm_support import (drain, make_function, make_queue, map_queue, powertools_files,
                         processed_ids, queue_counts, redrive, send_many, wait_for, wait_state)


def test_event_shape_and_delete_on_success(lam, sqs, sink):
    fn = make_function(lam, sink, env={"FULL": "1"})
    url, arn = make_queue(sqs)
    map_queue(lam, fn, arn)
    sent = sqs.send_message(QueueUrl=url, MessageBody='{"hello": "world"}', MessageAttributes={
        "colour": {"DataType": "String", "StringValue": "blue"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    ids = send_many(sqs, url, [f"m{i}" for i in range(24)])
    wait_for(lambda: set(ids + [sent["MessageId"]]) <= set(processed_ids(sink, fn)), timeout=60,
             what="25 messages to be processed")
    event = next(r["event"] for r in sink.get(fn) if sent["MessageId"] in r["ids"])
    assert set(event) == {"Records"}
    rec = next(r for r in event["Records"] if r["messageId"] == sent["MessageId"])
    assert rec["body"] == '{"hello": "world"}'
    assert rec["md5OfBody"] == hashlib.md5(rec["body"].encode()).hexdigest()
    assert rec["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"] == arn
    assert rec["awsRegion"] == "us-east-1"
    assert rec["receiptHandle"]
    attrs = rec["attributes"]
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
            "ApproximateFirstReceiveTimestamp"} <= set(attrs)
    assert attrs["ApproximateReceiveCount"] == "1"
    assert all(isinstance(v, str) for v in attrs.values())
    assert rec["messageAttributes"]["colour"] == {
        "stringValue": "blue", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    assert rec["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert max(len(r["ids"]) for r in sink.get(fn)) <= 10
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=20, what="the queue to be empty")


POWERTOOLS_HANDLER = r'''
import json, os, urllib.request
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

processor = BatchProcessor(event_type=EventType.SQS)

def record_handler(record):
    if "poison" in record.body:
        raise ValueError("poison message")
    return record.body

def handler(event, context):
    ids = [r["messageId"] for r in event["Records"]]
    failed = [r["messageId"] for r in event["Records"] if "poison" in r["body"]]
    req = urllib.request.Request(os.environ["SINK"], method="POST",
                                 data=json.dumps({"ids": ids, "failed": failed,
                                                  "bodies": [r["body"] for r in event["Records"]]}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
'''


def test_powertools_partial_batch_failures_and_redrive(lam, sqs, sink):
    files = {**powertools_files(), "lambda_function.py": POWERTOOLS_HANDLER}
    fn = make_function(lam, sink, zip_bytes=support.make_zip(files), timeout=5, MemorySize=256)
    # Importing Powertools takes seconds on a loaded machine: two environments are started
    # before the mapping, so that no batch fails to a cold start's Init timeout.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: lam.invoke(FunctionName=fn, Payload=b'{"Records": []}'), range(2)))
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=5)
    redrive(sqs, url, dlq_arn, 3)
    map_queue(lam, fn, arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"],
              ScalingConfig={"MaximumConcurrency": 2})
    bodies = [f"poison-{i}" if i % 7 == 3 else f"good-{i}" for i in range(40)]
    ids = send_many(sqs, url, bodies)
    poison = {i for i, b in zip(ids, bodies) if "poison" in b}
    good = set(ids) - poison
    wait_for(lambda: good <= set(processed_ids(sink, fn)), timeout=60,
             what="the good messages to be processed")
    # The reported items came back (after the visibility timeout) and, received 3 times, moved to
    # the dead-letter queue; the good ones were deleted after their first success.
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= len(poison), timeout=90,
             what="the poison messages in the DLQ")
    dead = drain(sqs, dlq_url)
    assert {m["MessageId"] for m in dead} == poison
    assert all(m["Body"].startswith("poison") for m in dead)
    seen = defaultdict(int)
    for r in sink.get(fn):
        for i in r["ids"]:
            seen[i] += 1
    assert all(seen[i] == 1 for i in good), "a good message was processed twice"
    assert all(seen[i] == 3 for i in poison), {i: seen[i] for i in poison}
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=20, what="the source queue to be empty")


def test_function_error_returns_the_whole_batch(lam, sqs, sink):
    fn = make_function(lam, sink, env={"MODE": "raise"})
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=3)
    redrive(sqs, url, dlq_arn, 2)
    map_queue(lam, fn, arn, BatchSize=1)
    ids = send_many(sqs, url, ["good-1", "poison-1", "good-2"])
    wait_for(lambda: {ids[0], ids[2]} <= set(processed_ids(sink, fn)), timeout=60,
             what="good messages processed")
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= 1, timeout=60, what="the DLQ to fill")
    dead = drain(sqs, dlq_url)
    assert [m["MessageId"] for m in dead] == [ids[1]]
    assert dead[0]["Attributes"]["DeadLetterQueueSourceArn"] == arn
    attempts = sum(1 for r in sink.get(fn) if ids[1] in r["ids"])
    assert attempts == 2


FIFO_HANDLER = r'''
import json, os, urllib.request

def handler(event, context):
    rows = [[r["attributes"]["MessageGroupId"], int(r["body"].split(":")[1]),
             r["attributes"]["SequenceNumber"]]
            for r in event["Records"]]
    req = urllib.request.Request(os.environ["SINK"], method="POST",
                                 data=json.dumps({"ids": [r["messageId"] for r in event["Records"]],
                                                  "failed": [], "rows": rows}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    return {}
'''


def test_fifo_order_per_group(lam, sqs, sink):
    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": FIFO_HANDLER}))
    url, arn = make_queue(sqs, support.unique("fifo") + ".fifo", ContentBasedDeduplication="true")
    for n in range(30):
        entries = [{"Id": g, "MessageBody": f"{g}:{n}", "MessageGroupId": g}
                   for g in ("a", "b", "c")]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    map_queue(lam, fn, arn, BatchSize=5, ScalingConfig={"MaximumConcurrency": 3})
    wait_for(lambda: sum(len(r["rows"]) for r in sink.get(fn)) >= 90, timeout=90,
             what="90 FIFO messages")
    order = defaultdict(list)
    for r in sink.get(fn):
        for group, n, _seq in r["rows"]:
            order[group].append(n)
    for group in ("a", "b", "c"):
        assert order[group] == list(range(30)), (group, order[group])


def test_filters_drop_unmatched_messages(lam, sqs, sink):
    fn = make_function(lam, sink)
    url, arn = make_queue(sqs)
    map_queue(lam, fn, arn, FilterCriteria={"Filters": [
        {"Pattern": json.dumps({"body": {"kind": ["keep"], "n": [{"numeric": [">", 5]}]}})},
        {"Pattern": json.dumps({"body": {"kind": [{"prefix": "vip"}]}})}]})
    bodies = [json.dumps({"kind": "keep", "n": 10}), json.dumps({"kind": "keep", "n": 1}),
              json.dumps({"kind": "vip-gold"}), json.dumps({"kind": "other"}), "not json"]
    ids = send_many(sqs, url, bodies)
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=30,
             what="every message to leave the queue")
    time.sleep(0.5)
    assert sorted(processed_ids(sink, fn)) == sorted([ids[0], ids[2]])


def test_scaling_and_throttling_lose_nothing(lam, sqs, sink):
    # Up to 4 pollers on a slow function; its reserved concurrency of 2 throttles the others,
    # whose batches go back to the queue and are processed later.
    fn = make_function(lam, sink, env={"SLEEP": "0.3"})
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=2)
    url, arn = make_queue(sqs)
    ids = send_many(sqs, url, [f"m{i}" for i in range(200)])
    map_queue(lam, fn, arn, BatchSize=2, ScalingConfig={"MaximumConcurrency": 4})
    wait_for(lambda: set(ids) <= set(processed_ids(sink, fn)), timeout=120,
             what="200 messages through a throttled function")
    spans = sorted((r["start"], r["end"]) for r in sink.get(fn))
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap == 2, f"concurrency seen: {overlap}"
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=20, what="the queue to be empty")


def test_disabled_mapping_stops_polling(lam, sqs, sink):
    fn = make_function(lam, sink)
    url, arn = make_queue(sqs)
    uuid_ = map_queue(lam, fn, arn)
    lam.update_event_source_mapping(UUID=uuid_, Enabled=False)
    wait_state(lam, uuid_, "Disabled")
    ids = send_many(sqs, url, ["a", "b", "c"])
    time.sleep(3)
    assert queue_counts(sqs, url) == (3, 0)
    assert processed_ids(sink, fn) == []
    lam.update_event_source_mapping(UUID=uuid_, Enabled=True)
    wait_for(lambda: set(ids) <= set(processed_ids(sink, fn)), timeout=60,
             what="messages processed once enabled")
