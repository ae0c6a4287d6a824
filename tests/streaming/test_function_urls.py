"""RESPONSE_STREAM function URLs driven with `requests` (stream=True): the HTTP prelude becomes
the status line and headers, the body arrives as the function writes it."""

from __future__ import annotations

import time

import pytest
import requests

import kindling_e2e as k


@pytest.fixture(scope="session")
def stream_url(lam, node_fn) -> str:
    """A RESPONSE_STREAM URL (AuthType NONE, with the public statement) of the Node function."""
    url = lam.create_function_url_config(FunctionName=node_fn, AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    lam.add_permission(FunctionName=node_fn, StatementId="public-url",
                       Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    return url["FunctionUrl"]


def post(url: str, event: dict) -> requests.Response:
    return requests.post(url, json=event, stream=True, timeout=60)


def test_prelude_sets_status_headers_and_cookies(stream_url):
    prelude = {"statusCode": 201, "headers": {"content-type": "text/plain", "x-kind": "stream"},
               "cookies": ["a=1; Path=/", "b=2"]}
    r = post(stream_url, {"chunks": 3, "http": prelude})
    assert r.status_code == 201
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-kind"] == "stream"
    assert r.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    assert r.headers.get("transfer-encoding") == "chunked"
    assert r.headers.get("x-amzn-requestid")
    assert r.content == b"a" * 16 + b"b" * 16 + b"c" * 16


def test_bytes_arrive_as_the_function_writes_them(stream_url):
    post(stream_url, {"chunks": 1, "http": {"statusCode": 200}}).content  # warm up
    started = time.monotonic()
    r = post(stream_url, {"chunks": 5, "size": 10, "delay_ms": 400,
                          "http": {"statusCode": 200, "headers": {"content-type": "text/plain"}}})
    head_at = time.monotonic() - started
    arrivals = []
    for piece in r.iter_content(chunk_size=None):
        arrivals.append((time.monotonic() - started, piece))
    done_at = time.monotonic() - started
    body = b"".join(p for _, p in arrivals)
    assert body == b"".join(bytes([97 + i]) * 10 for i in range(5))
    first_byte = arrivals[0][0]
    # Time to first byte well before the function ends (4 pauses of 0.4 s after the first
    # write); loose bounds for a loaded machine.
    assert done_at - first_byte >= 1.2, (head_at, arrivals, done_at)
    assert head_at < done_at - 1.2, "the head waits for the prelude only, not for the body"


def test_a_stream_without_prelude_is_a_200_with_the_functions_content_type(stream_url):
    r = post(stream_url, {"chunks": 2, "content_type": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv"
    assert r.content == b"a" * 16 + b"b" * 16


def test_an_error_before_the_head_is_a_502(stream_url):
    r = post(stream_url, {"fail_after": 0, "http": {"statusCode": 200}})
    assert r.status_code == 502


def test_an_error_mid_stream_cuts_the_body(stream_url):
    r = post(stream_url, {"chunks": 4, "fail_after": 2, "http": {"statusCode": 200}})
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        r.content


def test_a_large_stream_through_the_url(stream_url):
    size = 256 * 1024
    r = post(stream_url, {"chunks": 40, "size": size, "http": {"statusCode": 200}})
    total = 0
    for piece in r.iter_content(chunk_size=64 * 1024):
        total += len(piece)
    assert total == 40 * size


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_holds_the_function_back(server, stream_url):
    """The back-pressure invariant end to end: while the client does not read, Kindling does
    not take the function's output into memory (it stays in a few frames and the sockets)."""
    size = 256 * 1024
    chunks = 64  # 16 MiB, past the 6 MiB burst: at 8 MiB/s here, but a stalled client is slower
    post(stream_url, {"chunks": 1, "http": {"statusCode": 200}}).content  # warm up
    before = _rss_kib(server.proc.pid)
    r = post(stream_url, {"chunks": chunks, "size": size, "http": {"statusCode": 200}})
    first = r.raw.read(1024 * 1024)
    assert len(first) == 1024 * 1024
    time.sleep(1.5)  # the client stalls; the function keeps trying to write
    stalled = _rss_kib(server.proc.pid)
    rest = 0
    while True:
        piece = r.raw.read(1024 * 1024)
        if not piece:
            break
        rest += len(piece)
    assert len(first) + rest == chunks * size
    growth_mib = (stalled - before) / 1024
    assert growth_mib < 8, f"Kindling's RSS grew {growth_mib:.1f} MiB while the client stalled"
