"""Helpers of the SQS/SNS suite: names, the MD5 rules clients verify, query requests."""

from __future__ import annotations

import hashlib
import struct
import time
import uuid
import xml.etree.ElementTree as ET

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCOUNT = "000000000000"
REGION = "us-east-1"


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def md5_body(body: str) -> str:
    return hashlib.md5(body.encode()).hexdigest()


def md5_attributes(attrs: dict) -> str:
    """SQS's MD5 of message attributes (names sorted; length-prefixed fields)."""
    h = hashlib.md5()

    def put(b: bytes):
        h.update(struct.pack(">I", len(b)))
        h.update(b)

    for name in sorted(attrs):
        a = attrs[name]
        put(name.encode())
        put(a["DataType"].encode())
        if "StringValue" in a:
            h.update(b"\x01")
            put(a["StringValue"].encode())
        else:
            h.update(b"\x02")
            put(a["BinaryValue"])
    return h.hexdigest()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def receive_all(sqs, url: str, want: int, timeout: float = 20.0, **kwargs) -> list[dict]:
    """Receives (and deletes) until `want` messages arrived or the deadline passes."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kwargs)
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def query(endpoint: str, params: dict, *, path: str = "/", service: str = "sqs",
          sign: bool = True, version: str = "2012-11-05"):
    """A query-protocol request (form POST), SigV4-signed like the old SDKs sign it."""
    form = {"Version": version, **params}
    url = endpoint.rstrip("/") + path
    req = AWSRequest(method="POST", url=url, data=form,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if sign:
        SigV4Auth(Credentials("test", "test"), service, REGION).add_auth(req)
    prepared = req.prepare()
    resp = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers),
                         timeout=60)
    return resp, ET.fromstring(resp.content)


def strip(tag: str) -> str:
    return tag.split("}", 1)[-1]


def find(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if strip(e.tag) == name]


def text(root: ET.Element, name: str) -> str | None:
    found = find(root, name)
    return found[0].text if found else None
