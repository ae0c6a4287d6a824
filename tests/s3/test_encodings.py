"""Request payload encodings: the aws-chunked bodies with trailing checksums that botocore
sends over https (made here by botocore itself), signed chunk framing, `Expect:
100-continue`, and hostile input: lying lengths, broken framing, bad names and keys, huge
headers. Every refusal is a clean 4xx and leaves no object behind."""

import hashlib
import io
import os
import socket
import time

import boto3.s3.transfer
import pytest
from botocore.exceptions import ClientError

import s3support

MB = s3support.MB


def trailer_client(endpoint):
    """A boto3 client that puts checksums in aws-chunked trailers, as botocore does over
    https (this endpoint is plain http, where botocore would send them as headers)."""
    c = s3support.client("s3", endpoint)

    def use_trailer(params, **_):
        algorithm = params["context"].get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    c.meta.events.register("before-call.s3.PutObject", use_trailer)
    c.meta.events.register("before-call.s3.UploadPart", use_trailer)
    return c


def test_botocore_trailing_checksums(endpoint, bucket):
    c = trailer_client(endpoint)
    seen = []
    c.meta.events.register("before-send.s3.*", lambda request, **_: seen.append(dict(request.headers)))
    body = os.urandom(3 * MB + 17)  # several 1 MiB chunks
    for algorithm in ("CRC32", "SHA256", "SHA1"):
        put = c.put_object(Bucket=bucket, Key=f"trailer-{algorithm}", Body=io.BytesIO(body),
                           ChecksumAlgorithm=algorithm)
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in seen[-1].items()}
        assert headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert "aws-chunked" in headers["content-encoding"]
        assert headers["x-amz-trailer"] == f"x-amz-checksum-{algorithm.lower()}"
        assert int(headers["x-amz-decoded-content-length"]) == len(body)
        got = c.get_object(Bucket=bucket, Key=f"trailer-{algorithm}", ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]
        assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    # The transfer manager's multipart path too (UploadPart with trailers).
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    big = os.urandom(11 * MB)
    c.upload_fileobj(io.BytesIO(big), bucket, "trailer-multipart", Config=cfg)
    out = io.BytesIO()
    c.download_fileobj(bucket, "trailer-multipart", out)
    assert out.getvalue() == big


def chunked_body(payload: bytes, size: int, trailers: list[tuple[str, str]]) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        chunk = payload[i:i + size]
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    out += b"0\r\n" + b"".join(f"{k}:{v}\r\n".encode() for k, v in trailers) + b"\r\n"
    return out


def chunked_put(endpoint, bucket, key, body, decoded_length, extra=None):
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(decoded_length),
        **(extra or {}),
    }
    return s3support.raw(endpoint, "PUT", f"/{bucket}/{key}", body=body, headers=headers)


def test_wrong_trailing_checksum_is_bad_digest(endpoint, bucket):
    payload = b"x" * 5000
    bad = chunked_body(payload, 1000, [("x-amz-checksum-crc32", "AAAAAA==")])
    res = chunked_put(endpoint, bucket, "bad", bad, len(payload),
                      {"x-amz-trailer": "x-amz-checksum-crc32"})
    assert res.status == 400 and res.code() == "BadDigest", res
    good = chunked_body(payload, 1000, [("x-amz-checksum-crc32",
                                          s3support.b64_checksum("crc32", payload))])
    res = chunked_put(endpoint, bucket, "good", good, len(payload),
                      {"x-amz-trailer": "x-amz-checksum-crc32"})
    assert res.status == 200, res
    missing = chunked_body(payload, 1000, [])
    res = chunked_put(endpoint, bucket, "missing-trailer", missing, len(payload),
                      {"x-amz-trailer": "x-amz-checksum-crc32"})
    assert res.status == 400, res
    assert s3support.raw(endpoint, "HEAD", f"/{bucket}/bad").status == 404
    assert s3support.raw(endpoint, "HEAD", f"/{bucket}/missing-trailer").status == 404


def test_signed_chunk_framing_is_decoded(endpoint, bucket):
    # Without --credentials signatures are not checked, but the framing must still parse.
    payload = os.urandom(70_000)
    sig = "0" * 64
    body = b""
    for i in range(0, len(payload), 65536):
        chunk = payload[i:i + 65536]
        body += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk + b"\r\n"
    body += f"0;chunk-signature={sig}\r\n\r\n".encode()
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/signed-chunks", body=body, headers={
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
    })
    assert res.status == 200, res
    assert s3support.raw(endpoint, "GET", f"/{bucket}/signed-chunks").body == payload


