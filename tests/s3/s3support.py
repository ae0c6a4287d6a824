"""Helpers for the S3/STS suite: clients, names, raw HTTP for what SDKs refuse to send, and the
after-call check (every response has a request id, no 5xx)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import uuid
from typing import Iterator

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "000000000000"
MB = 1024 * 1024


@dataclasses.dataclass
class Recorded:
    operation: str
    status: int
    headers: dict[str, str]


RESPONSES: list[Recorded] = []


def _record(http_response, model, **_kwargs) -> None:
    RESPONSES.append(Recorded(model.name, http_response.status_code,
                              {k.lower(): v for k, v in http_response.headers.items()}))


def check_responses(responses: list[Recorded]) -> list[str]:
    problems = []
    for r in responses:
        rid = r.headers.get("x-amz-request-id") or r.headers.get("x-amzn-requestid")
        if not rid:
            problems.append(f"{r.operation}: HTTP {r.status} without a request id")
        # 501 NotImplemented names a feature Kindling does not serve; other 5xx are bugs.
        if r.status >= 500 and r.status != 501:
            problems.append(f"{r.operation}: HTTP {r.status}")
    return problems


def client(service: str, endpoint: str, *, key: str = "test", secret: str = "test",
           addressing: str | None = None, **config):
    s3cfg = {"addressing_style": addressing} if addressing else None
    c = boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, s3=s3cfg, **config),
    )
    c.meta.events.register("after-call.*", _record)
    return c


def unique_bucket(prefix: str = "kt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def empty_and_delete(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    for up in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    s3.delete_bucket(Bucket=bucket)


@contextlib.contextmanager
def localhost_subdomains() -> Iterator[None]:
    """Resolve `*.localhost` to 127.0.0.1 in this process (as many systems' resolvers do), so
    that clients can use virtual-hosted addressing (`<bucket>.localhost:<port>`)."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = fake
    try:
        yield
    finally:
        socket.getaddrinfo = real


@dataclasses.dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def code(self) -> str | None:
        text = self.body.decode(errors="replace")
        if "<Code>" not in text:
            return None
        return text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def raw(endpoint: str, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, host: str | None = None,
        chunks: Iterator[bytes] | None = None) -> Raw:
    """One HTTP request as written (for what SDKs will not send)."""
    hostport = endpoint.split("://", 1)[1]
    h, p = hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(p), timeout=120)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or hostport)
        hdrs = dict(headers or {})
        if chunks is None and body is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        if chunks is not None and "Content-Length" not in hdrs:
            hdrs.setdefault("Transfer-Encoding", "chunked")
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if chunks is not None:
            chunked = hdrs.get("Transfer-Encoding") == "chunked"
            for c in chunks:
                if chunked:
                    conn.send(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                else:
                    conn.send(c)
            if chunked:
                conn.send(b"0\r\n\r\n")
        elif body:
            conn.send(body)
        res = conn.getresponse()
        data = res.read()
        return Raw(res.status, {k.lower(): v for k, v in res.getheaders()}, data)
    finally:
        conn.close()


def _crc(data: bytes, poly: int, width: int) -> int:
    """Reflected CRC with all-ones init and final xor (CRC-32C, CRC-64/NVME), table-driven."""
    mask = (1 << width) - 1
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def b64_checksum(algorithm: str, data: bytes) -> str:
    """The base64 checksum S3 clients send (`x-amz-checksum-<algorithm>`)."""
    import base64
    import hashlib
    import zlib
    algorithm = algorithm.lower()
    if algorithm == "crc32":
        raw_sum = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "crc32c":
        raw_sum = _crc(data, 0x82F63B78, 32).to_bytes(4, "big")
    elif algorithm == "crc64nvme":
        raw_sum = _crc(data, 0x9A6C9329AC4BC9B5, 64).to_bytes(8, "big")
    else:
        raw_sum = hashlib.new(algorithm, data).digest()
    return base64.b64encode(raw_sum).decode()
