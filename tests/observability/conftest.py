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

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import support  # noqa: E402  (the conformance suite's server harness)

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LOGS",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["SAM_CLI_TELEMETRY"] = "0"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

RESPONSES: list[tuple[str, int, dict]] = []
VENV_BIN = Path(sys.executable).parent


def _record(http_response, parsed, model, **_kwargs):
    RESPONSES.append((model.name, http_response.status_code, dict(http_response.headers)))


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    path = _binary()
    if not path.is_file():
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    started: list[support.KindlingServer] = []
    logs = tmp_path_factory.mktemp("server-logs")

    def start(data_dir: Path | None = None, extra: list[str] | None = None):
        data_dir = data_dir or tmp_path_factory.mktemp("data")
        srv = support.KindlingServer(path, data_dir, logs / f"kindling-{len(started)}.log",
                                     extra_args=extra)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.kill()


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


def client(service: str, *, validate: bool = True):
    c = boto3.client(service, config=Config(parameter_validation=validate,
                                            retries={"total_max_attempts": 1},
                                            read_timeout=60))
    c.meta.events.register("after-call", _record)
    return c


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    RESPONSES.clear()
    result = yield
    problems = []
    for op, status, headers in RESPONSES:
        lowered = {k.lower() for k in headers}
        if "x-amzn-requestid" not in lowered:
            problems.append(f"{op}: no x-amzn-RequestId")
        if status >= 500:
            problems.append(f"{op}: status {status}")
    RESPONSES.clear()
    if problems:
        raise AssertionError("protocol violations:\n  " + "\n  ".join(problems))
    return result
