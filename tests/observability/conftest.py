"""Harness for the observability suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
loopback port with a temporary data directory (the conformance suite's `KindlingServer`), and
points boto3, the aws CLI and the SAM CLI at it with `AWS_ENDPOINT_URL` only. Every response a
boto3 client made here receives must carry `x-amzn-RequestId` and must not be a 5xx.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import harness  # noqa: E402  (the client suites' shared harness)
import support  # noqa: E402  (the conformance suite's server harness)

harness.isolate_aws_env()
os.environ["SAM_CLI_TELEMETRY"] = "0"

RESPONSES = harness.ResponseLog()
client = RESPONSES.client
pytest_runtest_call = RESPONSES.runtest_call_hook()
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    yield from harness.server_factory(tmp_path_factory)


def _hex_ids(value):
    """The protobuf JSON mapping writes bytes as base64; OTLP/JSON writes ids as hex."""
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    if isinstance(value, dict):
        return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId")
                else _hex_ids(v) for k, v in value.items()}
    return value


def decode_otlp(content_type: str, body: bytes) -> dict:
    """An OTLP/HTTP trace export in the OTLP/JSON shape: protobuf bodies decoded with the
    OpenTelemetry project's own generated classes (`opentelemetry-proto`), so the test proves
    a real collector reads them; JSON bodies parsed as they are."""
    if content_type.startswith("application/x-protobuf"):
        request = ExportTraceServiceRequest.FromString(body)
        return _hex_ids(MessageToDict(request, use_integers_for_enums=True))
    if content_type.startswith("application/json"):
        return json.loads(body)
    raise AssertionError(f"an OTLP export with Content-Type {content_type!r}")


class OtlpReceiver:
    """An OpenTelemetry collector's OTLP/HTTP endpoint, as small as it gets: every body posted
    to /v1/traces is decoded (protobuf or JSON, by its Content-Type) and kept."""

    def __init__(self):
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                content_type = self.headers.get("Content-Type", "")
                outer.paths.append(self.path)
                outer.content_types.append(content_type)
                outer.posts.append(decode_otlp(content_type, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def resource_spans(self) -> list[tuple[dict, dict]]:
        """Each span received with its resource's attributes ({key: value})."""
        out = []
        for post in list(self.posts):
            for rs in post.get("resourceSpans", []):
                resource = {a["key"]: a["value"]
                            for a in rs.get("resource", {}).get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    out.extend((resource, span) for span in ss.get("spans", []))
        return out

    def spans(self, function: str | None = None) -> list[dict]:
        """Every span received, or those whose resource is `function` (its faas.name)."""
        return [span for resource, span in self.resource_spans()
                if function is None
                or resource.get("faas.name") == {"stringValue": function}]


@pytest.fixture(scope="session")
def otlp():
    receiver = OtlpReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def server(server_factory, otlp):
    srv = server_factory(extra=["--log-sweep-interval", "1", "--otlp-endpoint", otlp.url])
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    # The clients find the server through AWS_ENDPOINT_URL only, as users configure them.
    os.environ["AWS_ENDPOINT_URL"] = server.url
    return server.url


@pytest.fixture(scope="session")
def logs(endpoint):
    return client("logs")


@pytest.fixture(scope="session")
def logs_raw(endpoint):
    """Client-side validation off, so values the model forbids reach the server."""
    return client("logs", validate=False)


@pytest.fixture(scope="session")
def lam(endpoint):
    return client("lambda")
