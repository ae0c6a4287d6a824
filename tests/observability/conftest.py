"""Harness for the observability suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
loopback port with a temporary data directory (the conformance suite's `KindlingServer`), and
points boto3, the aws CLI and the SAM CLI at it with `AWS_ENDPOINT_URL` only. Every response a
boto3 client made here receives must carry `x-amzn-RequestId` and must not be a 5xx.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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


class OtlpReceiver:
    """An OpenTelemetry collector's OTLP/HTTP endpoint, as small as it gets: every JSON body
    posted to /v1/traces is kept."""

    def __init__(self):
        self.posts: list[dict] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.paths.append(self.path)
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    outer.posts.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[dict]:
        out = []
        for post in list(self.posts):
            for rs in post.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    out.extend(ss.get("spans", []))
        return out


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
