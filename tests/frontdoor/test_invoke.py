"""Requests through function URLs: the payload 2.0 event the function gets, the response Lambda
maps back, auth types, CORS, limits and errors — driven with `requests`, Node's `fetch` and
botocore's SigV4 signer."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import support
from fdsupport import ACCOUNT, create_python_function, public_url, unique

APP = r'''
import base64, json, time

def handler(event, context):
    path = event["rawPath"]
    if event["requestContext"]["http"]["method"] == "OPTIONS":
        raise RuntimeError("a preflight reached the function")
    if path == "/echo" or path.startswith("/echo/"):
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"event": event, "version": context.function_version})}
    if path == "/cookies":
        return {"statusCode": 201, "headers": {"x-custom": "yes", "content-type": "text/plain"},
                "cookies": ["a=1; Path=/", "b=2; HttpOnly"], "body": "made"}
    if path == "/string":
        return "Hello, world!"
    if path == "/object":
        return {"message": "hi"}
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/badbase64":
        return {"statusCode": 200, "body": "%%% not base64", "isBase64Encoded": True}
    if path == "/badstatus":
        return {"statusCode": "teapot"}
    if path == "/boom":
        raise ValueError("boom")
    if path == "/sleep":
        time.sleep(5)
    return {"statusCode": 404, "body": "no route " + path}
'''


@pytest.fixture(scope="module")
def fn(lam):
    return create_python_function(lam, APP, Timeout=2)


@pytest.fixture(scope="module")
def url(lam, fn):
    return public_url(lam, fn, Cors={"AllowOrigins": ["https://app.example"],
                                     "AllowMethods": ["GET", "POST"],
                                     "AllowHeaders": ["content-type", "x-token"],
                                     "ExposeHeaders": ["x-custom"], "MaxAge": 300})


def url_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def echo(url: str, suffix: str = "echo", **kwargs) -> dict:
    r = requests.request(kwargs.pop("method", "GET"), url + suffix, timeout=60, **kwargs)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def test_event_is_payload_2_0(url, fn):
    uid = url_id(url)
    body = json.dumps({"k": [1, 2]})
    got = echo(url, "echo/a%20b/c?x=1&x=2&y=z%26w&flag", method="POST", data=body,
               headers={"Content-Type": "application/json", "Cookie": "s=1; t=2",
                        "User-Agent": "fd-test/1", "X-Multi": "one"})
    e = got["event"]
    assert e["version"] == "2.0" and e["routeKey"] == "$default"
    assert e["rawPath"] == "/echo/a%20b/c"  # no /lambda-url/<id> prefix
    assert e["rawQueryString"] == "x=1&x=2&y=z%26w&flag"
    assert e["queryStringParameters"] == {"x": "1,2", "y": "z&w", "flag": ""}
    assert e["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in e["headers"]
    assert e["headers"]["content-type"] == "application/json"
    assert e["headers"]["x-multi"] == "one"
    assert all(k == k.lower() for k in e["headers"])
    assert e["body"] == body and e["isBase64Encoded"] is False
    assert e["pathParameters"] is None and e["stageVariables"] is None
    c = e["requestContext"]
    assert c["accountId"] == ACCOUNT and c["apiId"] == uid
    assert c["domainName"] == f"{uid}.lambda-url.us-east-1.on.aws" and c["domainPrefix"] == uid
    assert c["http"] == {"method": "POST", "path": "/echo/a%20b/c", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "fd-test/1"}
    assert c["routeKey"] == "$default" and c["stage"] == "$default"
    assert c["authentication"] is None and c["authorizer"] is None
    assert isinstance(c["timeEpoch"], int) and c["time"].endswith(" +0000")
    assert got["version"] == "$LATEST"


def test_repeated_headers_are_comma_joined(url):
    # http.client sends a list of tuples as repeated header lines.
    import http.client
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    conn.putrequest("GET", parsed.path + "echo")
    conn.putheader("X-Dup", "a")
    conn.putheader("X-Dup", "b")
    conn.endheaders()
    res = conn.getresponse()
    assert res.status == 200
    assert json.loads(res.read())["event"]["headers"]["x-dup"] == "a,b"


def test_binary_and_form_bodies_are_base64(url):
    blob = bytes(range(256)) * 4
    e = echo(url, method="POST", data=blob,
             headers={"Content-Type": "application/octet-stream"})["event"]
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == blob
    e = echo(url, method="POST", data={"a": "1", "b": "x y"})["event"]  # form post
    assert e["isBase64Encoded"] is True
    assert base64.b64decode(e["body"]) == b"a=1&b=x+y"
    e = echo(url, method="POST", data="plain text", headers={"Content-Type": "text/plain"})["event"]
    assert e["body"] == "plain text" and e["isBase64Encoded"] is False
    e = echo(url)["event"]
    assert "body" not in e and e["isBase64Encoded"] is False


def test_response_mapping(url):
    r = requests.get(url + "cookies", timeout=60)
    assert r.status_code == 201 and r.text == "made"
    assert r.headers["x-custom"] == "yes"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert r.cookies.get("a") == "1" and r.cookies.get("b") == "2"
    assert r.headers["x-amzn-RequestId"]

    r = requests.get(url + "string", timeout=60)  # inferred: the JSON text, quotes included
    assert r.status_code == 200 and r.text == '"Hello, world!"'
    assert r.headers["content-type"] == "application/json"
    r = requests.get(url + "object", timeout=60)
    assert r.status_code == 200 and r.json() == {"message": "hi"}

    r = requests.get(url + "binary", timeout=60)
    assert r.status_code == 200 and r.content == bytes(range(256))
    assert r.headers["content-type"] == "application/octet-stream"

    r = requests.get(url + "nowhere", timeout=60)
    assert r.status_code == 404 and r.text == "no route /nowhere"

    r = requests.head(url + "cookies", timeout=60)
    assert r.status_code == 201 and r.content == b""


@pytest.mark.parametrize("path", ["boom", "badbase64", "badstatus", "sleep"])
def test_function_failures_are_502(url, path):
    r = requests.get(url + path, timeout=60)
    assert r.status_code == 502, (r.status_code, r.text)
    assert r.text == "Internal Server Error"
    assert r.headers["x-amzn-RequestId"]


def test_cors(url):
    pre = requests.options(url + "anything", timeout=60, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-Token"})
    # Answered without invoking (the function raises on OPTIONS).
    assert pre.status_code == 200 and pre.content == b""
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert pre.headers["access-control-allow-methods"] == "GET,POST"
    assert pre.headers["access-control-allow-headers"] == "content-type,x-token"
    assert pre.headers["access-control-max-age"] == "300"
    denied = requests.options(url + "anything", timeout=60, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert denied.status_code == 200 and "access-control-allow-origin" not in denied.headers

    r = requests.get(url + "cookies", headers={"Origin": "https://app.example"}, timeout=60)
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-expose-headers"] == "x-custom"
    r = requests.get(url + "cookies", headers={"Origin": "https://evil.example"}, timeout=60)
    assert "access-control-allow-origin" not in r.headers


def test_host_form(server, url):
    """`<url-id>.lambda-url.<region>.localhost` routes the same URL; the whole path is the
    function's."""
    host = f"{url_id(url)}.lambda-url.us-east-1.localhost:{server.port}"
    r = requests.get(f"{server.url}/echo/x?q=1", headers={"Host": host}, timeout=60)
    assert r.status_code == 200, r.text
    e = r.json()["event"]
    assert e["rawPath"] == "/echo/x" and e["queryStringParameters"] == {"q": "1"}
    assert e["headers"]["host"] == host
    r = requests.get(f"{server.url}/", headers={"Host": f"{'0' * 32}.lambda-url.us-east-1.localhost"},
                     timeout=60)
    assert r.status_code == 404


