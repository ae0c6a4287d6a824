"""S3 objects on several nodes: the bytes live in PostgreSQL (chunks, checked by SHA-256 when
a node copies them into its cache), so an object put through one node is read through every
other at once, a multipart upload may send its parts through different nodes, and a delete
through one node is seen by all."""

from __future__ import annotations

import hashlib
import os
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import psql

MIB = 1024 * 1024


def s3_of(url: str):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, read_timeout=120,
                                      s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def s3s(nodes):
    return [s3_of(n.url) for n in nodes]


def body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_an_object_put_through_one_node_is_read_through_the_others(s3s, database):
    a, b, c = s3s
    bucket = f"shared-{uuid.uuid4().hex[:12]}"
    a.create_bucket(Bucket=bucket)
    small = b"hello from node A"
    # Larger than two 4 MiB chunks, and not a multiple of them.
    large = os.urandom(9 * MIB + 123)
    a.put_object(Bucket=bucket, Key="small.txt", Body=small)
    a.put_object(Bucket=bucket, Key="dir/large.bin", Body=large)
    # No wait, no retry: B and C read the bytes A stored.
    assert body(b, bucket, "small.txt") == small
    assert body(c, bucket, "small.txt") == small
    got = body(c, bucket, "dir/large.bin")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(large).hexdigest()
    ranged = b.get_object(Bucket=bucket, Key="dir/large.bin", Range="bytes=5000000-5000009")
    assert ranged["Body"].read() == large[5_000_000:5_000_010]
    head = b.head_object(Bucket=bucket, Key="dir/large.bin")
    assert head["ContentLength"] == len(large)
    # The bytes are in PostgreSQL, in chunks, with their SHA-256.
    digest = psql("SELECT b.sha256 FROM s3_blobs b JOIN s3_objects o ON o.blob = b.id "
                  f"WHERE o.bucket = '{bucket}' AND o.key = 'dir/large.bin'::bytea", database)
    assert digest == hashlib.sha256(large).hexdigest()

    # Overwritten through C, read through A; deleted through B, gone everywhere.
    c.put_object(Bucket=bucket, Key="small.txt", Body=b"from node C")
    assert body(a, bucket, "small.txt") == b"from node C"
    b.delete_object(Bucket=bucket, Key="small.txt")
    for s3 in s3s:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="small.txt")
        assert e.value.response["Error"]["Code"] == "NoSuchKey"
    # A copy made through B of A's object is read through C.
    b.copy_object(Bucket=bucket, Key="copy.bin",
                  CopySource={"Bucket": bucket, "Key": "dir/large.bin"})
    assert body(c, bucket, "copy.bin") == large
    # Deleted objects' bytes leave PostgreSQL: only the two live objects' remain.
    for s3 in (a, b):
        for key in ("dir/large.bin", "copy.bin"):
            s3.delete_object(Bucket=bucket, Key=key)
    b.delete_bucket(Bucket=bucket)
    left = psql("SELECT count(*) FROM s3_blobs b WHERE NOT EXISTS "
                "(SELECT 1 FROM s3_objects o WHERE o.blob = b.id) AND NOT EXISTS "
                "(SELECT 1 FROM s3_parts p WHERE p.blob = b.id)", database)
    assert left == "0"


def test_a_multipart_upload_sends_its_parts_through_different_nodes(s3s):
    a, b, c = s3s
    bucket = f"multi-{uuid.uuid4().hex[:12]}"
    a.create_bucket(Bucket=bucket)
    upload = a.create_multipart_upload(Bucket=bucket, Key="assembled.bin")["UploadId"]
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB + 17), b"the last part"]
    etags = []
    for n, (s3, data) in enumerate(zip((b, c, a), parts), start=1):
        r = s3.upload_part(Bucket=bucket, Key="assembled.bin", UploadId=upload, PartNumber=n,
                           Body=data)
        etags.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = c.list_parts(Bucket=bucket, Key="assembled.bin", UploadId=upload)["Parts"]
    assert [p["Size"] for p in listed] == [len(p) for p in parts]
    b.complete_multipart_upload(Bucket=bucket, Key="assembled.bin", UploadId=upload,
                                MultipartUpload={"Parts": etags})
    whole = b"".join(parts)
    for s3 in s3s:
        assert body(s3, bucket, "assembled.bin") == whole
    # An upload aborted through another node than the one that received its part.
    other = c.create_multipart_upload(Bucket=bucket, Key="aborted.bin")["UploadId"]
    a.upload_part(Bucket=bucket, Key="aborted.bin", UploadId=other, PartNumber=1, Body=b"x")
    b.abort_multipart_upload(Bucket=bucket, Key="aborted.bin", UploadId=other)
    with pytest.raises(ClientError) as e:
        c.list_parts(Bucket=bucket, Key="aborted.bin", UploadId=other)
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"
