"""A SIGKILL of Kindling while a mapping processes 10,000 messages loses none: after the
restart every message has been processed at least once, and the poison messages (failed in
every partial batch response) are in the dead-letter queue and nowhere else."""

from __future__ import annotations

import support
from esm_support import (clients_for, drain, make_function, make_queue, map_queue,
                         processed_ids, queue_counts, redrive, send_many, unique, wait_for)

TOTAL = 10_000
POISON_EVERY = 500


def test_sigkill_while_a_mapping_processes_10000_messages(server_factory, sink, tmp_path):
    data = tmp_path / "data"
    srv = server_factory(data_dir=data)
    sqs, lam = clients_for(srv.url)
    fn = make_function(lam, sink, env={"MODE": "partial"}, timeout=5)
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=5)
    redrive(sqs, url, dlq_arn, 3)
    bodies = [f"poison-{i}" if i % POISON_EVERY == 7 else f"m-{i}" for i in range(TOTAL)]
    ids = send_many(sqs, url, bodies)
    assert len(set(ids)) == TOTAL
    poison = {i for i, b in zip(ids, bodies) if b.startswith("poison")}
    good = set(ids) - poison
    map_queue(lam, fn, arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_for(lambda: len(processed_ids(sink, fn)) >= TOTAL // 4, timeout=300,
             what="a quarter of the messages to be processed")
    srv.kill()  # SIGKILL, mid-stream
    before = set(processed_ids(sink, fn))
    assert len(before) < TOTAL - len(poison), "everything was processed before the kill"

    srv2 = server_factory(data_dir=data)
    sqs, lam = clients_for(srv2.url)
    wait_for(lambda: good <= set(processed_ids(sink, fn)), timeout=600, interval=1,
             what="every good message to be processed after the restart")
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= len(poison), timeout=120, interval=1,
             what="the poison messages in the dead-letter queue")
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=60, interval=1,
             what="the source queue to be empty")
    dead = drain(sqs, dlq_url)
    assert {m["MessageId"] for m in dead} == poison
    assert all(m["Body"].startswith("poison") for m in dead)
    support.stop_cleanly(srv2)
