"""Harness of the cluster suite: three `kindling serve` nodes on one PostgreSQL database.

A fresh database (`kindling_cluster_<random>`) is created on the PostgreSQL server at
`$KINDLING_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) for the session
and dropped at its end; each node is the conformance suite's `KindlingServer` with its own data
directory and port, started with `--store postgres://.../<that database>`. PostgreSQL is
required: without it the suite fails (it never skips).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import support  # noqa: E402  (the conformance suite's server harness)

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

ADMIN_URL = os.environ.get("KINDLING_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
NODES = 3
RESPONSES: list[tuple[str, int, dict]] = []


def psql(sql: str, url: str = ADMIN_URL) -> str:
    """Runs one SQL command with `psql` (fails the test run with psql's message)."""
    done = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def database():
    """A database of its own for this run, dropped (with any connection left) at the end."""
    name = f"kindling_cluster_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def nodes(database, tmp_path_factory):
    """Three nodes on the database, stopped cleanly (exit status 0) at the end."""
    path = _binary()
    if not path.is_file():
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    logs = tmp_path_factory.mktemp("logs")
    started: list[support.KindlingServer] = []
    try:
        for i in range(NODES):
            srv = support.KindlingServer(path, tmp_path_factory.mktemp(f"node{i}"),
                                         logs / f"node{i}.log",
                                         extra_args=["--store", database])
            started.append(srv)
            srv.start()
        yield started
        for srv in started:
            support.stop_cleanly(srv)
    finally:
        for srv in started:
            srv.kill()


def _record(http_response, parsed, model, **_kwargs):
    RESPONSES.append((model.name, http_response.status_code, dict(http_response.headers)))


@pytest.fixture(scope="session")
def clients(nodes):
    """A boto3 Lambda client per node."""
    out = []
    for srv in nodes:
        c = boto3.client("lambda", endpoint_url=srv.url,
                         config=Config(retries={"max_attempts": 1}, read_timeout=120))
        c.meta.events.register("after-call", _record)
        out.append(c)
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Every response of every node carries a request id and none is a 5xx."""
    RESPONSES.clear()
    result = yield
    problems = []
    for op, status, headers in RESPONSES:
        if "x-amzn-requestid" not in {k.lower() for k in headers}:
            problems.append(f"{op}: no x-amzn-RequestId")
        if status >= 500:
            problems.append(f"{op}: status {status}")
    RESPONSES.clear()
    if problems:
        raise AssertionError("protocol violations:\n  " + "\n  ".join(problems))
    return result
