"""Harness for the end-to-end invoke suite.

Starts the real `kindling serve` (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
loopback port with a temporary data directory; tests invoke functions through boto3 and the
functions run under real runtime interface clients. Dedicated servers (idle timeout, account
concurrency, SIGTERM) come from `server_factory`.

Environment:
  KINDLING_BIN            server binary
  KINDLING_E2E_ISOLATION  value for `--isolation` (default: the server's default, `auto`)
  KINDLING_E2E_RUNTIMES   comma-separated subset of rust,ric,python,node to run
  KINDLING_E2E_SERVE_ARGS extra `kindling serve` arguments for every server (shell syntax)
  KINDLING_TEST_STORE     `postgres`: every server keeps its state in a fresh PostgreSQL database
                          of its own (created on KINDLING_TEST_PG_URL, default
                          postgres://postgres@127.0.0.1:5432/postgres, dropped when the server's test ends), with
                          store calls on async worker threads turned into failures
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import kindling_e2e as k

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "_X_AMZN_TRACE_ID", "AWS_LAMBDA_FUNCTION_NAME"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

# The session server keeps idle environments long enough for warm-reuse assertions.
SESSION_IDLE_TIMEOUT = "600"


def _selected_runtimes() -> list[str]:
    env = os.environ.get("KINDLING_E2E_RUNTIMES")
    if not env:
        return list(k.RUNTIMES)
    chosen = [r.strip() for r in env.split(",") if r.strip()]
    unknown = set(chosen) - set(k.RUNTIMES)
    if unknown:
        raise pytest.UsageError(f"KINDLING_E2E_RUNTIMES: unknown {sorted(unknown)}")
    return chosen


def pytest_generate_tests(metafunc):
    """`runtime` parametrizes over the runtime clients; a test narrows the set with
    `@pytest.mark.runtimes("python", "ric")`."""
    if "runtime" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("runtimes")
        allowed = marker.args if marker else k.RUNTIMES
        params = [r for r in _selected_runtimes() if r in allowed]
        metafunc.parametrize("runtime", params, ids=params)


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else k.REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def kindling_binary() -> Path:
    path = _binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"kindling binary not found at {path}: build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN.", returncode=2)
    return path


def _base_args(binary: Path) -> list[str]:
    iso = os.environ.get("KINDLING_E2E_ISOLATION")
    extra = shlex.split(os.environ.get("KINDLING_E2E_SERVE_ARGS", ""))
    return (["--isolation", iso] if iso else []) + extra


PG_ADMIN_URL = os.environ.get("KINDLING_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _psql(sql: str, deadline_s: float = 60.0) -> None:
    """Runs `sql` as the admin user. PostgreSQL refuses a connection with "too many clients"
    while other suites' nodes hold every slot (`max_connections`, 100 by default, is shared by
    the parallel lanes): that is retried until `deadline_s`, any other failure is not."""
    deadline = time.monotonic() + deadline_s
    while True:
        done = subprocess.run(["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return
        if "too many clients" not in done.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        time.sleep(0.5)


def _store_args(databases: list[str]) -> list[str]:
    """`--store` for a server: a new PostgreSQL database under KINDLING_TEST_STORE=postgres."""
    store = os.environ.get("KINDLING_TEST_STORE", "sqlite")
    if store == "sqlite":
        return []
    if store != "postgres":
        raise pytest.UsageError(f"KINDLING_TEST_STORE: expected sqlite or postgres, got {store!r}")
    name = f"kindling_e2e_{uuid.uuid4().hex[:12]}"
    _psql(f"CREATE DATABASE {name}")
    databases.append(name)
    return ["--store", PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, "--store-strict-blocking"]


class _Servers:
    """Servers started for one scope (the session's shared server, or one test's own), each with
    its data dir and, under KINDLING_TEST_STORE=postgres, its own database; `close()` kills them
    and drops their databases. A test's servers end with the test: left running they would hold
    their PostgreSQL connections (a pool that grew under load stays open) until the session's end,
    and some thirty of them exhaust the server's `max_connections`."""

    def __init__(self, binary: Path, tmp_path_factory, logs: Path):
        self.binary = binary
        self.tmp_path_factory = tmp_path_factory
        self.logs = logs
        self.started: list[k.KindlingServer] = []
        self.databases: list[str] = []

    def start(self, *args: str, nofile: tuple[int, int] | None = None) -> k.KindlingServer:
        srv = k.KindlingServer(self.binary, self.tmp_path_factory.mktemp("data"),
                               self.logs / f"kindling-{uuid.uuid4().hex[:8]}.log",
                               [*_base_args(self.binary), *_store_args(self.databases), *args],
                               nofile=nofile)
        self.started.append(srv)
        return srv.start()

    def close(self) -> None:
        for srv in self.started:
            srv.kill()
        for name in self.databases:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture
def server_factory(kindling_binary, tmp_path_factory, server_logs):
    """`start(*args)` runs an extra server with its own data dir; it is killed when the test
    ends."""
    servers = _Servers(kindling_binary, tmp_path_factory, server_logs)
    yield servers.start
    servers.close()


@pytest.fixture(scope="session")
def server(kindling_binary, tmp_path_factory, server_logs):
    args = []
    if k.supports_flag(kindling_binary, "--idle-timeout"):
        args += ["--idle-timeout", SESSION_IDLE_TIMEOUT]
    servers = _Servers(kindling_binary, tmp_path_factory, server_logs)
    srv = servers.start(*args)
    yield srv
    try:
        assert srv.running, f"kindling died during the tests:\n{srv.log_tail()}"
        rc = srv.stop()
        assert rc == 0, f"kindling exited with status {rc} after SIGTERM:\n{srv.log_tail()}"
    finally:
        servers.close()


@pytest.fixture(scope="session")
def lam(server):
    return k.make_client(server.url)


@pytest.fixture(scope="session")
def logs(server) -> k.KindlingLogs:
    return server.logs


@pytest.fixture(scope="session")
def fixtures() -> k.Fixtures:
    return k.Fixtures()


@pytest.fixture(scope="session")
def kinds(fixtures) -> dict[str, k.RuntimeKind]:
    return fixtures.kinds()


@pytest.fixture
def kind(runtime, kinds) -> k.RuntimeKind:
    return kinds[runtime]


@pytest.fixture
def deploy(lam, kind):
    """`deploy(**create_function kwargs)` creates this test's function for `kind`."""

    def _deploy(**kwargs) -> str:
        return k.create_function(lam, kind, **kwargs)

    return _deploy


@pytest.fixture(autouse=True)
def _server_alive_and_clean(request):
    """Every response a test saw carries x-amzn-RequestId (and x-amzn-ErrorType on errors);
    the session server must still be running after each test that used it."""
    k.RESPONSES.clear()
    yield
    problems = []
    for r in k.RESPONSES:
        if not r.headers.get("x-amzn-requestid"):
            problems.append(f"{r.operation} -> HTTP {r.status} without x-amzn-RequestId")
        if r.status >= 300 and not r.headers.get("x-amzn-errortype"):
            problems.append(f"{r.operation} -> HTTP {r.status} without x-amzn-ErrorType")
    k.RESPONSES.clear()
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        assert srv.running, f"kindling died during this test:\n{srv.log_tail()}"
    assert not problems, "protocol problems:\n  " + "\n  ".join(problems)
