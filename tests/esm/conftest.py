"""Harness for the event source mapping suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
loopback port with a temporary data directory (the conformance suite's `KindlingServer`), and
points boto3 at it with `AWS_ENDPOINT_URL` only. Functions report what they processed to a small
HTTP sink in this process (`esm_support.Sink`), which outlives any Kindling it watches. Every
response a boto3 client made here receives is checked after each test: it must carry
`x-amzn-RequestId` and must not be a 5xx.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import support  # noqa: E402  (the conformance suite's server harness)

import esm_support  # noqa: E402

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
             "AWS_ENDPOINT_URL_LAMBDA", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


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
    logs = tmp_path_factory.mktemp("logs")

    def start(data_dir: Path | None = None, extra: list[str] | None = None):
        data_dir = data_dir or tmp_path_factory.mktemp("data")
        srv = support.KindlingServer(path, data_dir, logs / f"kindling-{len(started)}.log",
                                     extra_args=extra)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.kill()


@pytest.fixture(scope="session")
def server(server_factory):
    srv = server_factory()
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    # The clients find the server through AWS_ENDPOINT_URL only, as users configure them.
    os.environ["AWS_ENDPOINT_URL"] = server.url
    return server.url


@pytest.fixture(scope="session")
def sqs(endpoint):
    return esm_support.client("sqs")


@pytest.fixture(scope="session")
def lam(endpoint):
    return esm_support.client("lambda")


@pytest.fixture(scope="session")
def lam_raw(endpoint):
    """Client-side validation off, so values the model forbids reach the server."""
    return esm_support.client("lambda", validate=False)


@pytest.fixture(scope="session")
def sink():
    s = esm_support.Sink().start()
    yield s
    s.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    esm_support.RESPONSES.clear()
    result = yield
    problems = []
    for op, status, headers in esm_support.RESPONSES:
        lowered = {k.lower() for k in headers}
        if "x-amzn-requestid" not in lowered:
            problems.append(f"{op}: no x-amzn-RequestId")
        if status >= 500:
            problems.append(f"{op}: status {status}")
    esm_support.RESPONSES.clear()
    if problems:
        raise AssertionError("protocol violations:\n  " + "\n  ".join(problems))
    return result
