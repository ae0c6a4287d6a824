"""Harness for the S3/STS suite: a real `kindling serve` per session (and extra ones on demand),
boto3 clients and the aws CLI pointed at it with `AWS_ENDPOINT_URL`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import support  # noqa: E402  (the conformance suite's server harness)
import s3support  # noqa: E402

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def kindling_binary() -> Path:
    path = _binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"kindling binary not found at {path}: build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN.", returncode=2)
    return path


@pytest.fixture(scope="session")
def server_factory(kindling_binary, tmp_path_factory):
    started: list[support.KindlingServer] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(data_dir: Path | None = None, extra_args: list[str] | None = None):
        data_dir = data_dir or tmp_path_factory.mktemp("data")
        srv = support.KindlingServer(kindling_binary, data_dir,
                                     logs / f"kindling-{len(started)}.log",
                                     ["--isolation", "process", *(extra_args or [])])
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
