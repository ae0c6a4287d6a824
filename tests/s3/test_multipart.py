"""Multipart uploads: boto3's transfer manager with lowered thresholds (what SAM and `aws s3
cp` do above 8 MiB), and the API's rules (part order, ETags, sizes, unknown uploads)."""

import hashlib
import io
import os

import boto3.s3.transfer
import pytest
from botocore.exceptions import ClientError

import s3support

MB = s3support.MB
PARTS = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB,
                                         max_concurrency=4)


def code(exc):
    return exc.response["Error"]["Code"]


def multipart_etag(data: bytes, part: int) -> str:
    md5s = b"".join(hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part))
    return f'"{hashlib.md5(md5s).hexdigest()}-{(len(data) + part - 1) // part}"'


def test_transfer_manager_upload_and_download(s3, bucket, tmp_path):
    data = os.urandom(17 * MB + 123)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "deep/path/file.bin", Config=PARTS,
                   ExtraArgs={"ContentType": "application/zip", "Metadata": {"origin": "test"}})
    head = s3.head_object(Bucket=bucket, Key="deep/path/file.bin")
    assert head["ETag"] == multipart_etag(data, 5 * MB)
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/zip" and head["Metadata"] == {"origin": "test"}
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "deep/path/file.bin", str(dst), Config=PARTS)
    assert dst.read_bytes() == data
    # The full-object CRC32 over the assembled parts, validated by botocore on the way in.
    got = s3.get_object(Bucket=bucket, Key="deep/path/file.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert "ChecksumCRC32" in got


def test_the_api_rules(s3, bucket):
    key = "manual.bin"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    uid = up["UploadId"]
    p1 = os.urandom(5 * MB)
    p2 = b"tail bytes"
    r2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=p2,
                        ChecksumAlgorithm="SHA256")
    r1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=p1,
                        ChecksumAlgorithm="SHA256")
    assert r1["ETag"] == f'"{hashlib.md5(p1).hexdigest()}"'
    assert "ChecksumSHA256" in r1
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(p1)), (2, len(p2))]
    page = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=1)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 1
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, uid)]

    def complete(parts):
        return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                            MultipartUpload={"Parts": parts})

    good = [{"PartNumber": 1, "ETag": r1["ETag"]}, {"PartNumber": 2, "ETag": r2["ETag"]}]
    with pytest.raises(ClientError) as e:
        complete(list(reversed(good)))
    assert code(e.value) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 1, "ETag": r2["ETag"]}, good[1]])
    assert code(e.value) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        complete([good[1], {"PartNumber": 3, "ETag": r2["ETag"]}])
    assert code(e.value) in ("InvalidPart", "EntityTooSmall")
    done = complete(good)
    assert done["ETag"] == multipart_etag(p1 + p2, 5 * MB)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == p1 + p2
    with pytest.raises(ClientError) as e:
        complete(good)
    assert code(e.value) == "NoSuchUpload"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_small_parts_abort_and_unknown_uploads(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=1, Body=b"a")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e.value) == "EntityTooSmall"
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=10001, Body=b"x")
    assert code(e.value) == "InvalidArgument"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)
    assert code(e.value) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId="nope", PartNumber=1, Body=b"x")
    assert code(e.value) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="small")
    assert code(e.value) == "404"


def test_an_upload_to_a_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.upload_fileobj(io.BytesIO(os.urandom(6 * MB)), "kindling-no-such-bucket", "k",
                          Config=PARTS)
    assert "NoSuchBucket" in str(e.value)
