"""InvokeWithResponseStream through boto3: event-stream framing, time to first byte, size and
bandwidth limits, errors mid-stream, buffered functions, the Runtime API's trailers."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from botocore.exceptions import ClientError

import kindling_e2e as k
from conftest import BANDWIDTH, BURST, MAX_STREAM


class Streamed:
    """What one invoke_with_response_stream call delivered, with arrival times."""

    def __init__(self, lam, name: str, event=None, **kwargs):
        started = time.monotonic()
        args = {"FunctionName": name, **kwargs}
        if event is not None:
            args["Payload"] = json.dumps(event).encode()
        resp = lam.invoke_with_response_stream(**args)
        self.status = resp["StatusCode"]
        self.version = resp.get("ExecutedVersion")
        self.content_type = resp.get("ResponseStreamContentType")
        self.headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.chunks: list[bytes] = []
        self.times: list[float] = []
        self.complete: dict | None = None
        self.complete_at = None
        digest = hashlib.sha256()
        self.size = 0
        for event_ in resp["EventStream"]:
            now = time.monotonic() - started
            if "PayloadChunk" in event_:
                assert self.complete is None, "a PayloadChunk after InvokeComplete"
                payload = event_["PayloadChunk"]["Payload"]
                digest.update(payload)
                self.size += len(payload)
                if len(self.chunks) < 10_000:
                    self.chunks.append(payload)
                self.times.append(now)
            elif "InvokeComplete" in event_:
                assert self.complete is None, "two InvokeComplete events"
                self.complete = event_["InvokeComplete"]
                self.complete_at = now
            else:
                raise AssertionError(f"unexpected event {event_!r}")
        assert self.complete is not None, "the stream ended without InvokeComplete"
        self.sha256 = digest.hexdigest()

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def error_code(self):
        return self.complete.get("ErrorCode")

    @property
    def log(self) -> str | None:
        log = self.complete.get("LogResult")
        return base64.b64decode(log).decode("utf-8", "replace") if log else None


def expected(chunks: int, size: int) -> bytes:
    return b"".join(bytes([97 + i % 26]) * size for i in range(chunks))


def test_chunks_arrive_as_the_node_function_writes_them(lam, node_fn):
    # Warm the environment: the timing below is about streaming, not the cold start.
    Streamed(lam, node_fn, {"chunks": 1})
    s = Streamed(lam, node_fn, {"chunks": 5, "size": 100, "delay_ms": 400})
    assert s.status == 200
    assert s.version == "$LATEST"
    assert s.error_code is None, s.complete
    assert s.body == expected(5, 100)
    # The first chunk arrives well before the function finishes (4 pauses of 0.4 s after it):
    # loose bounds, the machine may be loaded.
    assert s.complete_at - s.times[0] >= 1.2, (s.times, s.complete_at)
    assert s.times[-1] - s.times[0] >= 1.2, s.times
    assert len(s.chunks) >= 5, "each write is delivered as it happens, not coalesced at the end"


def test_the_event_stream_carries_the_response_headers(lam, node_fn):
    s = Streamed(lam, node_fn, {"chunks": 2, "content_type": "text/plain"})
    assert s.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert s.headers.get("x-amz-executed-version") == "$LATEST"
    assert s.headers.get("x-amzn-requestid")
    assert s.body == expected(2, 16)


def test_a_20_mib_stream_is_delivered_whole_at_lambdas_bandwidth(lam, node_fn):
    size = 64 * 1024
    chunks = 20 * 1024 * 1024 // size
    started = time.monotonic()
    s = Streamed(lam, node_fn, {"chunks": chunks, "size": size})
    elapsed = time.monotonic() - started
    assert s.error_code is None, s.complete
    assert s.size == chunks * size
    assert s.sha256 == hashlib.sha256(expected(chunks, size)).hexdigest()
    # Past the first 6 MiB the stream is held to --stream-bandwidth (8 MiB/s here).
    floor = (chunks * size - BURST) / BANDWIDTH
    assert elapsed >= floor * 0.9, f"20 MiB in {elapsed:.2f}s, under the bandwidth floor {floor:.2f}s"


def test_past_the_size_limit_the_stream_ends_with_lambdas_error(lam, node_fn):
    size = 64 * 1024
    chunks = 22 * 1024 * 1024 // size
    s = Streamed(lam, node_fn, {"chunks": chunks, "size": size})
    assert s.error_code == "Function.ResponseSizeTooLarge", s.complete
    assert str(MAX_STREAM) in s.complete["ErrorDetails"]
    assert 0 < s.size <= MAX_STREAM
    # The environment stays usable.
    again = Streamed(lam, node_fn, {"chunks": 1})
    assert again.error_code is None and again.body == expected(1, 16)


def test_an_error_mid_stream_reaches_invoke_complete(lam, node_fn):
    s = Streamed(lam, node_fn, {"chunks": 4, "fail_after": 2})
    assert s.body == expected(2, 16), "what was written before the error is delivered"
    assert s.error_code == "Error", s.complete
    details = json.loads(s.complete["ErrorDetails"])
    assert details["errorMessage"] == "failed after 2 chunks"
    assert details["errorType"] == "Error"


def test_an_error_before_any_byte_is_a_plain_function_error(lam, node_fn):
    s = Streamed(lam, node_fn, {"fail_after": 0}, LogType="Tail")
    assert s.chunks == []
    assert s.error_code == "Error", s.complete
    assert json.loads(s.complete["ErrorDetails"])["errorMessage"] == "failed after 0 chunks"
    assert "REPORT RequestId:" in s.log


def test_a_timeout_mid_stream(lam, node_short_fn):
    s = Streamed(lam, node_short_fn, {"chunks": 1, "sleep_ms": 10_000})
    assert s.body == expected(1, 16)
    assert s.error_code == "Sandbox.Timedout", s.complete
    assert "Task timed out after 2.00 seconds" in s.complete["ErrorDetails"]


def test_log_tail_and_pipeline_and_prelude_bytes(lam, node_fn):
    s = Streamed(lam, node_fn, {"chunks": 3, "pipeline": True}, LogType="Tail")
    assert s.error_code is None, s.complete
    assert s.body == expected(3, 16)
    assert "START RequestId:" in s.log and "REPORT RequestId:" in s.log
    # Through InvokeWithResponseStream the function URL prelude is part of the bytes.
    prelude = {"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["c=1"]}
    s = Streamed(lam, node_fn, {"chunks": 1, "http": prelude})
    meta, _, rest = s.body.partition(b"\0" * 8)
    assert json.loads(meta) == prelude
    assert rest == expected(1, 16)


def test_a_buffered_function_answers_in_one_chunk(lam, node_buffered_fn):
    s = Streamed(lam, node_buffered_fn, {"x": 1}, LogType="Tail")
    assert s.error_code is None, s.complete
    assert len(s.chunks) == 1
    assert json.loads(s.body) == {"echo": {"x": 1}}
    assert "REPORT RequestId:" in s.log


def test_plain_invoke_of_a_streaming_function_gets_the_whole_body(lam, node_fn):
    inv = k.invoke(lam, node_fn, {"chunks": 4, "size": 1000})
    assert inv.status == 200 and inv.function_error is None, inv.payload[:300]
    assert inv.payload == expected(4, 1000)
    # Over the buffered limit: Lambda's size error.
    inv = k.invoke(lam, node_fn, {"chunks": 7, "size": 1024 * 1024})
    assert inv.function_error == "Unhandled"
    assert inv.json["errorType"] == "Function.ResponseSizeTooLarge"


def test_rust_lambda_runtime_streaming(lam, rust_fn):
    Streamed(lam, rust_fn, {"chunks": 1})
    s = Streamed(lam, rust_fn, {"chunks": 4, "size": 64, "delay_ms": 400})
    assert s.error_code is None, s.complete
    # lambda_runtime writes the HTTP prelude (status, headers) before the body.
    meta, _, rest = s.body.partition(b"\0" * 8)
    assert json.loads(meta)["statusCode"] == 200
    assert rest == expected(4, 64)
    assert s.complete_at - s.times[0] >= 0.9, (s.times, s.complete_at)
    # An aborted body: lambda_runtime 1.5 writes its error report ("Lambda-Runtime-Function-
    # Error-Type: Runtime.StreamError ...") as body bytes, not as HTTP trailers, and ends the
    # body normally; the bytes reach the caller verbatim and the invocation succeeds.
    s = Streamed(lam, rust_fn, {"chunks": 4, "size": 8, "fail_after": 2})
    _meta, _, rest = s.body.partition(b"\0" * 8)
    assert rest.startswith(expected(2, 8))
    assert b"Lambda-Runtime-Function-Error-Type: Runtime.StreamError" in rest
    assert s.error_code is None, s.complete


def test_request_errors_are_lambda_errors(lam, node_fn):
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=node_fn, InvocationType="Event")
    assert e.value.response["Error"]["Code"] in ("ValidationException", "InvalidParameterValueException")
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=k.unique("missing"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=node_fn, Payload=b"{not json")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"
    dry = lam.invoke_with_response_stream(FunctionName=node_fn, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
