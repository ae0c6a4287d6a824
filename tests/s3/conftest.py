"""Harness for the S3/STS suite: a real `kindling serve` per session (and extra ones on demand),
boto3 clients and the aws CLI pointed at it with `AWS_ENDPOINT_URL`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import harness  # noqa: E402  (the client suites' shared harness)
import support  # noqa: E402  (the conformance suite's server harness)
import s3support  # noqa: E402

harness.isolate_aws_env(credentials=False)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    yield from harness.server_factory(tmp_path_factory, ["--isolation", "process"])


@pytest.fixture(scope="session")
def server(server_factory):
    srv = server_factory()
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def s3(endpoint):
    return s3support.client("s3", endpoint)


@pytest.fixture
def bucket(s3):
    """A fresh bucket, emptied and deleted after the test."""
    name = s3support.unique_bucket()
    s3.create_bucket(Bucket=name)
    yield name
    s3support.empty_and_delete(s3, name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    s3support.RESPONSES.clear()
    result = yield
    problems = s3support.check_responses(s3support.RESPONSES)
    s3support.RESPONSES.clear()
    if problems:
        raise AssertionError("protocol violations in responses seen by this test:\n  "
                             + "\n  ".join(problems))
    return result
