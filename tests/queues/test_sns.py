"""SNS through boto3: topics, subscriptions, filter policies, fan-out to SQS (envelope and
raw), to a Lambda function and to a loopback HTTP endpoint."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

import support
from qsupport import ACCOUNT, receive_all, unique, wait_for


def queue_with_arn(sqs, name=None, **attrs):
    kwargs = {"QueueName": name or unique()}
    if attrs:
        kwargs["Attributes"] = attrs
    url = sqs.create_queue(**kwargs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def error(e) -> dict:
    return e.value.response["Error"]


def test_topics_crud_attributes_and_tags(sns):
    name = unique("t")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Hello"},
                           Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:{ACCOUNT}:{name}"
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Hello"})["TopicArn"] == arn
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name=name, Attributes={"DisplayName": "Other"})
    assert error(e)["Code"] == "InvalidParameter"
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["DisplayName"] == "Hello"
    assert attrs["SubscriptionsConfirmed"] == "0" and attrs["Owner"] == ACCOUNT
    assert json.loads(attrs["Policy"])["Statement"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="New")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "New"
    arns = [t["TopicArn"] for p in sns.get_paginator("list_topics").paginate() for t in p["Topics"]]
    assert arn in arns
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn=arn)
    assert error(e)["Code"] == "NotFound"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name="bad name")
    assert error(e)["Code"] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=arn, Message="x")
    assert error(e)["Code"] == "NotFound"


def test_fan_out_to_sqs_envelope_and_raw(sns, sqs, endpoint):
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    env_url, env_arn = queue_with_arn(sqs)
    raw_url, raw_arn = queue_with_arn(sqs)
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"]
    assert sub.startswith(topic + ":")
    raw = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn,
                        Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"] == sub
    attrs = sns.get_subscription_attributes(SubscriptionArn=raw)["Attributes"]
    assert attrs["RawMessageDelivery"] == "true" and attrs["Protocol"] == "sqs"
    assert attrs["PendingConfirmation"] == "false"
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert {s["SubscriptionArn"] for s in listed} == {sub, raw}

    msg_id = sns.publish(TopicArn=topic, Message="hello subscribers", Subject="greeting",
                         MessageAttributes={
                             "color": {"DataType": "String", "StringValue": "red"},
                             "n": {"DataType": "Number", "StringValue": "7"},
                             "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}})["MessageId"]
    m = receive_all(sqs, env_url, 1)[0]
    body = json.loads(m["Body"])
    assert body["Type"] == "Notification" and body["MessageId"] == msg_id
    assert body["TopicArn"] == topic and body["Message"] == "hello subscribers"
    assert body["Subject"] == "greeting" and body["SignatureVersion"] == "1"
    assert body["Timestamp"].endswith("Z") and body["Signature"]
    assert body["UnsubscribeURL"].startswith(endpoint) and "SigningCertURL" in body
    assert body["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"},
                                         "n": {"Type": "Number", "Value": "7"},
                                         "b": {"Type": "Binary", "Value": base64.b64encode(b"\x00\xff").decode()}}
    r = receive_all(sqs, raw_url, 1, MessageAttributeNames=["All"])[0]
    assert r["Body"] == "hello subscribers"
    assert r["MessageAttributes"]["color"] == {"StringValue": "red", "DataType": "String"}
    assert r["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\xff"

    # MessageStructure=json: per-protocol text.
    sns.publish(TopicArn=topic, MessageStructure="json",
                Message=json.dumps({"default": "dflt", "sqs": "for queues"}))
    assert json.loads(receive_all(sqs, env_url, 1)[0]["Body"])["Message"] == "for queues"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=topic, MessageStructure="json", Message='{"sqs": "no default"}')
    assert error(e)["Code"] == "InvalidParameter"
    receive_all(sqs, raw_url, 1)

    sns.unsubscribe(SubscriptionArn=raw)
    sns.publish(TopicArn=topic, Message="after unsubscribe")
    assert json.loads(receive_all(sqs, env_url, 1)[0]["Body"])["Message"] == "after unsubscribe"
    assert "Messages" not in sqs.receive_message(QueueUrl=raw_url, WaitTimeSeconds=1)


def test_filter_policies_attribute_and_body_scope(sns, sqs):
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    a_url, a_arn = queue_with_arn(sqs)
    b_url, b_arn = queue_with_arn(sqs)
    policy = {"color": ["red", {"prefix": "bl"}], "size": [{"numeric": [">", 10, "<=", 100]}],
              "region": [{"anything-but": ["eu"]}], "vip": [{"exists": False}],
              "$or": [{"kind": [{"equals-ignore-case": "ORDER"}]}, {"kind": [{"suffix": "-event"}]}]}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=a_arn,
                  Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"})
    body_sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=b_arn, Attributes={
        "FilterPolicy": json.dumps({"order": {"total": [{"numeric": [">=", 100]}]}}),
        "FilterPolicyScope": "MessageBody", "RawMessageDelivery": "true"})["SubscriptionArn"]

    def attrs(**kw):
        out = {}
        for k, v in kw.items():
            kind = "Number" if isinstance(v, int) else "String"
            out[k] = {"DataType": kind, "StringValue": str(v)}
        return out

    cases = [
        ("m1", attrs(color="red", size=50, region="us", kind="order"), True),
        ("m2", attrs(color="blue", size=11, region="ap", kind="click-event"), True),
        ("m3", attrs(color="green", size=50, region="us", kind="order"), False),
        ("m4", attrs(color="red", size=5, region="us", kind="order"), False),
        ("m5", attrs(color="red", size=50, region="eu", kind="order"), False),
        ("m6", attrs(color="red", size=50, region="us", kind="order", vip="y"), False),
        ("m7", attrs(color="red", size=50, region="us", kind="other"), False),
    ]
    for body, a, _ in cases:
        sns.publish(TopicArn=topic, Message=body, MessageAttributes=a)
    want = sorted(b for b, _, ok in cases if ok)
    got = sorted(m["Body"] for m in receive_all(sqs, a_url, len(want)))
    assert got == want
    assert "Messages" not in sqs.receive_message(QueueUrl=a_url, WaitTimeSeconds=1)

    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"total": 150}}))
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"total": 50}}))
    sns.publish(TopicArn=topic, Message="not json")
    got = receive_all(sqs, b_url, 1)
    assert [json.loads(m["Body"])["order"]["total"] for m in got] == [150]
    assert "Messages" not in sqs.receive_message(QueueUrl=b_url, WaitTimeSeconds=1)
    attrs_b = sns.get_subscription_attributes(SubscriptionArn=body_sub)["Attributes"]
    assert attrs_b["FilterPolicyScope"] == "MessageBody"

    with pytest.raises(ClientError) as e:
        sns.set_subscription_attributes(SubscriptionArn=body_sub, AttributeName="FilterPolicy",
                                        AttributeValue='{"a": "not a list"}')
    assert error(e)["Code"] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.set_subscription_attributes(
            SubscriptionArn=body_sub, AttributeName="FilterPolicy",
            AttributeValue=json.dumps({k: ["x"] for k in "abcdef"}))
    assert error(e)["Code"] == "FilterPolicyLimitExceeded"


def test_publish_batch(sns, sqs):
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    url, arn = queue_with_arn(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    r = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "one"}, {"Id": "b", "Message": "two",
                                        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "c", "Message": "three", "Subject": "bad\nsubject"}])
    assert sorted(s["Id"] for s in r["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == [("c", "InvalidParameter", True)]
    assert sorted(m["Body"] for m in receive_all(sqs, url, 2)) == ["one", "two"]
    with pytest.raises(ClientError) as e:
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "x", "Message": "1"}] * 2)
    assert error(e)["Code"] == "BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as e:
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": str(i), "Message": "m"} for i in range(11)])
    assert error(e)["Code"] == "TooManyEntriesInBatchRequest"


def test_fifo_topic_to_fifo_queue(sns, sqs):
    topic = sns.create_topic(Name=unique("t") + ".fifo", Attributes={
        "FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    url, arn = queue_with_arn(sqs, unique() + ".fifo", FifoQueue="true")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    seqs = [sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g")["SequenceNumber"]
            for i in range(3)]
    assert seqs == sorted(seqs, key=int)
    dup = sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g")
    got = receive_all(sqs, url, 3, AttributeNames=["All"])
    assert [m["Body"] for m in got] == ["m0", "m1", "m2"]
    assert got[0]["Attributes"]["MessageGroupId"] == "g"
    assert dup["SequenceNumber"] == seqs[0]
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=topic, Message="x")
    assert error(e)["Code"] == "InvalidParameter"


class _Endpoint(http.server.BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.received.append(({k.lower(): v for k, v in self.headers.items()}, body.decode()))
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(500)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_subscriber_confirmation_notifications_and_retries(sns):
    handler = type("Handler", (_Endpoint,), {"received": [], "fail_first": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        topic = sns.create_topic(Name=unique("t"))["TopicArn"]
        assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == \
            "pending confirmation"
        wait_for(lambda: handler.received, what="SubscriptionConfirmation POST")
        headers, body = handler.received[0]
        confirmation = json.loads(body)
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == topic
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert subs[0]["SubscriptionArn"] == "PendingConfirmation"
        # Confirm the way endpoints do: GET the SubscribeURL.
        with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=10) as r:
            assert r.status == 200 and b"SubscriptionArn" in r.read()
        sub_arn = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
        assert sub_arn.startswith(topic + ":")
        attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
        assert attrs["PendingConfirmation"] == "false"

        handler.fail_first = 2
        handler.received.clear()
        msg_id = sns.publish(TopicArn=topic, Message="ping", Subject="s")["MessageId"]
        wait_for(lambda: len(handler.received) >= 3, timeout=20, what="delivery after two 500s")
        headers, body = handler.received[-1]
        note = json.loads(body)
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert headers["x-amz-sns-message-id"] == msg_id
        assert headers["x-amz-sns-topic-arn"] == topic
        assert headers["x-amz-sns-subscription-arn"] == sub_arn
        assert headers["content-type"].startswith("text/plain")
        assert note["Message"] == "ping" and note["Subject"] == "s" and note["MessageId"] == msg_id
    finally:
        httpd.shutdown()


class _Hanging:
    """An endpoint that accepts connections, reads the requests and never answers."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.paths: list[tuple[str, bytes]] = []  # (request path, body) of each request
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.requests.append(body)
            self.paths.append((head.split(b"\r\n")[0].split()[1].decode(), body))
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _fast_endpoint():
    """An HTTP endpoint that answers every POST at once, recording it: (handler, server)."""
    handler = type("Handler", (_Endpoint,), {"received": [], "fail_first": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return handler, httpd


def _all_arrive(handler, n: int, start: float, within: float) -> None:
    """The fast endpoint received exactly the notifications m0..m<n-1>, all within `within`
    seconds of `start` (when the first was published)."""
    wait_for(lambda: len(handler.received) >= n, timeout=within, interval=0.02,
             what="every message at the fast endpoint")
    elapsed = time.monotonic() - start
    assert sorted(json.loads(b)["Message"] for _, b in handler.received) == \
        sorted(f"m{i}" for i in range(n))
    assert elapsed < within, elapsed


def test_a_hanging_http_subscriber_does_not_delay_the_others(sns):
    # One endpoint accepts and never answers (each POST waits for the 15 s timeout), another
    # answers at once: the fast one gets every message while the hanging ones are pending.
    hanging = _Hanging()
    handler, httpd = _fast_endpoint()
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    try:
        for url, got in [(f"http://127.0.0.1:{hanging.port}/slow", lambda: hanging.requests),
                         (f"http://127.0.0.1:{httpd.server_address[1]}/fast",
                          lambda: [r[1].encode() for r in handler.received])]:
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
            wait_for(got, what=f"SubscriptionConfirmation to {url}")
            token = json.loads(got()[0])["Token"]
            sns.confirm_subscription(TopicArn=topic, Token=token)
        handler.received.clear()
        n = 40
        start = time.monotonic()
        for i in range(n):
            sns.publish(TopicArn=topic, Message=f"m{i}")
        _all_arrive(handler, n, start, within=3)
        # The hanging endpoint got notifications too (and answered none of them).
        assert any(json.loads(b)["Type"] == "Notification" for b in hanging.requests)
    finally:
        sns.delete_topic(TopicArn=topic)
        httpd.shutdown()
        hanging.close()


def _hanging_backlogs_and_a_fast_endpoint(sns, n_hanging: int):
    """`n_hanging` subscriptions whose endpoint never answers, each with a backlog of 30
    notifications, published before 40 for a subscription whose endpoint answers at once: the
    fast one gets all 40 within 4 s (never waiting for the hanging POSTs' 15 s timeout), and
    each hanging one gets notifications, at most 16 at once."""
    hanging = _Hanging()
    handler, httpd = _fast_endpoint()
    slow_topics = [sns.create_topic(Name=unique("slow"))["TopicArn"] for _ in range(n_hanging)]
    fast_topic = sns.create_topic(Name=unique("fast"))["TopicArn"]

    def confirmation(topic):
        for body in list(hanging.requests):
            msg = json.loads(body)
            if msg["Type"] == "SubscriptionConfirmation" and msg["TopicArn"] == topic:
                return msg
        return None

    try:
        for i, topic in enumerate(slow_topics):
            sns.subscribe(TopicArn=topic, Protocol="http",
                          Endpoint=f"http://127.0.0.1:{hanging.port}/slow{i}")
            token = wait_for(lambda: confirmation(topic),
                             what=f"SubscriptionConfirmation for {topic}")["Token"]
            sns.confirm_subscription(TopicArn=topic, Token=token)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/fast"
        sns.subscribe(TopicArn=fast_topic, Protocol="http", Endpoint=url)
        wait_for(lambda: handler.received, what=f"SubscriptionConfirmation to {url}")
        token = json.loads(handler.received[0][1])["Token"]
        sns.confirm_subscription(TopicArn=fast_topic, Token=token)
        handler.received.clear()
        backlog_start = time.monotonic()
        for topic in slow_topics:
            for k in range(0, 30, 10):
                sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
                    {"Id": f"e{j}", "Message": f"backlog{j}"} for j in range(k, k + 10)])
        n = 40
        start = time.monotonic()
        for k in range(0, n, 10):
            sns.publish_batch(TopicArn=fast_topic, PublishBatchRequestEntries=[
                {"Id": f"e{j}", "Message": f"m{j}"} for j in range(k, k + 10)])
        _all_arrive(handler, n, start, within=4)
        # Every hanging endpoint got notifications too, never more than 16 at once (none of
        # their POSTs has timed out yet: no retry is counted).
        assert time.monotonic() - backlog_start < 14
        notifications = {f"/slow{i}": 0 for i in range(len(slow_topics))}

        def counted():
            for c in notifications:
                notifications[c] = 0
            for path, body in list(hanging.paths):
                if json.loads(body)["Type"] == "Notification":
                    notifications[path] += 1
            return all(c >= 1 for c in notifications.values())

        wait_for(counted, timeout=5, what="a notification at every hanging endpoint")
        assert all(1 <= c <= 16 for c in notifications.values()), notifications
    finally:
        for topic in [*slow_topics, fast_topic]:
            sns.delete_topic(TopicArn=topic)
        httpd.shutdown()
        hanging.close()


