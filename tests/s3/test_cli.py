"""The aws CLI v1 with nothing but AWS_ENDPOINT_URL: `aws s3`, `aws s3api`, `aws sts`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import s3support


def aws(endpoint: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1")
    return subprocess.run([sys.executable, "-m", "awscli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def ok(endpoint, *args, cwd=None) -> str:
    res = aws(endpoint, *args, cwd=cwd)
    assert res.returncode == 0, f"aws {' '.join(args)}: {res.stderr}"
    return res.stdout


def test_s3_commands(endpoint, tmp_path):
    bucket = s3support.unique_bucket("cli")
    assert f"make_bucket: {bucket}" in ok(endpoint, "s3", "mb", f"s3://{bucket}")
    small = tmp_path / "hello.txt"
    small.write_text("hello from the aws cli\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * s3support.MB))  # multipart (8 MiB parts)
    ok(endpoint, "s3", "cp", str(small), f"s3://{bucket}/docs/hello.txt", "--only-show-errors")
    ok(endpoint, "s3", "cp", str(big), f"s3://{bucket}/data/big.bin", "--only-show-errors")
    listing = ok(endpoint, "s3", "ls", f"s3://{bucket}")
    assert "PRE docs/" in listing and "PRE data/" in listing
    listing = ok(endpoint, "s3", "ls", f"s3://{bucket}", "--recursive")
    assert "docs/hello.txt" in listing and str(20 * s3support.MB) in listing
    out = tmp_path / "back.bin"
    ok(endpoint, "s3", "cp", f"s3://{bucket}/data/big.bin", str(out), "--only-show-errors")
    assert out.read_bytes() == big.read_bytes()
    head = json.loads(ok(endpoint, "s3api", "head-object", "--bucket", bucket,
                         "--key", "docs/hello.txt"))
    assert head["ContentLength"] == small.stat().st_size
    assert head["ContentType"] == "text/plain"
    objects = json.loads(ok(endpoint, "s3api", "list-objects-v2", "--bucket", bucket))
    assert sorted(o["Key"] for o in objects["Contents"]) == ["data/big.bin", "docs/hello.txt"]
    ok(endpoint, "s3", "sync", str(tmp_path), f"s3://{bucket}/sync/", "--only-show-errors")
    assert "sync/hello.txt" in ok(endpoint, "s3", "ls", f"s3://{bucket}/sync/", "--recursive")
    res = aws(endpoint, "s3", "rb", f"s3://{bucket}")
    assert res.returncode != 0 and "BucketNotEmpty" in res.stderr
    ok(endpoint, "s3", "rm", f"s3://{bucket}", "--recursive", "--only-show-errors")
    assert ok(endpoint, "s3", "ls", f"s3://{bucket}").strip() == ""
    assert f"remove_bucket: {bucket}" in ok(endpoint, "s3", "rb", f"s3://{bucket}")
    res = aws(endpoint, "s3", "ls", f"s3://{bucket}")
    assert res.returncode != 0 and "NoSuchBucket" in res.stderr


def test_s3api_errors_and_presign(endpoint, tmp_path):
    bucket = s3support.unique_bucket("cli")
    ok(endpoint, "s3api", "create-bucket", "--bucket", bucket)
    res = aws(endpoint, "s3api", "get-object", "--bucket", bucket, "--key", "missing",
              str(tmp_path / "x"))
    assert res.returncode != 0 and "NoSuchKey" in res.stderr
    ok(endpoint, "s3api", "put-object", "--bucket", bucket, "--key", "a b.txt", "--body",
       __file__)
    url = ok(endpoint, "s3", "presign", f"s3://{bucket}/a b.txt").strip()
    import urllib.request
    with urllib.request.urlopen(url) as r:  # noqa: S310 - loopback test server
        assert r.read() == open(__file__, "rb").read()
    ok(endpoint, "s3api", "delete-object", "--bucket", bucket, "--key", "a b.txt")
    ok(endpoint, "s3api", "delete-bucket", "--bucket", bucket)


def test_sts_get_caller_identity(endpoint):
    identity = json.loads(ok(endpoint, "sts", "get-caller-identity"))
    assert identity == {"UserId": s3support.ACCOUNT, "Account": s3support.ACCOUNT,
                        "Arn": f"arn:aws:iam::{s3support.ACCOUNT}:root"}


def test_cloudformation_package_uploads_code_lambda_can_use(endpoint, tmp_path):
    """`aws cloudformation package --s3-bucket` (what `sam package` does, same S3 calls):
    the zipped CodeUri lands in Kindling's S3, and CreateFunction can deploy it from there."""
    bucket = s3support.unique_bucket("cfn")
    ok(endpoint, "s3", "mb", f"s3://{bucket}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("def handler(event, context):\n    return 'packaged'\n")
    (tmp_path / "template.yaml").write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.11\n")
    ok(endpoint, "cloudformation", "package", "--template-file", "template.yaml",
       "--s3-bucket", bucket, "--s3-prefix", "pkg", "--output-template-file", "packaged.yaml",
       cwd=tmp_path)
    packaged = (tmp_path / "packaged.yaml").read_text()
    uri = next(line.split("CodeUri:", 1)[1].strip() for line in packaged.splitlines()
               if "CodeUri:" in line)
    assert uri.startswith(f"s3://{bucket}/pkg/"), packaged
    key = uri.split(f"s3://{bucket}/", 1)[1]
    lam = s3support.client("lambda", endpoint)
    name = f"cfnpkg-{bucket[-8:]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                        Role=f"arn:aws:iam::{s3support.ACCOUNT}:role/r",
                        Code={"S3Bucket": bucket, "S3Key": key})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == "packaged"
    lam.delete_function(FunctionName=name)
