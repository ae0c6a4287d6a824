"""Lambda's `Code.S3Bucket`/`S3Key` (and layers' `Content`) read from Kindling's own S3: the
SAM CLI and `aws cloudformation package` upload a zip, then CreateFunction points at it."""

import base64
import hashlib
import io
import json
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

import s3support

ROLE = f"arn:aws:iam::{s3support.ACCOUNT}:role/kindling-s3-tests"


def package(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, f"def handler(event, context):\n    return {{'marker': {marker!r}}}\n")
    return buf.getvalue()


def layer_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("python/kindling_layer_mod.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, "VALUE = 'from the layer'\n")
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(endpoint):
    return s3support.client("lambda", endpoint)


def invoke(lam, name):
    res = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in res, res["Payload"].read()
    return json.loads(res["Payload"].read())


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_functions_from_s3_objects(lam, s3, bucket):
    v1, v2 = package("v1"), package("v2")
    s3.put_object(Bucket=bucket, Key="artifacts/v1.zip", Body=v1)
    s3.put_object(Bucket=bucket, Key="artifacts/v2.zip", Body=v2)
    name = f"s3fn-{uuid.uuid4().hex[:10]}"
    created = lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                  Handler="app.handler",
                                  Code={"S3Bucket": bucket, "S3Key": "artifacts/v1.zip"})
    assert created["CodeSha256"] == b64sha256(v1) and created["CodeSize"] == len(v1)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    assert invoke(lam, name) == {"marker": "v1"}
    updated = lam.update_function_code(FunctionName=name, S3Bucket=bucket,
                                       S3Key="artifacts/v2.zip")
    assert updated["CodeSha256"] == b64sha256(v2)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke(lam, name) == {"marker": "v2"}
    lam.delete_function(FunctionName=name)


def test_object_versions_and_layers(lam, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    zip_bytes = package("versioned")
    version = s3.put_object(Bucket=bucket, Key="v.zip", Body=zip_bytes)["VersionId"]
    name = f"s3ver-{uuid.uuid4().hex[:10]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"S3Bucket": bucket, "S3Key": "v.zip", "S3ObjectVersion": version})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    assert invoke(lam, name) == {"marker": "versioned"}
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=f"{name}-x", Runtime="python3.11", Role=ROLE,
                            Handler="app.handler",
                            Code={"S3Bucket": bucket, "S3Key": "v.zip", "S3ObjectVersion": "nope"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "S3 Error Code: NoSuchVersion" in e.value.response["Error"]["Message"]

    layer = layer_zip()
    s3.put_object(Bucket=bucket, Key="layers/l.zip", Body=layer)
    published = lam.publish_layer_version(LayerName=f"s3layer-{uuid.uuid4().hex[:8]}",
                                          Content={"S3Bucket": bucket, "S3Key": "layers/l.zip"},
                                          CompatibleRuntimes=["python3.11"])
    assert published["Content"]["CodeSha256"] == b64sha256(layer)
    assert published["Content"]["CodeSize"] == len(layer)


def test_missing_objects_get_lambdas_errors(lam, s3, bucket):
    def create(code):
        with pytest.raises(ClientError) as e:
            lam.create_function(FunctionName=f"s3err-{uuid.uuid4().hex[:10]}",
                                Runtime="python3.11", Role=ROLE, Handler="app.handler", Code=code)
        return e.value.response

    res = create({"S3Bucket": bucket, "S3Key": "no/such.zip"})
    assert res["Error"]["Code"] == "InvalidParameterValueException"
    assert res["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert res["Error"]["Message"] == ("Error occurred while GetObject. S3 Error Code: NoSuchKey. "
                                       "S3 Error Message: The specified key does not exist.")
    res = create({"S3Bucket": "kindling-no-such-bucket", "S3Key": "a.zip"})
    assert res["Error"]["Code"] == "InvalidParameterValueException"
    assert "S3 Error Code: NoSuchBucket" in res["Error"]["Message"]
    s3.put_object(Bucket=bucket, Key="not-a-zip.zip", Body=b"plain text")
    res = create({"S3Bucket": bucket, "S3Key": "not-a-zip.zip"})
    assert res["Error"]["Code"] == "InvalidParameterValueException"
    assert "Could not unzip" in res["Error"]["Message"]
