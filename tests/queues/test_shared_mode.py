"""SQS and SNS behind the edge's gate in shared mode: signatures required and checked, errors in
each service's own format."""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from qsupport import unique


@pytest.fixture(scope="module")
def shared(server_factory, tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text("AKIDSHAREDQUEUES0001 a-long-random-secret\n")
    srv = server_factory(extra=["--shared", "--credentials", str(creds)])
    yield srv
    support.stop_cleanly(srv)


def make(service, url, key="AKIDSHAREDQUEUES0001", secret="a-long-random-secret"):
    return boto3.client(service, endpoint_url=url, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def test_signed_clients_work_and_others_are_refused(shared):
    sqs = make("sqs", shared.url)
    url = sqs.create_queue(QueueName=unique())["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="signed")
    m = sqs.receive_message(QueueUrl=url, AttributeNames=["SenderId"])["Messages"][0]
    assert m["Body"] == "signed" and m["Attributes"]["SenderId"] == "AKIDSHAREDQUEUES0001"
    with pytest.raises(ClientError) as e:
        make("sqs", shared.url, key="AKIDUNKNOWNKEY000001").list_queues()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        make("sns", shared.url, secret="wrong-secret").list_topics()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # Unsigned requests: refused in SQS's JSON format and in the query format.
    r = requests.post(shared.url, headers={"X-Amz-Target": "AmazonSQS.ListQueues",
                                           "Content-Type": "application/x-amz-json-1.0"},
                      data="{}", timeout=30)
    assert r.status_code == 403
    assert r.json()["__type"].endswith("MissingAuthenticationToken")
    assert r.headers["x-amzn-query-error"].startswith("MissingAuthenticationToken;")
    r = requests.post(shared.url, data={"Action": "ListTopics", "Version": "2010-03-31"}, timeout=30)
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text


def test_unsigned_forms_are_refused_before_their_body(shared):
    """A query-protocol form names its service only in its body; unsigned, it used to be read
    (up to 4 MiB of the memory budget each, a trickled one for as long as it trickled) before
    the service refused it, so a few connections that need no key starved every signed request
    of the budget. Now it is answered from its head."""
    import socket
    import time
    host, port = shared.url.split("://")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                  b"\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n")
        started, head = time.monotonic(), b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
        assert time.monotonic() - started < 3, "waited for the body"
        while b"</ErrorResponse>" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    assert head.startswith(b"HTTP/1.1 403"), head
    assert b"<Code>MissingAuthenticationToken</Code>" in head, head
