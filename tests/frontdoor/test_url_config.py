"""Create/Get/Update/Delete/ListFunctionUrlConfigs through boto3 and the aws CLI, with the
shapes and errors of Lambda's model."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

import support
from fdsupport import ACCOUNT, create_python_function, unique, zip_with

ECHO = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"
URL_RE = re.compile(r"^http://127\.0\.0\.1:\d+/lambda-url/[a-z0-9]{32}/$")


@pytest.fixture(scope="module")
def fn(lam):
    return create_python_function(lam, ECHO)


def test_create_get_update_list_delete(lam, fn, endpoint):
    created = lam.create_function_url_config(
        FunctionName=fn, AuthType="AWS_IAM",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"], "MaxAge": 60})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert URL_RE.match(created["FunctionUrl"]), created["FunctionUrl"]
    assert created["FunctionUrl"].startswith(endpoint + "/lambda-url/")
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{fn}"
    assert created["AuthType"] == "AWS_IAM" and created["InvokeMode"] == "BUFFERED"
    assert created["Cors"] == {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"],
                               "MaxAge": 60}
    support.assert_recent(created["CreationTime"])
    assert "LastModifiedTime" not in created

    got = lam.get_function_url_config(FunctionName=fn)
    assert got["FunctionUrl"] == created["FunctionUrl"]
    assert got["CreationTime"] == created["CreationTime"]
    support.assert_recent(got["LastModifiedTime"])

    updated = lam.update_function_url_config(FunctionName=fn, AuthType="NONE",
                                             Cors={"AllowOrigins": ["*"]},
                                             InvokeMode="RESPONSE_STREAM")
    assert updated["AuthType"] == "NONE" and updated["InvokeMode"] == "RESPONSE_STREAM"
    assert updated["Cors"] == {"AllowOrigins": ["*"]}
    assert updated["FunctionUrl"] == created["FunctionUrl"]
    assert updated["LastModifiedTime"] >= got["LastModifiedTime"]
    # Members not given stay as they are.
    again = lam.update_function_url_config(FunctionName=fn, InvokeMode="BUFFERED")
    assert again["AuthType"] == "NONE" and again["Cors"] == {"AllowOrigins": ["*"]}

    listed = lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"]
    assert [u["FunctionUrl"] for u in listed] == [created["FunctionUrl"]]
    assert set(listed[0]) >= {"FunctionUrl", "FunctionArn", "CreationTime", "LastModifiedTime",
                              "AuthType", "InvokeMode"}

    assert lam.delete_function_url_config(FunctionName=fn)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function_url_config(FunctionName=fn)
    # The URL is gone from the front door too.
    assert requests.get(created["FunctionUrl"], timeout=30).status_code == 404


def test_alias_urls_and_qualifier_rules(lam, lam_raw):
    fn = create_python_function(lam, ECHO)
    v = lam.publish_version(FunctionName=fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v)
    latest = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    live = lam.create_function_url_config(FunctionName=fn, Qualifier="live", AuthType="NONE")
    assert live["FunctionArn"].endswith(f":function:{fn}:live")
    assert live["FunctionUrl"] != latest["FunctionUrl"]
    # Qualified through the name, as the model's pattern allows.
    assert lam.get_function_url_config(FunctionName=f"{fn}:live")["FunctionUrl"] == live["FunctionUrl"]
    urls = lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"]
    assert sorted(u["FunctionArn"] for u in urls) == sorted([latest["FunctionArn"], live["FunctionArn"]])
    # Pagination: one per page, markers until the end.
    page = lam.list_function_url_configs(FunctionName=fn, MaxItems=1)
    assert len(page["FunctionUrlConfigs"]) == 1 and "NextMarker" in page
    rest = lam.list_function_url_configs(FunctionName=fn, Marker=page["NextMarker"])
    assert len(rest["FunctionUrlConfigs"]) == 1 and "NextMarker" not in rest

    # One URL per function and qualifier.
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    assert "FunctionUrlConfig exists" in e.value.response["Error"]["Message"]
    # Versions cannot have URLs; the model's pattern refuses them.
    with pytest.raises(lam_raw.exceptions.ClientError) as e:
        lam_raw.create_function_url_config(FunctionName=fn, Qualifier=v, AuthType="NONE")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_function_url_config(FunctionName=fn, Qualifier="nope", AuthType="NONE")

    # Deleting the alias deletes its URL; deleting the function deletes the rest.
    lam.delete_alias(FunctionName=fn, Name="live")
    assert requests.get(live["FunctionUrl"], timeout=30).status_code == 404
    lam.delete_function(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_function_url_configs(FunctionName=fn)
    assert requests.get(latest["FunctionUrl"], timeout=30).status_code == 404


@pytest.mark.parametrize("params,fragment", [
    ({"AuthType": "OPEN"}, "Member must satisfy enum value set: [NONE, AWS_IAM]"),
    ({}, "Value 'null' at 'authType' failed to satisfy constraint: Member must not be null"),
    ({"AuthType": "NONE", "InvokeMode": "FAST"}, "at 'invokeMode'"),
    ({"AuthType": "NONE", "Cors": {"MaxAge": 86401}}, "at 'cors.maxAge'"),
    ({"AuthType": "NONE", "Cors": {"AllowMethods": ["GET", "PUT", "POST", "HEAD", "PATCH",
                                                     "DELETE", "OPTIONS"]}}, "at 'cors.allowMethods'"),
    ({"AuthType": "NONE", "Cors": {"AllowOrigins": [""]}}, "at 'cors.allowOrigins.member'"),
])
def test_validation_errors(lam_raw, fn, params, fragment):
    with pytest.raises(lam_raw.exceptions.ClientError) as e:
        lam_raw.create_function_url_config(FunctionName=fn, **params)
    err = e.value.response["Error"]
    assert err["Code"] == "ValidationException", err
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in err["Message"], err["Message"]


def test_unknown_function(lam):
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.create_function_url_config(FunctionName=unique("missing"), AuthType="NONE")
    assert "Function not found" in e.value.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_function_url_configs(FunctionName=unique("missing"))


def aws(endpoint: str, cwd, *args: str) -> support.CliResult:
    """`aws lambda ...` with AWS_ENDPOINT_URL as its only pointer at Kindling."""
    env = support.cli_env(cwd)
    env["AWS_ENDPOINT_URL"] = endpoint
    proc = subprocess.run([sys.executable, "-m", "awscli", "lambda", *args, "--output", "json"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return support.CliResult(proc.returncode, proc.stdout, proc.stderr)


def test_aws_cli(endpoint, tmp_path):
    name = unique("cli")
    zpath = tmp_path / "fn.zip"
    zpath.write_bytes(zip_with({"app.py": ECHO}))

    def ok(*args):
        r = aws(endpoint, tmp_path, *args)
        assert r.rc == 0, f"aws lambda {' '.join(args)}: rc={r.rc} {r.stderr}"
        return r.json if r.stdout.strip() else None

    ok("create-function", "--function-name", name, "--runtime", support.RUNTIME,
       "--role", support.ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{zpath}")
    created = ok("create-function-url-config", "--function-name", name, "--auth-type", "NONE",
                 "--cors", "AllowOrigins=*,MaxAge=10")
    assert URL_RE.match(created["FunctionUrl"]), created
    assert created["Cors"] == {"AllowOrigins": ["*"], "MaxAge": 10}
    assert ok("get-function-url-config", "--function-name", name)["FunctionUrl"] == created["FunctionUrl"]
    assert len(ok("list-function-url-configs", "--function-name", name)["FunctionUrlConfigs"]) == 1
    ok("delete-function-url-config", "--function-name", name)
    missing = aws(endpoint, tmp_path, "get-function-url-config", "--function-name", name)
    assert missing.rc != 0 and "ResourceNotFoundException" in missing.stderr