@pytest.mark.parametrize("body,declared", [
    (chunked_body(b"a" * 100, 10, []), 50),      # more bytes than declared
    (chunked_body(b"a" * 100, 10, []), 150),     # fewer bytes than declared
    (b"zz\r\nab\r\n0\r\n\r\n", 2),              # bad hex
    (b"2\r\nabXY0\r\n\r\n", 2),                  # data not followed by CRLF
    (b"2\r\nab\r\n", 2),                         # no last chunk
    (b"1" * 10_000, 2),                          # endless header line
    (b"0\r\n\r\ntrailing garbage", 0),           # bytes after the end
])
def test_hostile_chunk_framing_is_refused(endpoint, bucket, body, declared):
    res = chunked_put(endpoint, bucket, "hostile", body, declared)
    assert res.status == 400, res
    assert res.code() in ("InvalidRequest", "IncompleteBody"), res.body
    assert s3support.raw(endpoint, "HEAD", f"/{bucket}/hostile").status == 404


def test_chunked_without_decoded_length_is_refused(endpoint, bucket):
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/nolen", body=chunked_body(b"abc", 2, []),
                        headers={"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                 "Content-Encoding": "aws-chunked"})
    assert res.status == 411 and res.code() == "MissingContentLength", res


def test_hostile_names_keys_and_headers(s3, endpoint, bucket):
    # Keys are never file names: traversal-looking keys are just keys.
    for key in ["../../../../etc/passwd", "a/./b/../c", "..", "./x", "\\..\\win"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "../../../../etc/passwd" in listed and ".." in listed
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert e.value.response["Error"]["Code"] == "KeyTooLongError"
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/nul%00key", body=b"x")
    assert res.status == 400, res
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/bad%ffutf8", body=b"x")
    assert res.status == 400 and res.code() == "InvalidURI", res
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/big-meta", body=b"x",
                        headers={"x-amz-meta-big": "v" * 3000})
    assert res.status == 400 and res.code() == "MetadataTooLarge", res
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/bad-sha", body=b"x",
                        headers={"x-amz-content-sha256": "not-a-hash"})
    assert res.status == 400 and res.code() == "InvalidArgument", res
    res = s3support.raw(endpoint, "PUT", f"/{bucket}/bad-md5", body=b"x",
                        headers={"Content-MD5": "not base64!"})
    assert res.status == 400 and res.code() == "InvalidDigest", res
    res = s3support.raw(endpoint, "POST", f"/{bucket}?delete", body=b"<Delete><Object>",
                        headers={"Content-MD5": s3support.b64_checksum("md5", b"<Delete><Object>")})
    assert res.status == 400 and res.code() == "MalformedXML", res
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>')
    res = s3support.raw(endpoint, "POST", f"/{bucket}?delete", body=bomb,
                        headers={"Content-MD5": s3support.b64_checksum("md5", bomb)})
    assert res.status == 400 and res.code() == "MalformedXML", res
    res = s3support.raw(endpoint, "POST", f"/{bucket}?delete",
                        body=b"<Delete><Object><Key>a</Key></Object></Delete>")
    assert res.status == 400 and res.code() == "InvalidRequest", res
    res = s3support.raw(endpoint, "PATCH", f"/{bucket}/k")
    assert res.status == 405 and res.code() == "MethodNotAllowed", res
    # A huge header: refused by the HTTP layer (4xx or a closed connection), never served.
    try:
        res = s3support.raw(endpoint, "GET", f"/{bucket}/k", headers={"x-amz-meta-x": "v" * 1_000_000})
        assert 400 <= res.status < 500, res
    except (ConnectionError, OSError):
        pass
    # The server is still fine.
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_expect_continue_refusal_is_answered_before_the_body(endpoint):
    host, port = endpoint.split("://")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"PUT /kindling-no-such-bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n")
        start = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
        assert time.monotonic() - start < 5
    assert data.startswith(b"HTTP/1.1 404"), data[:200]


def test_declared_size_over_the_limit_is_refused_unread(server_factory):
    srv = server_factory(extra=["--s3-max-object-size", "1MiB"])
    c = s3support.client("s3", srv.url)
    c.create_bucket(Bucket="limits")
    c.put_object(Bucket="limits", Key="ok", Body=b"x" * 1024)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket="limits", Key="too-big", Body=b"x" * (2 * MB))
    assert e.value.response["Error"]["Code"] == "EntityTooLarge"
    # No Content-Length (HTTP chunked): cut while streaming.
    res = s3support.raw(srv.url, "PUT", "/limits/streamed", chunks=iter([b"y" * 65536] * 40))
    assert res.status == 400 and res.code() == "EntityTooLarge", res
    assert s3support.raw(srv.url, "HEAD", "/limits/streamed").status == 404