def test_many_hanging_http_subscribers_with_backlogs_do_not_take_every_slot(sns):
    # 14 x 16 = 224 < 256: this held with a fixed 16 per subscription. (Were a subscription
    # below 16 in flight handed a whole fetch, the hanging ones would take about 20 each,
    # every slot, for the 15 s timeout.)
    _hanging_backlogs_and_a_fast_endpoint(sns, 14)


def test_more_hanging_http_subscribers_than_slots_allow_do_not_starve_a_healthy_one(sns):
    # 40 x 16 = 640 > 256: with a fixed 16 per subscription the hanging ones took every slot
    # and the fast endpoint waited for their 15 s timeouts. A subscription starts with a
    # small window (it grows with POSTs answered), and the last slots are kept for
    # subscriptions with nothing in flight.
    _hanging_backlogs_and_a_fast_endpoint(sns, 40)


def test_lambda_subscriber_gets_the_sns_event(sns, sqs, lam):
    # The function's OnSuccess destination (an SQS queue) shows the event it received.
    out_url, out_arn = queue_with_arn(sqs)
    fn = support.create_function(lam, unique("fn"), zip_bytes=support.make_zip({
        "lambda_function.py": "def handler(event, context):\n"
                              "    return {'got': event['Records'][0]['Sns']['Message']}\n"}))
    lam.put_function_event_invoke_config(FunctionName=fn.name, DestinationConfig={
        "OnSuccess": {"Destination": out_arn}})
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn.resp["FunctionArn"])["SubscriptionArn"]
    msg_id = sns.publish(TopicArn=topic, Message="to the function",
                         MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})["MessageId"]
    record = json.loads(receive_all(sqs, out_url, 1, timeout=60)[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == {"got": "to the function"}
    event = record["requestPayload"]["Records"][0]
    assert event["EventSource"] == "aws:sns" and event["EventVersion"] == "1.0"
    assert event["EventSubscriptionArn"] == sub
    s = event["Sns"]
    assert s["Type"] == "Notification" and s["MessageId"] == msg_id and s["TopicArn"] == topic
    assert s["Subject"] is None and s["Message"] == "to the function"
    assert "SigningCertUrl" in s and "UnsubscribeUrl" in s
    assert s["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}


def test_subscription_errors(sns):
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    for protocol, endpoint in [("sqs", "not-an-arn"), ("lambda", "nope"), ("http", "https://x"),
                               ("email", "a@example.com")]:
        with pytest.raises(ClientError) as e:
            sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
        assert error(e)["Code"] == "InvalidParameter", protocol
    with pytest.raises(ClientError) as e:
        sns.confirm_subscription(TopicArn=topic, Token="bogus")
    assert error(e)["Code"] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.get_subscription_attributes(SubscriptionArn=topic + ":00000000-0000-0000-0000-000000000000")
    assert error(e)["Code"] == "NotFound"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=topic, Message="x" * (256 * 1024 + 1))
    assert error(e)["Code"] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=topic, Message="x", MessageAttributes={
            "n": {"DataType": "Number", "StringValue": "abc"}})
    assert error(e)["Code"] == "ParameterValueInvalid"


def test_https_subscriber_on_the_loopback(sns, tmp_path):
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    handler = type("Handler", (_Endpoint,), {"received": [], "fail_first": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}/secure"
        topic = sns.create_topic(Name=unique("t"))["TopicArn"]
        pending = sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url,
                                ReturnSubscriptionArn=True)["SubscriptionArn"]
        assert pending.startswith(topic + ":")
        wait_for(lambda: handler.received, what="SubscriptionConfirmation over https")
        token = json.loads(handler.received[0][1])["Token"]
        assert sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"] == pending
        handler.received.clear()
        sns.publish(TopicArn=topic, Message="over tls")
        wait_for(lambda: handler.received, what="Notification over https")
        assert json.loads(handler.received[0][1])["Message"] == "over tls"
    finally:
        httpd.shutdown()


def test_undeliverable_sqs_messages_go_to_the_subscription_dlq(sns, sqs):
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    dlq_url, dlq_arn = queue_with_arn(sqs)
    missing = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{unique('missing')}"
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=missing, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn}
    sns.publish(TopicArn=topic, Message="nowhere to go")
    body = json.loads(receive_all(sqs, dlq_url, 1)[0]["Body"])
    assert body["Message"] == "nowhere to go" and body["TopicArn"] == topic
