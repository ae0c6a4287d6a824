"""Harness of the front-door suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) once per
session on a free loopback port (the conformance suite's `KindlingServer`) and points boto3 and
the aws CLI at it with `AWS_ENDPOINT_URL` only. Every boto3 response is checked after each test:
it must carry `x-amzn-RequestId` and must not be a 5xx.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import harness  # noqa: E402  (the client suites' shared harness)
import support  # noqa: E402  (the conformance suite's server harness)

harness.isolate_aws_env()

RESPONSES = harness.ResponseLog()
client = RESPONSES.client
pytest_runtest_call = RESPONSES.runtest_call_hook()


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    yield from harness.server_factory(tmp_path_factory)


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
def lam(endpoint):
    return client("lambda")


@pytest.fixture(scope="session")
def lam_raw(endpoint):
    """Client-side validation off, so values the model forbids reach the server."""
    return client("lambda", validate=False)
