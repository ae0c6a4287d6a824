"""SigV4 verification ("shared" mode): boto3 with the right keys works; wrong or missing
signatures get AWS's 403 answers; a server without credentials accepts anything."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import support

KEY_ID = "AKIDKINDLINGTEST0001"
SECRET = "kindling/test/secret+key"


@pytest.fixture(scope="module")
def shared_server(kindling_binary, tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    creds = root / "credentials"
    creds.write_text(f"# test keys\n{KEY_ID} {SECRET}\n\n[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = other-secret\n")
    srv = support.KindlingServer(
        kindling_binary, root / "data", root / "server.log",
        extra_args=["--shared", "--credentials", str(creds)],
    ).start()
    yield srv
    assert srv.stop() == 0


def client(url: str, key_id: str, secret: str):
    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=support.REGION
    ).client(
        "lambda", endpoint_url=url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_right_keys_work_for_every_kind_of_request(shared_server):
    lam = client(shared_server.url, KEY_ID, SECRET)
    name = support.unique("auth")
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=support.ROLE, Handler="app.handler",
        Code={"ZipFile": support.make_zip()},
    )
    assert created["FunctionName"] == name
    # A qualified name in the path (percent-encoded ':') and a query string are signed too.
    lam.publish_version(FunctionName=name)
    assert lam.get_function_configuration(FunctionName=f"{name}:1")["Version"] == "1"
    lam.tag_resource(Resource=support.function_arn(name), Tags={"a": "1", "b": "2"})
    lam.untag_resource(Resource=support.function_arn(name), TagKeys=["a", "b"])
    assert lam.list_functions(MaxItems=5)["Functions"]
    other = client(shared_server.url, "AKIDOTHER", "other-secret")
    assert other.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def expect_auth_error(call, code: str, status: int = 403):
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code


def test_wrong_secret_is_an_invalid_signature(shared_server):
    lam = client(shared_server.url, KEY_ID, "not-the-secret")
    expect_auth_error(lambda: lam.list_functions(), "InvalidSignatureException")


def test_unknown_key_is_unrecognized(shared_server):
    lam = client(shared_server.url, "AKIDUNKNOWN", SECRET)
    expect_auth_error(lambda: lam.list_functions(), "UnrecognizedClientException")


def test_unsigned_requests_are_refused(shared_server):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{shared_server.url}/2015-03-31/functions/")
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_failed_signature_changes_nothing(shared_server):
    bad = client(shared_server.url, KEY_ID, "wrong")
    name = support.unique("nope")
    expect_auth_error(
        lambda: bad.create_function(
            FunctionName=name, Runtime="python3.12", Role=support.ROLE, Handler="app.handler",
            Code={"ZipFile": support.make_zip()},
        ),
        "InvalidSignatureException",
    )
    good = client(shared_server.url, KEY_ID, SECRET)
    with pytest.raises(good.exceptions.ResourceNotFoundException):
        good.get_function(FunctionName=name)


def test_shared_mode_needs_credentials(kindling_binary, tmp_path):
    srv = support.KindlingServer(kindling_binary, tmp_path / "d", tmp_path / "log", extra_args=["--shared"])
    with pytest.raises(RuntimeError, match="exited with status"):
        srv.start(timeout=10)
    assert "--shared requires --credentials" in srv.log_path.read_text()


def _signed_invoke(url: str, name: str, payload: bytes) -> tuple[str, dict[str, str]]:
    """A synchronous invoke signed by botocore as boto3 would send it (no invocation type
    header: RequestResponse)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    target = f"{url}/2015-03-31/functions/{name}/invocations"
    req = AWSRequest(method="POST", url=target, data=payload,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY_ID, SECRET), "lambda", support.REGION).add_auth(req)
    return target, dict(req.prepare().headers)


def _send(target: str, headers: dict[str, str], payload: bytes):
    request = urllib.request.Request(target, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - test code
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_unsigned_amz_headers_added_to_a_signed_request_are_refused(shared_server):
    lam = client(shared_server.url, KEY_ID, SECRET)
    name = support.unique("replay")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=support.ROLE,
                        Handler="lambda_function.handler", Code={"ZipFile": support.make_zip()})
    payload = b'{"n": 1}'
    target, headers = _signed_invoke(shared_server.url, name, payload)
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert "x-amz-invocation-type" not in signed

    # Turning the captured synchronous invoke into an asynchronous one is refused...
    for extra in ({"X-Amz-Invocation-Type": "Event"}, {"X-Amz-Log-Type": "Tail"},
                  {"X-Amz-Client-Context": "e30="}):
        status, got, body = _send(target, {**headers, **extra}, payload)
        assert status == 403, (extra, status, body)
        assert got["x-amzn-errortype"] == "InvalidSignatureException", got
        message = json.loads(body)["message"]
        assert "were not signed" in message and next(iter(extra)).lower() in message, message
    # ... while the request as signed (replayed within the clock window, as AWS allows) works,
    # and headers botocore never signs may still be added.
    status, got, body = _send(target, {**headers, "X-Amzn-Trace-Id": "Root=1-5e1b4151-5ac6c58f5"},
                              payload)
    assert status == 200, (status, body)
    assert "x-amz-function-error" not in got
