"""Harness of the cluster suite: several real `kindling serve` nodes (the conformance suite's
`KindlingServer`) on one PostgreSQL database (the local server, `KINDLING_TEST_PG`, default
`postgres://postgres@127.0.0.1:5432`), a fresh database per run, dropped afterwards.

Nodes run with short membership timings (heartbeat 0.25 s, dead after 3 s, fenced after
1.5 s) so that failovers happen within seconds. Functions report to the event source mapping
suite's HTTP sink, with the endpoint of the node that ran them (`AWS_ENDPOINT_URL` in their
environment names the node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
sys.path.insert(0, str(REPO / "tests" / "esm"))

import support  # noqa: E402  (the conformance suite's server harness)

import esm_support  # noqa: E402  (the HTTP sink and boto3 clients)

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN",
             "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

PG = os.environ.get("KINDLING_TEST_PG", "postgres://postgres@127.0.0.1:5432")
HEARTBEAT = 0.25
DEAD_AFTER = 3.0
TIMING = ["--node-heartbeat-interval", str(HEARTBEAT), "--node-dead-after", str(DEAD_AFTER)]


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {out.stderr}")
    return out.stdout.strip()


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def database():
    """A fresh database for this run, dropped afterwards (with the roles tests made)."""
    name = f"kindling_cluster_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    yield name
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def failover_database():
    """A database of its own for one failover test (its nodes alone are the cluster: the
    session's nodes would otherwise claim its mappings, schedules and events), dropped
    afterwards."""
    name = f"kindling_failover_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    yield name
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def role(failover_database):
    """A login role of its own for one node, so that a test can cut that node alone from
    PostgreSQL (`ALTER ROLE ... NOLOGIN` and `pg_terminate_backend`)."""
    name = f"kindling_node_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE ROLE {name} LOGIN SUPERUSER")
    yield name
    psql(f"ALTER ROLE {name} NOLOGIN")
    psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'")
    # A node of this role may have created the schema: its tables go to `postgres`.
    psql(f"REASSIGN OWNED BY {name} TO postgres", db=failover_database)
    psql(f"DROP ROLE IF EXISTS {name}")


class Node:
    def __init__(self, srv: support.KindlingServer):
        self.srv = srv

    @property
    def url(self) -> str:
        return self.srv.url

    def get_json(self, path: str, timeout: float = 5):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as r:
            return json.loads(r.read())

    def nodes(self) -> dict:
        return self.get_json("/_kindling/nodes")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=15) as r:
            return r.read().decode()

    def healthy(self) -> bool:
        """Whether the node takes work (`/_kindling/health/node`, no database round trip)."""
        try:
            return self.get_json("/_kindling/health/node", timeout=2)["healthy"]
        except urllib.error.HTTPError as e:
            if e.code == 503:
                return json.loads(e.read())["healthy"]
            raise

    def clients(self):
        """(sqs, lambda) boto3 clients of this node."""
        return esm_support.clients_for(self.url)

    def client(self, service: str):
        old = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = self.url
        try:
            return esm_support.client(service)
        finally:
            if old is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = old


@pytest.fixture
def start_node(failover_database, tmp_path_factory):
    """Starts a node on the test's own database (as `user`, default `postgres`)."""
    path = _binary()
    if not path.is_file():
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    started: list[support.KindlingServer] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(user: str = "postgres", extra: list[str] | None = None) -> Node:
        host = PG.split("@", 1)[1]
        store = f"postgres://{user}@{host}/{failover_database}"
        srv = support.KindlingServer(path, tmp_path_factory.mktemp("node"),
                                     logs / f"node-{len(started)}.log",
                                     extra_args=["--store", store, "--isolation", "process",
                                                 *TIMING, *(extra or [])])
        started.append(srv)
        srv.start(timeout=60)
        return Node(srv)

    yield start
    for srv in started:
        srv.kill()


@pytest.fixture(scope="session")
def nodes(database, tmp_path_factory):
    """Three nodes on the run's database for the whole session (the control-plane tests),
    stopped cleanly (exit status 0) at the end."""
    path = _binary()
    if not path.is_file():
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    logs = tmp_path_factory.mktemp("session-logs")
    host = PG.split("@", 1)[1]
    started: list[support.KindlingServer] = []
    try:
        for i in range(3):
            srv = support.KindlingServer(path, tmp_path_factory.mktemp(f"session-node{i}"),
                                         logs / f"node{i}.log",
                                         extra_args=["--store", f"postgres://postgres@{host}/{database}",
                                                     "--isolation", "process"])
            started.append(srv)
            srv.start(timeout=60)
        yield started
        for srv in started:
            support.stop_cleanly(srv)
    finally:
        for srv in started:
            srv.kill()


RESPONSES: list[tuple[str, int, dict]] = []


def _record(http_response, parsed, model, **_kwargs):
    RESPONSES.append((model.name, http_response.status_code, dict(http_response.headers)))


@pytest.fixture(scope="session")
def clients(nodes):
    """A boto3 Lambda client per session node; every response is checked after each test."""
    out = []
    for srv in nodes:
        c = boto3.client("lambda", endpoint_url=srv.url,
                         config=Config(retries={"max_attempts": 1}, read_timeout=120))
        c.meta.events.register("after-call", _record)
        out.append(c)
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Every response the session nodes' clients saw carries a request id and none is a 5xx."""
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


@pytest.fixture(scope="session")
def sink():
    s = esm_support.Sink().start()
    yield s
    s.stop()


# Reports each invocation (request id, the node that ran it, the event) to the sink.
REPORTER = r'''
import json, os, time, urllib.request

def handler(event, context):
    time.sleep(float(os.environ.get("SLEEP", "0")))
    body = {"id": context.aws_request_id, "node": os.environ.get("AWS_ENDPOINT_URL"),
            "event": event, "t": time.time()}
    req = urllib.request.Request(os.environ["SINK"], data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    return {}
'''


def make_reporter(lam, sink, name: str | None = None, sleep: float = 0, timeout: int = 5) -> str:
    name = name or esm_support.unique("fn")
    support.create_function(lam, name, zip_bytes=support.make_zip({"lambda_function.py": REPORTER}),
                            Handler="lambda_function.handler", Timeout=timeout,
                            Environment={"Variables": {"SINK": f"{sink.url}/{name}",
                                                       "SLEEP": str(sleep)}})
    return name


def owner_of(node: Node, resource: str) -> str | None:
    for lease in node.nodes()["leases"]:
        if lease["resource"] == resource:
            return lease["owner"]
    return None


def address_of(view: dict, node_id: str) -> str:
    for n in view["nodes"]:
        if n["node_id"] == node_id:
            return n["address"]
    raise AssertionError(f"no node {node_id} in {view}")


wait_for = support.wait_for


def now() -> float:
    return time.monotonic()
