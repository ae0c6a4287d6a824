"""A server with `--credentials`: every S3 and STS request must be signed with a known key.
Header signatures over hashed and streaming payloads, presigned URLs, and signed aws-chunked
bodies are accepted; unsigned, tampered, expired and wrongly keyed requests are refused."""

import base64
import hashlib
import hmac
import io
import os
import urllib.error
import urllib.request
from datetime import datetime, timezone

import boto3.s3.transfer
import pytest
from botocore.exceptions import ClientError

import s3support

KEY, SECRET = "AKIDKINDLINGS3TEST", "kindling-s3-secret-key"
MB = s3support.MB


@pytest.fixture(scope="module")
def signed_server(server_factory, tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text(f"{KEY} {SECRET}\n")
    return server_factory(extra=["--credentials", str(creds)])


@pytest.fixture(scope="module")
def ss3(signed_server):
    return s3support.client("s3", signed_server.url, key=KEY, secret=SECRET)


def code(e):
    return e.value.response["Error"]["Code"]


def test_signed_clients_work(ss3, signed_server, tmp_path):
    bucket = s3support.unique_bucket("signed")
    ss3.create_bucket(Bucket=bucket)
    for key in ["plain.txt", "with space/and+plus.txt", "unicodé/☺!'()*.txt", "a/../b"]:
        ss3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert ss3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    data = os.urandom(11 * MB)
    ss3.upload_fileobj(io.BytesIO(data), bucket, "multi.bin", Config=cfg)
    out = io.BytesIO()
    ss3.download_fileobj(bucket, "multi.bin", out, Config=cfg)
    assert out.getvalue() == data
    keys = [o["Key"] for p in ss3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}) for o in p.get("Contents", [])]
    assert len(keys) == 5, keys
    # boto3 presigns S3 URLs with signature version 2 by default (AWSAccessKeyId/Signature).
    url = ss3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "plain.txt"})
    assert "AWSAccessKeyId=" in url
    with urllib.request.urlopen(url) as r:  # noqa: S310 - loopback server
        assert r.read() == b"plain.txt"
    put_url = ss3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre.txt"})
    with urllib.request.urlopen(urllib.request.Request(put_url, data=b"up", method="PUT")) as r:  # noqa: S310
        assert r.status == 200
    assert ss3.get_object(Bucket=bucket, Key="pre.txt")["Body"].read() == b"up"
    # SigV4 presigned URLs (signature_version="s3v4"), which other SDKs always make.
    v4 = s3support.client("s3", signed_server.url, key=KEY, secret=SECRET,
                          signature_version="s3v4")
    v4_url = v4.generate_presigned_url("get_object",
                                       Params={"Bucket": bucket, "Key": "unicodé/☺!'()*.txt"})
    assert "X-Amz-Signature=" in v4_url
    with urllib.request.urlopen(v4_url) as r:  # noqa: S310
        assert r.read() == "unicodé/☺!'()*.txt".encode()
    v4_put = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "v4.txt"})
    res = s3support.raw(signed_server.url, "PUT", v4_put.split(signed_server.url, 1)[1], body=b"v4")
    assert res.status == 200, res
    tampered = url.replace("plain.txt", "pre.txt")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered)  # noqa: S310
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()
    s3support.empty_and_delete(ss3, bucket)


