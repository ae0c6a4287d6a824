"""Functions against Kindling's own API (`--isolation namespaces`, host network): a function
reaches the API on the host's loopback, but only with the session credentials Kindling gave
its environment, and those allow the data plane and reading its own configuration — unless
the operator opts in.

The attacker function carries a vendored boto3/botocore (copied from this test's own
environment, botocore's data trimmed to Lambda's model), so it uses boto3 as a real function
would: credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

import iso_support as k
from iso_support import deploy, ok, ping, unique

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

ATTACKER = r'''
import json, os, urllib.request, urllib.error

ZIP = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="  # an empty zip, base64

def _raw(endpoint, method, path, body=None):
    req = urllib.request.Request(endpoint + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return {"status": r.status, "type": None}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "type": e.headers.get("x-amzn-ErrorType")}

def _boto(endpoint, call, **creds):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    lam = boto3.client("lambda", endpoint_url=endpoint,
                       config=Config(retries={"max_attempts": 1}), **creds)
    try:
        out = call(lam)
        return {"ok": True, "out": out}
    except ClientError as e:
        return {"ok": False, "code": e.response["Error"]["Code"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": e.response["Error"].get("Message", "")}

def attack(event, context):
    ep, victim, me = event["endpoint"], event["victim"], context.function_name
    create = json.dumps({"FunctionName": "iso-planted", "Runtime": "python3.11",
                         "Role": "arn:aws:iam::000000000000:role/x", "Handler": "app.handler",
                         "Code": {"ZipFile": ZIP}}).encode()
    out = {"key_id": os.environ.get("AWS_ACCESS_KEY_ID", "")}
    if event["mode"] == "unsigned":
        out["list"] = _raw(ep, "GET", "/2015-03-31/functions/")
        out["get_other"] = _raw(ep, "GET", f"/2015-03-31/functions/{victim}")
        out["delete_other"] = _raw(ep, "DELETE", f"/2015-03-31/functions/{victim}")
        out["create"] = _raw(ep, "POST", "/2015-03-31/functions", create)
    elif event["mode"] == "boto3":
        out["invoke_other"] = _boto(ep, lambda l: json.loads(
            l.invoke(FunctionName=victim, Payload=b'{"op": "ping"}')["Payload"].read()))
        out["own_config"] = _boto(ep, lambda l: l.get_function_configuration(
            FunctionName=me)["FunctionName"])
        out["other_config"] = _boto(ep, lambda l: l.get_function_configuration(FunctionName=victim))
        out["list"] = _boto(ep, lambda l: len(l.list_functions()["Functions"]))
        out["delete_other"] = _boto(ep, lambda l: l.delete_function(FunctionName=victim) and "deleted")
        # Keys of its own making (the aws CLI's usual dummies) are not the environment's.
        out["dummy_keys"] = _boto(ep, lambda l: len(l.list_functions()["Functions"]),
                                  aws_access_key_id="test", aws_secret_access_key="test",
                                  aws_session_token=None)
    return out
'''


def _vendored_boto3() -> dict[str, bytes]:
    """boto3, botocore (data: Lambda's model and the endpoint files only) and their pure-Python
    dependencies, as files for the function's zip."""
    files: dict[str, bytes] = {}
    for module in ("boto3", "botocore", "jmespath", "dateutil", "urllib3", "s3transfer", "six"):
        mod = importlib.import_module(module)
        path = Path(mod.__file__)
        if path.name != "__init__.py":
            files[path.name] = path.read_bytes()
            continue
        root = path.parent
        for f in root.rglob("*"):
            rel = f.relative_to(root.parent)
            parts = rel.parts
            if not f.is_file() or "__pycache__" in parts:
                continue
            if parts[:2] == ("botocore", "data") and len(parts) > 3 and parts[2] != "lambda":
                continue
            files[str(rel)] = f.read_bytes()
    return files


@pytest.fixture(scope="module")
def boto3_files():
    return _vendored_boto3()


def _deploy_pair(server, boto3_files):
    victim, attacker = unique("iso-api-victim"), unique("iso-api-attacker")
    deploy(server, victim, k.function_source("def attack(event, context):\n    return {}\n"))
    deploy(server, attacker, k.function_source(ATTACKER), memory=512,
           extra_files=boto3_files)
    return victim, attacker


def test_functions_cannot_drive_the_control_plane(server, boto3_files):
    victim, attacker = _deploy_pair(server, boto3_files)
    ep = server.endpoint

    raw = ok(server, attacker, {"mode": "unsigned", "endpoint": ep, "victim": victim})
    assert raw["key_id"].startswith("ASIA") and len(raw["key_id"]) == 20, raw
    for call in ("list", "get_other", "delete_other", "create"):
        assert raw[call] == {"status": 403, "type": "MissingAuthenticationTokenException"}, raw

    signed = ok(server, attacker, {"mode": "boto3", "endpoint": ep, "victim": victim})
    assert signed["invoke_other"]["ok"] is True, signed
    assert signed["invoke_other"]["out"]["pong"] is True, signed
    assert signed["own_config"] == {"ok": True, "out": attacker}, signed
    for call, action in (("other_config", "GetFunctionConfiguration"),
                         ("list", "ListFunctions"), ("delete_other", "DeleteFunction")):
        got = signed[call]
        assert got["ok"] is False and got["code"] == "AccessDeniedException", (call, signed)
        assert got["status"] == 403, (call, got)
        assert f"is not authorized to perform: lambda:{action}" in got["message"], got
        assert ":assumed-role/isolation-test/" + attacker in got["message"], got
    assert signed["dummy_keys"]["ok"] is False, signed
    assert signed["dummy_keys"]["status"] == 403, signed

    # Nothing changed: the victim lives, nothing was planted; the host's own unsigned client
    # (not an environment's user) still drives the API.
    c = server.client()
    assert c.get_function(FunctionName=victim)["Configuration"]["FunctionName"] == victim
    names = {f["FunctionName"] for f in c.list_functions()["Functions"]}
    assert "iso-planted" not in names
    ping(server, victim)
    ping(server, attacker)


def test_operators_can_opt_functions_in(server_factory, boto3_files):
    server = server_factory.start("api-full", extra_args=["--function-api-access", "full"])
    victim, attacker = _deploy_pair(server, boto3_files)
    signed = ok(server, attacker, {"mode": "boto3", "endpoint": server.endpoint,
                                   "victim": victim})
    assert signed["other_config"]["ok"] is True, signed
    assert signed["list"]["ok"] is True and signed["list"]["out"] >= 2, signed
    assert signed["delete_other"] == {"ok": True, "out": "deleted"}, signed
    names = {f["FunctionName"] for f in server.client().list_functions()["Functions"]}
    assert victim not in names
    # Unsigned requests from inside stay refused even then.
    raw = ok(server, attacker, {"mode": "unsigned", "endpoint": server.endpoint,
                                "victim": attacker})
    assert raw["list"]["status"] == 403, raw
