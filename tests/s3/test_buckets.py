"""Buckets: lifecycle, us-east-1's create semantics, the configuration SAM's managed bucket
sets (versioning, encryption, public access block, policy, tags)."""

import json

import pytest
from botocore.exceptions import ClientError

import s3support


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def test_bucket_lifecycle_and_listing(s3):
    name = s3support.unique_bucket()
    res = s3.create_bucket(Bucket=name)
    assert res["Location"] == f"/{name}"
    # us-east-1: creating a bucket you own again succeeds.
    s3.create_bucket(Bucket=name)
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_code(e.value) == "BucketNotEmpty"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert error_code(e.value) == "404"
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert error_code(e.value) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_code(e.value) == "NoSuchBucket"


def test_location_constraints(s3):
    name = s3support.unique_bucket()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=name,
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert error_code(e.value) == "BucketAlreadyOwnedByYou"
    finally:
        s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=s3support.unique_bucket(),
                         CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert error_code(e.value) == "InvalidLocationConstraint"


def test_invalid_bucket_names_are_refused(endpoint):
    for name in ["ab", "UPPER-case", "under_score", "-dash", "a..b", "192.168.1.1"]:
        res = s3support.raw(endpoint, "PUT", f"/{name}")
        assert res.status == 400, (name, res)
        assert res.code() == "InvalidBucketName", (name, res.body)


def test_the_configuration_sams_managed_bucket_sets(s3, bucket):
    # What `sam deploy --resolve-s3`'s template asks of the bucket, set the way CloudFormation
    # and the aws CLI set it.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == block
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    # The policy is stored, not enforced: plain-HTTP requests still work.
    s3.put_object(Bucket=bucket, Key="still-works", Body=b"1")
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert error_code(e.value) == "NoSuchBucketPolicy"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "ManagedStackSource", "Value": "AwsSamCli"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [
        {"Key": "ManagedStackSource", "Value": "AwsSamCli"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e.value) == "NoSuchTagSet"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unsupported_subresources_say_so(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_code(e.value) == "NotImplemented"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
