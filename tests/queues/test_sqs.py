"""SQS through boto3 (AWS JSON 1.0 with query-compatible errors)."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from botocore.exceptions import ClientError

from qsupport import ACCOUNT, md5_attributes, md5_body, receive_all, unique


def make_queue(sqs, name=None, **attrs) -> str:
    kwargs = {"QueueName": name or unique()}
    if attrs:
        kwargs["Attributes"] = {k: str(v) for k, v in attrs.items()}
    return sqs.create_queue(**kwargs)["QueueUrl"]


def arn_of(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def error(exc: pytest.ExceptionInfo) -> dict:
    return exc.value.response["Error"]


def test_queue_urls_use_the_request_host(sqs, endpoint):
    name = unique()
    url = make_queue(sqs, name)
    assert url == f"{endpoint}/{ACCOUNT}/{name}"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    # Any host and scheme: the last two path segments name the queue.
    other = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}"
    sqs.send_message(QueueUrl=other, MessageBody="x")
    assert receive_all(sqs, url, 1)[0]["Body"] == "x"


def test_create_is_idempotent_and_conflicts_name_the_legacy_code(sqs):
    name = unique()
    url = make_queue(sqs, name, VisibilityTimeout=40)
    assert make_queue(sqs, name, VisibilityTimeout=40) == url
    assert make_queue(sqs, name) == url
    with pytest.raises(ClientError) as e:
        make_queue(sqs, name, VisibilityTimeout=41)
    assert error(e)["Code"] == "QueueAlreadyExists"
    assert error(e)["QueryErrorCode"] == "QueueNameExists"
    assert isinstance(e.value, sqs.exceptions.QueueNameExists)


def test_missing_queue_errors(sqs):
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName=unique())
    assert error(e)["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert isinstance(e.value, sqs.exceptions.QueueDoesNotExist)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"http://x/{ACCOUNT}/{unique()}", MessageBody="a")


def test_attributes_all_and_set(sqs):
    dlq = make_queue(sqs)
    url = make_queue(sqs, DelaySeconds=1, MaximumMessageSize=2048, MessageRetentionPeriod=120,
                     ReceiveMessageWaitTimeSeconds=2, VisibilityTimeout=9,
                     KmsMasterKeyId="alias/aws/sqs", Policy='{"Version":"2012-10-17","Statement":[]}')
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for k, v in {"DelaySeconds": "1", "MaximumMessageSize": "2048", "MessageRetentionPeriod": "120",
                 "ReceiveMessageWaitTimeSeconds": "2", "VisibilityTimeout": "9",
                 "KmsMasterKeyId": "alias/aws/sqs", "ApproximateNumberOfMessages": "0",
                 "ApproximateNumberOfMessagesNotVisible": "0",
                 "ApproximateNumberOfMessagesDelayed": "0"}.items():
        assert attrs[k] == v, k
    assert attrs["QueueArn"].startswith("arn:aws:sqs:us-east-1:000000000000:")
    assert int(attrs["CreatedTimestamp"]) > 1_600_000_000
    assert int(attrs["LastModifiedTimestamp"]) >= int(attrs["CreatedTimestamp"])
    assert "Policy" in attrs
    policy = f'{{"deadLetterTargetArn":"{arn_of(sqs, dlq)}","maxReceiveCount":3}}'
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy,
                                                       "VisibilityTimeout": "12"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"])
    assert got["Attributes"]["VisibilityTimeout"] == "12"
    assert '"maxReceiveCount":3' in got["Attributes"]["RedrivePolicy"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert error(e)["Code"] == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Bogus": "1"})
    assert error(e)["Code"] == "InvalidAttributeName"
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nope"])
    assert error(e)["Code"] == "InvalidAttributeName"


def test_counts_visible_in_flight_and_delayed(sqs):
    url = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="taken")
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    assert len(r["Messages"]) == 1
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("1", "1", "1")


def test_send_receive_md5s_and_attributes(sqs):
    url = make_queue(sqs)
    attrs = {
        "color": {"DataType": "String", "StringValue": "red"},
        "size": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"},
        "app.trace": {"DataType": "String.custom", "StringValue": "t-1"},
    }
    body = "héllo wörld ✓"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs,
                            MessageSystemAttributes={"AWSTraceHeader": {
                                "DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}})
    assert sent["MD5OfMessageBody"] == md5_body(body)
    assert sent["MD5OfMessageAttributes"] == md5_attributes(attrs)
    assert sent["MD5OfMessageSystemAttributes"] == "5f48eef650c1d0207456969c85af2fdd"
    r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                            MessageSystemAttributeNames=["All"])
    m = r["Messages"][0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body and m["MD5OfBody"] == md5_body(body)
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01binary"
    assert m["MD5OfMessageAttributes"] == md5_attributes(attrs)
    sysattrs = m["Attributes"]
    assert sysattrs["ApproximateReceiveCount"] == "1"
    assert sysattrs["SenderId"] == "test"
    assert abs(int(sysattrs["SentTimestamp"]) - time.time() * 1000) < 60_000
    assert int(sysattrs["ApproximateFirstReceiveTimestamp"]) >= int(sysattrs["SentTimestamp"])
    assert sysattrs["AWSTraceHeader"].startswith("Root=1-5759e988")
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    # Selected attributes only; the MD5 covers what is returned.
    r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["app.*", "color"],
                            AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)
    m = r["Messages"][0]
    assert set(m["MessageAttributes"]) == {"app.trace", "color"}
    assert m["MD5OfMessageAttributes"] == md5_attributes(
        {k: attrs[k] for k in ("app.trace", "color")})
    assert m["Attributes"] == {"ApproximateReceiveCount": "2"}
    r = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert "MessageAttributes" not in r["Messages"][0]


def test_visibility_timeout_and_change(sqs):
    url = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="v")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    time.sleep(1.3)
    second = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30,
                                 AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # A stale receipt deletes nothing (and succeeds).
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5)
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert error(e)["Code"] == "ReceiptHandleIsInvalid"


def test_message_not_inflight(sqs):
    url = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    m = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    time.sleep(1.2)
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=5)
    assert error(e)["Code"] == "AWS.SimpleQueueService.MessageNotInflight"


def test_long_polling_waits_and_wakes(sqs):
    url = make_queue(sqs)
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
    waited = time.monotonic() - t0
    assert 1.9 <= waited < 4, waited
    threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="wake")).start()
    t0 = time.monotonic()
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    took = time.monotonic() - t0
    assert r["Messages"][0]["Body"] == "wake"
    assert 0.4 <= took < 2.5, took
    # A delayed message wakes a waiting receiver when it becomes visible.
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)
    t0 = time.monotonic()
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    assert r["Messages"][0]["Body"] == "delayed"
    assert 0.8 <= time.monotonic() - t0 < 3
    # The queue's default wait applies when the request names none.
    slow = make_queue(sqs, ReceiveMessageWaitTimeSeconds=1)
    t0 = time.monotonic()
    sqs.receive_message(QueueUrl=slow)
    assert time.monotonic() - t0 >= 0.9


def test_receive_up_to_ten(sqs, sqs_raw):
    url = make_queue(sqs)
    for i in range(15):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert len(r["Messages"]) == 10
    with pytest.raises(ClientError) as e:
        sqs_raw.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs_raw.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert error(e)["Code"] == "InvalidParameterValue"


def test_batches_and_their_errors(sqs, sqs_raw):
    url = make_queue(sqs)
    entries = [{"Id": f"m{i}", "MessageBody": f"b{i}",
                "MessageAttributes": {"i": {"DataType": "Number", "StringValue": str(i)}}}
               for i in range(9)]
    entries.append({"Id": "bad", "MessageBody": "nul\x00char"})
    r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(s["Id"] for s in r["Successful"]) == sorted(f"m{i}" for i in range(9))
    for s in r["Successful"]:
        i = int(s["Id"][1:])
        assert s["MD5OfMessageBody"] == md5_body(f"b{i}")
        assert s["MD5OfMessageAttributes"] == md5_attributes(entries[i]["MessageAttributes"])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == [
        ("bad", "InvalidMessageContents", True)]
    got = receive_all(sqs, url, 9)
    assert sorted(m["Body"] for m in got) == sorted(f"b{i}" for i in range(9))

    for bad, code in [
        ([{"Id": str(i), "MessageBody": "x"} for i in range(11)],
         "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "bad id!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
        ([{"Id": "a", "MessageBody": "x" * 600_000}, {"Id": "b", "MessageBody": "y" * 600_000}],
         "AWS.SimpleQueueService.BatchRequestTooLong"),
    ]:
        with pytest.raises(ClientError) as e:
            sqs_raw.send_message_batch(QueueUrl=url, Entries=bad)
        assert error(e)["Code"] == code

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"},
                                                  {"Id": "b", "MessageBody": "2"}])
    msgs = receive_all(sqs, url, 0) or sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                           WaitTimeSeconds=1)["Messages"]
    handles = [{"Id": f"h{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    handles.append({"Id": "junk", "ReceiptHandle": "junk"})
    r = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[dict(h, VisibilityTimeout=5) for h in handles])
    assert {f["Id"]: f["Code"] for f in r["Failed"]} == {"junk": "ReceiptHandleIsInvalid"}
    r = sqs.delete_message_batch(QueueUrl=url, Entries=handles)
    assert len(r["Successful"]) == len(msgs)
    assert [f["Id"] for f in r["Failed"]] == ["junk"]


def test_message_limits(sqs, sqs_raw):
    url = make_queue(sqs)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * (1024 * 1024 + 1))
    assert error(e)["Code"] == "InvalidParameterValue"
    sqs.send_message(QueueUrl=url, MessageBody="x" * (1024 * 1024 - 20),
                     MessageAttributes={"a": {"DataType": "String", "StringValue": "1234"}})
    small = make_queue(sqs, MaximumMessageSize=1024)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=small, MessageBody="x" * 1000,
                         MessageAttributes={"attr": {"DataType": "String", "StringValue": "y" * 100}})
    assert error(e)["Code"] == "InvalidParameterValue"
    too_many = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    for attrs in [too_many,
                  {"AWS.reserved": {"DataType": "String", "StringValue": "v"}},
                  {"a..b": {"DataType": "String", "StringValue": "v"}},
                  {"n": {"DataType": "Number", "StringValue": "not-a-number"}},
                  {"t": {"DataType": "Bogus", "StringValue": "v"}},
                  {"e": {"DataType": "String", "StringValue": ""}}]:
        with pytest.raises(ClientError) as e:
            sqs_raw.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
        assert error(e)["Code"] == "InvalidParameterValue", attrs
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x08 char")
    assert error(e)["Code"] == "InvalidMessageContents"
    with pytest.raises(ClientError) as e:
        sqs_raw.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs_raw.send_message(QueueUrl=url, MessageBody="")
    assert error(e)["Code"] == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="bad name!")
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="x" * 81)
    assert error(e)["Code"] == "InvalidParameterValue"


def test_delay_seconds_queue_and_message(sqs):
    url = make_queue(sqs, DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="queue-delay")
    sqs.send_message(QueueUrl=url, MessageBody="no-delay", DelaySeconds=0)
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in r["Messages"]] == ["no-delay"]
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)
    assert r["Messages"][0]["Body"] == "queue-delay"


def test_retention_drops_old_messages(sqs):
    url = make_queue(sqs, MessageRetentionPeriod=60)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "59"})
    assert error(e)["Code"] == "InvalidAttributeValue"


def test_purge_and_its_rate_limit(sqs):
    url = make_queue(sqs)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.receive_message(QueueUrl=url)
    sqs.purge_queue(QueueUrl=url)
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"
    with pytest.raises(ClientError) as e:
        sqs.purge_queue(QueueUrl=url)
    assert error(e)["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert isinstance(e.value, sqs.exceptions.PurgeQueueInProgress)


def test_list_queues_prefix_and_pages(sqs):
    prefix = unique("lq")
    urls = sorted(make_queue(sqs, f"{prefix}-{i}") for i in range(5))
    assert sorted(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == urls
    seen, token = [], None
    while True:
        kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        r = sqs.list_queues(**kwargs)
        seen += r["QueueUrls"]
        token = r.get("NextToken")
        if not token:
            break
    assert sorted(seen) == urls
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=unique("none"))
    pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, PaginationConfig={"PageSize": 2})
    assert sorted(u for p in pages for u in p.get("QueueUrls", [])) == urls


def test_delete_queue_and_recreate_too_soon(sqs):
    name = unique()
    url = make_queue(sqs, name)
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)
    with pytest.raises(ClientError) as e:
        make_queue(sqs, name)
    assert error(e)["Code"] == "AWS.SimpleQueueService.QueueDeletedRecently"


def test_tags(sqs):
    url = sqs.create_queue(QueueName=unique(), tags={"team": "a"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "dev", "team": "b"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev", "team": "b"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}


def test_fifo_order_groups_and_blocking(sqs):
    url = make_queue(sqs, unique() + ".fifo", FifoQueue="true")
    seqs = []
    for g, i in [("A", 1), ("A", 2), ("B", 1), ("A", 3)]:
        r = sqs.send_message(QueueUrl=url, MessageBody=f"{g}{i}", MessageGroupId=g,
                             MessageDeduplicationId=f"{g}{i}")
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30,
                            AttributeNames=["All"])
    assert [m["Body"] for m in r["Messages"]] == ["A1", "A2"]
    attrs = r["Messages"][0]["Attributes"]
    assert attrs["MessageGroupId"] == "A" and attrs["MessageDeduplicationId"] == "A1"
    assert int(attrs["SequenceNumber"]) == seqs[0]
    # Group A is blocked while A1/A2 are in flight; B is not.
    r2 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    assert [m["Body"] for m in r2["Messages"]] == ["B1"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    # Returning A2 early does not unblock A while A1 is in flight.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=r["Messages"][1]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=r["Messages"][0]["ReceiptHandle"])
    r3 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in r3["Messages"]] == ["A2", "A3"]


def test_fifo_deduplication(sqs):
    url = make_queue(sqs, unique() + ".fifo", FifoQueue="true")
    a = sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d1")
    b = sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d1")
    assert a["MessageId"] == b["MessageId"] and a["SequenceNumber"] == b["SequenceNumber"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="z")
    assert error(e)["Code"] == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g",
                         MessageDeduplicationId="q", DelaySeconds=2)
    assert error(e)["Code"] == "InvalidParameterValue"
    cbd = make_queue(sqs, unique() + ".fifo", FifoQueue="true", ContentBasedDeduplication="true")
    r = sqs.send_message_batch(QueueUrl=cbd, Entries=[
        {"Id": "1", "MessageBody": "same", "MessageGroupId": "g"},
        {"Id": "2", "MessageBody": "same", "MessageGroupId": "g"},
        {"Id": "3", "MessageBody": "other", "MessageGroupId": "g"}])
    ids = {s["Id"]: s["MessageId"] for s in r["Successful"]}
    assert ids["1"] == ids["2"] != ids["3"]
    got = receive_all(sqs, cbd, 2, timeout=3)
    assert [m["Body"] for m in got] == ["same", "other"]
    # Per-group deduplication scope.
    per_group = make_queue(sqs, unique() + ".fifo", FifoQueue="true",
                           DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    for g in ("a", "b"):
        sqs.send_message(QueueUrl=per_group, MessageBody="x", MessageGroupId=g, MessageDeduplicationId="same")
    assert len(receive_all(sqs, per_group, 2, timeout=3)) == 2
    with pytest.raises(ClientError) as e:
        make_queue(sqs, unique() + ".fifo")
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=make_queue(sqs), MessageBody="x", MessageDeduplicationId="d")
    assert error(e)["Code"] == "InvalidParameterValue"


def test_redrive_to_dead_letter_queue_and_back(sqs):
    dlq = make_queue(sqs)
    dlq_arn = arn_of(sqs, dlq)
    src = make_queue(sqs, RedrivePolicy=f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":2}}')
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison",
                            MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    for _ in range(2):
        m = sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)["Messages"][0]
        assert m["MessageId"] == sent["MessageId"]
    # The third receive moves it (receive count exceeded) instead of returning it.
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    r = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], MessageAttributeNames=["All"],
                            VisibilityTimeout=0)
    m = r["Messages"][0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == "poison"
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(sqs, src)
    assert m["MessageAttributes"]["k"]["StringValue"] == "v"
    task = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    def done():
        results = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return results and results[0]["Status"] == "COMPLETED" and results[0]
    result = wait_completed = None
    from qsupport import wait_for
    result = wait_for(done, what="move task completion")
    assert result["TaskHandle"] == task and result["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=2, AttributeNames=["All"])["Messages"][0]
    assert back["Body"] == "poison" and back["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "DeadLetterQueueSourceArn" not in back["Attributes"]
    assert wait_completed is None
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, src))
    assert error(e)["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={
            "RedrivePolicy": '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":1}'})
    assert error(e)["Code"] == "InvalidParameterValue"


def test_a_move_task_into_its_own_source_moves_each_message_once(sqs):
    """A dead-letter queue moved into itself gets every message straight back: the task moves
    what the queue held when it started, then completes (it used to move the same message
    thousands of times a second, forever)."""
    from qsupport import wait_for
    dlq = make_queue(sqs)
    dlq_arn = arn_of(sqs, dlq)
    make_queue(sqs, RedrivePolicy=f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":1}}')
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    task = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=dlq_arn)["TaskHandle"]

    def done():
        results = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return results and results[0]["Status"] != "RUNNING" and results[0]
    result = wait_for(done, what="move task end")
    assert result["TaskHandle"] == task and result["Status"] == "COMPLETED"
    assert result["ApproximateNumberOfMessagesMoved"] == 2
    bodies = sorted(m["Body"] for m in sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"])
    assert bodies == ["one", "two"]


def test_binary_attribute_round_trip_base64(sqs):
    url = make_queue(sqs)
    data = bytes(range(256))
    sqs.send_message(QueueUrl=url, MessageBody="b",
                     MessageAttributes={"bin": {"DataType": "Binary", "BinaryValue": data}})
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["bin"])["Messages"][0]
    assert m["MessageAttributes"]["bin"]["BinaryValue"] == data
    assert base64.b64encode(data)