def test_node_fetch(url):
    script = """
const url = process.argv[1];
(async () => {
  const r = await fetch(url + 'echo/node?n=1', {method: 'POST', body: JSON.stringify({from: 'node'}),
    headers: {'content-type': 'application/json'}});
  const j = await r.json();
  const c = await fetch(url + 'cookies');
  console.log(JSON.stringify({status: r.status, body: j.event.body, path: j.event.rawPath,
    cookies: c.headers.getSetCookie(), text: await c.text()}));
})().catch(e => { console.error(e); process.exit(1); });
"""
    out = subprocess.run(["node", "-e", script, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got == {"status": 200, "body": '{"from":"node"}', "path": "/echo/node",
                   "cookies": ["a=1; Path=/", "b=2; HttpOnly"], "text": "made"}


def test_curl(url):
    out = subprocess.run(["curl", "-sS", "-i", "-d", "x=1", url + "echo"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 200")


def test_limits_and_unknown_urls(url, server):
    big = b"x" * (6 * 1024 * 1024 + 1)
    r = requests.post(url + "echo", data=big, headers={"Content-Type": "text/plain"}, timeout=120)
    assert r.status_code == 413
    assert "Request must be smaller than" in r.json()["Message"]
    # Bodies near the limit: base64 makes the event larger than 6 MB, still a 413 not a 500.
    r = requests.post(url + "echo", data=b"\x00" * (5 * 1024 * 1024),
                      headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 413
    assert requests.get(f"{server.url}/lambda-url/{'0' * 32}/", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/lambda-url/NOT-AN-ID/", timeout=30).status_code == 404


def test_public_url_needs_the_resource_policy(lam):
    fn = create_python_function(lam, APP)
    u = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    r = requests.get(u + "echo", timeout=60)
    assert r.status_code == 403 and r.json() == {"Message": "Forbidden"}
    # A statement for another principal does not open it.
    lam.add_permission(FunctionName=fn, StatementId="acct", Principal=ACCOUNT,
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    assert requests.get(u + "echo", timeout=60).status_code == 403
    lam.add_permission(FunctionName=fn, StatementId="pub", Principal="*",
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    assert requests.get(u + "echo", timeout=60).status_code == 200
    lam.remove_permission(FunctionName=fn, StatementId="pub")
    assert requests.get(u + "echo", timeout=60).status_code == 403


def test_throttled_is_429(lam):
    fn = create_python_function(lam, APP)
    u = public_url(lam, fn)
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=0)
    r = requests.get(u + "echo", timeout=60)
    assert r.status_code == 429 and r.json() == {"Message": "Rate Exceeded."}
    lam.delete_function_concurrency(FunctionName=fn)
    assert requests.get(u + "echo", timeout=60).status_code == 200


def test_alias_url_runs_the_alias_version(lam):
    fn = create_python_function(lam, APP)
    v1 = lam.publish_version(FunctionName=fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v1)
    u = public_url(lam, fn, qualifier="live")
    assert echo(u)["version"] == v1
    # The unqualified function's policy does not open the alias's URL: it has its own.
    other = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    assert requests.get(other + "echo", timeout=60).status_code == 403


@pytest.fixture(scope="module")
def shared(server_factory, tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text("AKIDFRONTDOOR0000001 front-door-secret\n")
    srv = server_factory(extra=["--shared", "--credentials", str(creds)])
    yield srv
    support.stop_cleanly(srv)


def signed(method: str, url: str, body: bytes = b"", key="AKIDFRONTDOOR0000001",
           secret="front-door-secret", headers=None) -> requests.Response:
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    return requests.request(method, url, data=body, headers=dict(req.headers), timeout=60)


def test_aws_iam_urls_verify_sigv4(shared):
    lam = boto3.client("lambda", endpoint_url=shared.url, aws_access_key_id="AKIDFRONTDOOR0000001",
                       aws_secret_access_key="front-door-secret", region_name="us-east-1",
                       config=Config(retries={"max_attempts": 1}))
    fn = create_python_function(lam, APP)
    u = lam.create_function_url_config(FunctionName=fn, AuthType="AWS_IAM")["FunctionUrl"]
    assert requests.get(u + "echo", timeout=60).status_code == 403
    r = signed("POST", u + "echo/signed?a=1", b'{"x":1}', headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    iam = r.json()["event"]["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIDFRONTDOOR0000001" and iam["accountId"] == ACCOUNT
    assert r.json()["event"]["body"] == '{"x":1}'
    bad = signed("GET", u + "echo", secret="wrong-secret")
    assert bad.status_code == 403
    unknown = signed("GET", u + "echo", key="AKIDUNKNOWN000000001")
    assert unknown.status_code == 403
    # A signature for another body does not pass.
    req = AWSRequest(method="POST", url=u + "echo", data=b"one")
    SigV4Auth(Credentials("AKIDFRONTDOOR0000001", "front-door-secret"), "lambda", "us-east-1").add_auth(req)
    tampered = requests.post(u + "echo", data=b"two", headers=dict(req.headers), timeout=60)
    assert tampered.status_code == 403
