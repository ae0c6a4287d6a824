"""The edge of the API: every answer in Lambda's wire format (also for requests hyper cannot
parse), and code locations that are presigned, expiring URLs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from support import create_function, make_zip, unique

# --------------------------------------------------------------------------------------------
# Malformed requests on a raw socket: status, x-amzn-ErrorType, x-amzn-RequestId, JSON body.
# --------------------------------------------------------------------------------------------

LIST = b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# In shared mode (KINDLING_CONFORMANCE_SHARED=1) a well-formed unsigned request is refused as
# such before anything else is looked at.
SHARED = os.environ.get("KINDLING_CONFORMANCE_SHARED") == "1"
UNSIGNED = (403, "MissingAuthenticationTokenException")

MALFORMED = {
    # name: (request bytes, expected status, expected x-amzn-ErrorType)
    "utf8-invalid-percent-name": (
        b"GET /2015-03-31/functions/%ff%fe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
        "ValidationException"),
    "raw-bytes-in-path": (
        b"GET /2015-03-31/functions/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
        "ValidationException"),
    "control-byte-in-path": (
        b"GET /2015-03-31/functions/a\x01b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
        "ValidationException"),
    "negative-content-length": (
        b"POST /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n", 400,
        "ValidationException"),
    "two-content-lengths": (
        b"POST /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n"
        b"Content-Length: 2\r\n\r\nab", 400, "ValidationException"),
    "bad-method-token": (b"G(T /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
                         "ValidationException"),
    "http-version-2": (b"GET /2015-03-31/functions HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 400,
                       "ValidationException"),
    "header-without-colon": (LIST + b"NoColonHere\r\n\r\n", 400, "ValidationException"),
    "name-of-6000-characters": (
        b"GET /2015-03-31/functions/" + b"n" * 6000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        *(UNSIGNED if SHARED else (400, "ValidationException"))),
    "uri-of-70000-bytes": (
        b"GET /2015-03-31/functions/" + b"%F0%9F%94%A5" * 6000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        431, "ValidationException"),
    "headers-over-64-kib": (
        LIST + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 1000) for i in range(80)) + b"\r\n",
        431, "ValidationException"),
    "more-than-100-headers": (
        LIST + b"".join(b"X-H-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431,
        "ValidationException"),
    "unknown-method": (b"BREW /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                       *(UNSIGNED if SHARED else (404, "UnknownOperationException"))),
    # (`/nothing/here` would be S3 path-style addressing: bucket `nothing`, key `here`.)
    "unknown-path": (b"GET /2015-03-31/nothing/here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     *(UNSIGNED if SHARED else (404, "UnknownOperationException"))),
}


def exchange(url: str, raw: bytes, timeout: float = 10.0) -> bytes:
    """Sends `raw` and reads until the server closes the connection (or stops sending)."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(raw)
        s.settimeout(3)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Splits a byte stream into (status, headers, body) by Content-Length."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {data[:300]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def assert_lambda_error(status, headers, body, want_status, want_type):
    assert status == want_status, (status, headers, body[:300])
    assert headers.get("x-amzn-errortype") == want_type, headers
    assert headers.get("x-amzn-requestid"), headers
    doc = json.loads(body)
    assert doc["Type"] == "User", doc
    assert (doc.get("message") or doc.get("Message")), doc


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_get_lambda_errors(endpoint, case):
    raw, want_status, want_type = MALFORMED[case]
    responses = parse_responses(exchange(endpoint, raw))
    assert len(responses) == 1, responses
    assert_lambda_error(*responses[0], want_status, want_type)


def test_a_malformed_request_after_a_good_one_on_the_same_connection(endpoint):
    raw = LIST + b"\r\n" + b"GET /x\x01y HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    first, bad = parse_responses(exchange(endpoint, raw))
    if SHARED:
        assert_lambda_error(*first, *UNSIGNED)
    else:
        ok_status, ok_headers, ok_body = first
        assert ok_status == 200 and "Functions" in json.loads(ok_body)
        assert ok_headers.get("x-amzn-requestid")
    assert_lambda_error(*bad, 400, "ValidationException")


def test_head_requests_are_unknown_operations(endpoint):
    data = exchange(endpoint, b"HEAD /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = data.decode("latin-1")
    assert head.startswith("HTTP/1.1 404"), head
    assert "x-amzn-errortype: UnknownOperationException" in head


# --------------------------------------------------------------------------------------------
# Code locations: presigned (SigV4 query, S3-style), expiring after 10 minutes.
# --------------------------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - test code
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_code_location_is_presigned_and_downloads_with_any_client(lam, cli, tmp_path):
    fn = create_function(lam)
    location = lam.get_function(FunctionName=fn.name)["Code"]["Location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64
    # urllib (what boto3 users do), curl, and the URL the aws CLI prints.
    status, headers, body = fetch(location)
    assert status == 200 and body == fn.zip
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test"
    out = tmp_path / "code.zip"
    subprocess.run([curl, "-sSf", "-o", str(out), location], check=True, timeout=30)
    assert out.read_bytes() == fn.zip
    cli_location = cli.ok("get-function", "--function-name", fn.name)["Code"]["Location"]
    subprocess.run([curl, "-sSf", "-o", str(out), cli_location], check=True, timeout=30)
    assert out.read_bytes() == fn.zip


def test_layer_content_location_is_presigned(lam):
    name = unique("layer")
    zip_bytes = make_zip({"python/mod.py": "X = 1\n"})
    published = lam.publish_layer_version(LayerName=name, Content={"ZipFile": zip_bytes})
    status, _, body = fetch(published["Content"]["Location"])
    assert status == 200 and body == zip_bytes
    got = lam.get_layer_version(LayerName=name, VersionNumber=published["Version"])
    assert "X-Amz-Signature=" in got["Content"]["Location"]
    status, _, body = fetch(got["Content"]["Location"])
    assert status == 200 and body == zip_bytes
    bare = got["Content"]["Location"].split("?", 1)[0]
    assert fetch(bare)[0] == 403


def _tampered(location: str) -> dict[str, str]:
    base, _, query = location.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    other_blob = base[:-1] + ("0" if base[-1] != "0" else "1")

    def q(**changes):
        return urllib.parse.urlencode({**params, **changes})

    return {
        "unsigned": base,
        "other-package": f"{other_blob}?{query}",
        "longer-expiry": f"{base}?{q(**{'X-Amz-Expires': '604800'})}",
        "earlier-date": f"{base}?{q(**{'X-Amz-Date': '20200101T000000Z'})}",
        "flipped-signature": f"{base}?{q(**{'X-Amz-Signature': params['X-Amz-Signature'][::-1]})}",
        "other-key": f"{base}?{q(**{'X-Amz-Credential': params['X-Amz-Credential'].replace('KINDLING', 'KINDLINX')})}",
    }


@pytest.mark.parametrize("how", ["unsigned", "other-package", "longer-expiry", "earlier-date",
                                 "flipped-signature", "other-key"])
def test_unsigned_or_tampered_code_urls_are_refused(lam, how):
    fn = create_function(lam)
    location = lam.get_function(FunctionName=fn.name)["Code"]["Location"]
    status, headers, body = fetch(_tampered(location)[how])
    assert status == 403, (status, body[:300])
    assert headers.get("x-amzn-errortype") == "AccessDeniedException", headers
    assert headers.get("x-amzn-requestid")
    message = json.loads(body)["Message"]
    assert "code download URL is not valid" in message, message
    assert fn.zip not in body
