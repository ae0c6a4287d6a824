"""Harness for the control-plane conformance suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
loopback port with a temporary data directory, points boto3 and the aws CLI at it, and stops it with
SIGTERM at the end, requiring a clean exit (status 0).

Every response that a boto3 client created here receives is recorded; after each test the suite
fails the test if any response lacked `x-amzn-RequestId`, any error lacked a matching
`x-amzn-ErrorType`, or any status was 5xx.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness
import support

REPO = Path(__file__).resolve().parents[2]

harness.isolate_aws_env(credentials=False)


@pytest.fixture(scope="session")
def kindling_binary() -> Path:
    return harness.kindling_binary()


@pytest.fixture(scope="session")
def shared_mode_args(tmp_path_factory) -> list[str]:
    """With `KINDLING_CONFORMANCE_SHARED=1` every server of the suite runs in shared mode
    (`--shared --credentials`, the clients' `test`/`test` key): each boto3 and aws CLI request
    is then verified, so the suite shows that real clients' signatures pass."""
    if os.environ.get("KINDLING_CONFORMANCE_SHARED") != "1":
        return []
    creds = tmp_path_factory.mktemp("shared") / "credentials"
    creds.write_text("test test\n")
    return ["--shared", "--credentials", str(creds)]


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory, shared_mode_args):
    """Start extra servers (fresh or on an existing data dir); leftovers are killed at the end."""
    yield from harness.server_factory(tmp_path_factory, shared_mode_args)


@pytest.fixture(scope="session")
def server(server_factory):
    """One server for the whole session (tests use unique names, so they do not collide)."""
    srv = server_factory()
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="module")
def endpoint(server) -> str:
    return server.url


@pytest.fixture(scope="module")
def lam(endpoint):
    """boto3 Lambda client, client-side validation on (as users run it)."""
    return support.make_client(endpoint)


@pytest.fixture(scope="module")
def lam_raw(endpoint):
    """boto3 Lambda client with client-side parameter validation off, so values the model
    forbids (MemorySize 64, Timeout 0, ...) reach the server."""
    return support.make_client(endpoint, validate=False)


@pytest.fixture(scope="module")
def cli(endpoint, tmp_path_factory) -> support.AwsCli:
    return support.AwsCli(endpoint, tmp_path_factory.mktemp("cli"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    support.RESPONSES.clear()
    result = yield
    problems = support.check_recorded_responses(support.RESPONSES)
    support.RESPONSES.clear()
    if problems:
        raise AssertionError(
            "protocol violations in responses seen by this test:\n  " + "\n  ".join(problems)
        )
    return result