def test_unsigned_and_wrongly_signed_requests_are_refused(signed_server, ss3):
    res = s3support.raw(signed_server.url, "GET", "/")
    assert res.status == 403 and res.code() == "AccessDenied", res
    res = s3support.raw(signed_server.url, "PUT", "/unsigned-bucket")
    assert res.status == 403
    wrong = s3support.client("s3", signed_server.url, key=KEY, secret="not-the-secret")
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    assert code(e) == "SignatureDoesNotMatch"
    unknown = s3support.client("s3", signed_server.url, key="AKIDUNKNOWN", secret=SECRET)
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert code(e) == "InvalidAccessKeyId"
    expired = ss3.generate_presigned_url("list_buckets", ExpiresIn=1)
    import time
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired)  # noqa: S310
    assert e.value.code == 403


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_chunked_put(url: str, bucket: str, key: str, payload: bytes, tamper: bool = False):
    """A PUT with `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, signed the way the AWS Java SDK does
    (SigV4 for the head, a chained signature per 64 KiB chunk)."""
    now = datetime.now(timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = url.split("://")[1]
    scope = f"{day}/us-east-1/s3/aws4_request"
    headers = {
        "content-encoding": "aws-chunked",
        "host": host,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(payload)),
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        "PUT", f"/{bucket}/{key}", "",
        *[f"{k}:{headers[k]}" for k in sorted(headers)], "", signed,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(_hmac(_hmac(_hmac(f"AWS4{SECRET}".encode(), day), "us-east-1"), "s3"), "aws4_request")
    seed = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    empty = hashlib.sha256(b"").hexdigest()
    body, prev = b"", seed
    chunks = [payload[i:i + 65536] for i in range(0, len(payload), 65536)] + [b""]
    for i, chunk in enumerate(chunks):
        csts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                          hashlib.sha256(chunk).hexdigest()])
        sig = hmac.new(k, csts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if tamper and i == 1:
            chunk = b"X" * len(chunk)
        body += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk + b"\r\n"
    auth = f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={signed}, Signature={seed}"
    send = {k: v for k, v in headers.items() if k != "host"}
    send["Authorization"] = auth
    return s3support.raw(url, "PUT", f"/{bucket}/{key}", body=body, headers=send)


def test_signed_chunks_are_verified(signed_server, ss3):
    bucket = s3support.unique_bucket("chunks")
    ss3.create_bucket(Bucket=bucket)
    payload = os.urandom(200_000)
    res = signed_chunked_put(signed_server.url, bucket, "good", payload)
    assert res.status == 200, res
    assert ss3.get_object(Bucket=bucket, Key="good")["Body"].read() == payload
    res = signed_chunked_put(signed_server.url, bucket, "tampered", payload, tamper=True)
    assert res.status == 403 and res.code() == "SignatureDoesNotMatch", res
    with pytest.raises(ClientError):
        ss3.head_object(Bucket=bucket, Key="tampered")
    s3support.empty_and_delete(ss3, bucket)


def test_sts_names_the_signing_key(signed_server):
    sts = s3support.client("sts", signed_server.url, key=KEY, secret=SECRET)
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{s3support.ACCOUNT}:user/{KEY}"
    assert identity["Account"] == s3support.ACCOUNT
    wrong = s3support.client("sts", signed_server.url, key=KEY, secret="nope")
    with pytest.raises(ClientError) as e:
        wrong.get_caller_identity()
    assert code(e) == "SignatureDoesNotMatch"
    unknown = s3support.client("sts", signed_server.url, key="AKIDNOPE", secret="x")
    with pytest.raises(ClientError) as e:
        unknown.get_caller_identity()
    assert code(e) == "InvalidClientTokenId"


def signed_head(url: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers botocore's S3 signer gives a request carrying `body` (hashed payload)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=url + path, data=body)
    req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(req)
    return {k: v for k, v in req.headers.items() if k.lower() != "host"}


def test_signed_hash_covers_the_bodies_of_every_operation(signed_server, ss3):
    """A signature covers the body through `x-amz-content-sha256`: a captured request replayed
    with another body (other tags, a bucket policy, other keys to delete, other parts) is
    `XAmzContentSHA256Mismatch` and changes nothing, for the XML bodies as for PutObject."""
    bucket = s3support.unique_bucket("swap")
    ss3.create_bucket(Bucket=bucket)
    ss3.put_object(Bucket=bucket, Key="keep", Body=b"k")
    tags = b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>"
    evil = b"<Tagging><TagSet><Tag><Key>X</Key><Value>9</Value></Tag></TagSet></Tagging>"
    policy = b'{"Version":"2012-10-17","Statement":[]}'
    evil_policy = (b'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                   b'"Action":"s3:*","Resource":"*"}]}')
    delete = b"<Delete><Object><Key>gone</Key></Object></Delete>"
    evil_delete = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    for path, good, bad in [(f"/{bucket}?tagging", tags, evil),
                            (f"/{bucket}?policy", policy, evil_policy),
                            (f"/{bucket}/keep?tagging", tags, evil)]:
        headers = signed_head(signed_server.url, "PUT", path, good)
        res = s3support.raw(signed_server.url, "PUT", path, body=bad, headers=headers)
        assert res.status == 400 and res.code() == "XAmzContentSHA256Mismatch", (path, res)
        res = s3support.raw(signed_server.url, "PUT", path, body=good, headers=headers)
        assert res.status in (200, 204), (path, res)
    assert ss3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "a", "Value": "1"}]
    assert ss3.get_bucket_policy(Bucket=bucket)["Policy"] == policy.decode()
    headers = signed_head(signed_server.url, "POST", f"/{bucket}?delete", delete)
    headers["Content-MD5"] = base64.b64encode(hashlib.md5(evil_delete).digest()).decode()
    res = s3support.raw(signed_server.url, "POST", f"/{bucket}?delete", body=evil_delete,
                        headers=headers)
    assert res.status == 400 and res.code() == "XAmzContentSHA256Mismatch", res
    assert ss3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"k"
    s3support.empty_and_delete(ss3, bucket)


def test_sigv2_urls_cannot_be_turned_into_unsigned_operations(signed_server, ss3):
    """SigV2 signs only the sub-resources of its day: `?encryption` and `?publicAccessBlock`
    appended to a captured presigned bucket URL (here a DeleteBucket) selected another
    operation under the same signature."""
    bucket = s3support.unique_bucket("v2sub")
    ss3.create_bucket(Bucket=bucket)
    ss3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    url = ss3.generate_presigned_url("delete_bucket", Params={"Bucket": bucket})
    assert "AWSAccessKeyId=" in url
    path = url.split(signed_server.url, 1)[1]
    res = s3support.raw(signed_server.url, "DELETE", path + "&publicAccessBlock")
    assert res.status == 403 and res.code() == "AccessDenied", res
    assert ss3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"] is True
    # The URL still does what it was signed for.
    res = s3support.raw(signed_server.url, "DELETE", path)
    assert res.status == 204, res
