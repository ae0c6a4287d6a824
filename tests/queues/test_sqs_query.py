"""SQS's query protocol (old SDKs): signed form posts to the root and to queue URLs, XML out,
legacy error codes."""

from __future__ import annotations

import requests

from qsupport import ACCOUNT, find, md5_attributes, md5_body, query, text, unique


def test_query_round_trip_on_root_and_queue_path(endpoint, sqs):
    name = unique()
    resp, root = query(endpoint, {"Action": "CreateQueue", "QueueName": name,
                                  "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "7",
                                  "Tag.1.Key": "team", "Tag.1.Value": "q"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-amzn-RequestId"]
    url = text(root, "QueueUrl")
    assert url == f"{endpoint}/{ACCOUNT}/{name}"
    assert text(root, "RequestId")

    attrs = {"color": {"DataType": "String", "StringValue": "blue"},
             "bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}}
    resp, root = query(endpoint, {
        "Action": "SendMessage", "QueueUrl": url, "MessageBody": "q&a <xml>",
        "MessageAttribute.1.Name": "color", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "blue",
        "MessageAttribute.2.Name": "bin", "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": "AQI=",
    })
    assert resp.status_code == 200, resp.text
    assert text(root, "MD5OfMessageBody") == md5_body("q&a <xml>")
    assert text(root, "MD5OfMessageAttributes") == md5_attributes(attrs)
    message_id = text(root, "MessageId")

    # Posted to the queue URL itself, without a QueueUrl parameter (JS v2, Java v1).
    resp, root = query(endpoint, {"Action": "ReceiveMessage", "AttributeName.1": "All",
                                  "MessageAttributeName.1": "All", "MaxNumberOfMessages": "5"},
                       path=f"/{ACCOUNT}/{name}")
    assert resp.status_code == 200, resp.text
    assert [strip_text(m, "MessageId") for m in find(root, "Message")] == [message_id]
    assert text(root, "Body") == "q&a <xml>"
    names = {text(a, "Name"): text(a, "Value") for a in find(root, "Attribute")}
    assert names["ApproximateReceiveCount"] == "1"
    mattrs = {text(a, "Name"): a for a in find(root, "MessageAttribute")}
    assert text(mattrs["color"], "StringValue") == "blue"
    assert text(mattrs["bin"], "BinaryValue") == "AQI="
    handle = text(root, "ReceiptHandle")

    resp, root = query(endpoint, {"Action": "DeleteMessageBatch", "QueueUrl": url,
                                  "DeleteMessageBatchRequestEntry.1.Id": "a",
                                  "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handle,
                                  "DeleteMessageBatchRequestEntry.2.Id": "b",
                                  "DeleteMessageBatchRequestEntry.2.ReceiptHandle": "bogus"})
    assert resp.status_code == 200, resp.text
    assert [text(e, "Id") for e in find(root, "DeleteMessageBatchResultEntry")] == ["a"]
    failed = find(root, "BatchResultErrorEntry")
    assert [(text(e, "Id"), text(e, "Code"), text(e, "SenderFault")) for e in failed] == [
        ("b", "ReceiptHandleIsInvalid", "true")]

    resp, root = query(endpoint, {"Action": "GetQueueAttributes", "QueueUrl": url,
                                  "AttributeName.1": "VisibilityTimeout",
                                  "AttributeName.2": "ApproximateNumberOfMessages"})
    got = {text(a, "Name"): text(a, "Value") for a in find(root, "Attribute")}
    assert got == {"VisibilityTimeout": "7", "ApproximateNumberOfMessages": "0"}
    resp, root = query(endpoint, {"Action": "ListQueueTags", "QueueUrl": url})
    assert {text(t, "Key"): text(t, "Value") for t in find(root, "Tag")} == {"team": "q"}
    resp, root = query(endpoint, {"Action": "ListQueues", "QueueNamePrefix": name})
    assert [e.text for e in find(root, "QueueUrl")] == [url]
    # The JSON client sees the same queue.
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url


def strip_text(el, name):
    return text(el, name)


def test_query_send_batch_and_visibility(endpoint):
    name = unique()
    query(endpoint, {"Action": "CreateQueue", "QueueName": name})
    url = f"{endpoint}/{ACCOUNT}/{name}"
    params = {"Action": "SendMessageBatch", "QueueUrl": url}
    for i in (1, 2):
        params[f"SendMessageBatchRequestEntry.{i}.Id"] = f"e{i}"
        params[f"SendMessageBatchRequestEntry.{i}.MessageBody"] = f"body{i}"
        params[f"SendMessageBatchRequestEntry.{i}.DelaySeconds"] = "0"
    resp, root = query(endpoint, params)
    assert resp.status_code == 200, resp.text
    entries = find(root, "SendMessageBatchResultEntry")
    assert sorted(text(e, "Id") for e in entries) == ["e1", "e2"]
    assert {text(e, "MD5OfMessageBody") for e in entries} == {md5_body("body1"), md5_body("body2")}
    resp, root = query(endpoint, {"Action": "ReceiveMessage", "QueueUrl": url,
                                  "MaxNumberOfMessages": "10", "VisibilityTimeout": "60"})
    handles = [text(m, "ReceiptHandle") for m in find(root, "Message")]
    assert len(handles) == 2
    resp, root = query(endpoint, {"Action": "ChangeMessageVisibility", "QueueUrl": url,
                                  "ReceiptHandle": handles[0], "VisibilityTimeout": "0"})
    assert resp.status_code == 200, resp.text
    assert find(root, "ChangeMessageVisibilityResponse")
    resp, root = query(endpoint, {"Action": "ReceiveMessage", "QueueUrl": url})
    assert len(find(root, "Message")) == 1


def test_query_errors_use_legacy_codes(endpoint):
    resp, root = query(endpoint, {"Action": "GetQueueUrl", "QueueName": unique()})
    assert resp.status_code == 400
    assert text(root, "Code") == "AWS.SimpleQueueService.NonExistentQueue"
    assert text(root, "Type") == "Sender"
    assert text(root, "RequestId")
    name = unique()
    query(endpoint, {"Action": "CreateQueue", "QueueName": name})
    resp, root = query(endpoint, {"Action": "CreateQueue", "QueueName": name,
                                  "Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "5"})
    assert text(root, "Code") == "QueueAlreadyExists"
    resp, root = query(endpoint, {"Action": "SendMessageBatch", "QueueUrl": f"/{ACCOUNT}/{name}"})
    assert text(root, "Code") == "AWS.SimpleQueueService.EmptyBatchRequest"
    resp, root = query(endpoint, {"Action": "NoSuchAction"})
    assert resp.status_code == 400 and text(root, "Code") == "InvalidAction"
    resp, root = query(endpoint, {"Action": "ReceiveMessage", "QueueUrl": f"/{ACCOUNT}/{name}",
                                  "MaxNumberOfMessages": "abc"})
    assert text(root, "Code") == "InvalidParameterValue"


def test_unsigned_form_and_json_on_queue_path(endpoint):
    name = unique()
    resp, root = query(endpoint, {"Action": "CreateQueue", "QueueName": name}, sign=False)
    assert resp.status_code == 200, resp.text
    # JSON posted to the queue URL path without QueueUrl.
    r = requests.post(f"{endpoint}/{ACCOUNT}/{name}",
                      headers={"X-Amz-Target": "AmazonSQS.SendMessage",
                               "Content-Type": "application/x-amz-json-1.0"},
                      data='{"MessageBody": "to the path"}', timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["MD5OfMessageBody"] == md5_body("to the path")
    r = requests.post(endpoint, headers={"X-Amz-Target": "AmazonSQS.SendMessage",
                                         "Content-Type": "application/x-amz-json-1.0"},
                      data="{not json", timeout=30)
    assert r.status_code == 400 and "__type" in r.json()
