"""What the client suites' conftests share: keeping the developer's AWS configuration out of the
clients, finding the `kindling` binary, a session-wide factory of real `kindling serve` processes,
and the check that every response a boto3 client received carries `x-amzn-RequestId` and is not
a 5xx.

A conftest uses it like this::

    import harness
    harness.isolate_aws_env()
    RESPONSES = harness.ResponseLog()
    client = RESPONSES.client
    pytest_runtest_call = RESPONSES.runtest_call_hook()

    @pytest.fixture(scope="session")
    def server_factory(tmp_path_factory):
        yield from harness.server_factory(tmp_path_factory)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from botocore.config import Config

import support

REPO = Path(__file__).resolve().parents[2]

_DEVELOPER_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
                   "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE")


def isolate_aws_env(*, credentials: bool = True) -> None:
    """Clients find Kindling through `AWS_ENDPOINT_URL` only, as users configure them; nothing of
    the developer's profile, per-service endpoints or session reaches them. With `credentials`,
    the suite's key (`test`/`test`) and region are set too."""
    for var in list(os.environ):
        if var in _DEVELOPER_VARS or var.startswith("AWS_ENDPOINT_URL_"):
            os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    if credentials:
        os.environ["AWS_ACCESS_KEY_ID"] = "test"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def kindling_binary() -> Path:
    """`$KINDLING_BIN`, else `<repo>/target/debug/kindling`; the session ends with a clear
    message when it is not built."""
    env = os.environ.get("KINDLING_BIN")
    path = Path(env) if env else REPO / "target" / "debug" / "kindling"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    return path


def server_factory(tmp_path_factory, default_args: list[str] | None = None) -> Iterator:
    """Body of a session fixture: yields `start(data_dir=None, extra=None)`, which starts a
    `kindling serve` (fresh data directory unless one is given; `default_args` then `extra`
    added to its command line) and returns the running `support.KindlingServer`. Servers still
    running at the end of the session are killed."""
    binary = kindling_binary()
    started: list[support.KindlingServer] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(data_dir: Path | None = None, extra: list[str] | None = None):
        data_dir = data_dir or tmp_path_factory.mktemp("data")
        srv = support.KindlingServer(binary, data_dir, logs / f"kindling-{len(started)}.log",
                                     extra_args=[*(default_args or []), *(extra or [])])
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.kill()


class ResponseLog:
    """Every response boto3 clients made by [`ResponseLog.client`] receive, checked after each
    test by the hook from [`ResponseLog.runtest_call_hook`]."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, int, dict]] = []

    def _record(self, http_response, parsed, model, **_kwargs) -> None:
        self.responses.append((model.name, http_response.status_code,
                               dict(http_response.headers)))

    def client(self, service: str, *, validate: bool = True, read_timeout: int = 120, **kwargs):
        """A boto3 client configured through the environment (`AWS_ENDPOINT_URL`), one attempt
        per call (no retry hides a throttle or a 5xx); `validate=False` lets values the model forbids reach the server."""
        c = boto3.client(service, config=Config(parameter_validation=validate,
                                                retries={"total_max_attempts": 1},
                                                read_timeout=read_timeout), **kwargs)
        c.meta.events.register("after-call", self._record)
        return c

    def clear(self) -> None:
        self.responses.clear()

    def problems(self) -> list[str]:
        found = []
        for op, status, headers in self.responses:
            if "x-amzn-requestid" not in {k.lower() for k in headers}:
                found.append(f"{op}: no x-amzn-RequestId")
            if status >= 500:
                found.append(f"{op}: status {status}")
        return found

    def runtest_call_hook(self):
        """A `pytest_runtest_call` hook wrapper for a conftest: fails a test whose responses
        broke the rules above."""

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            self.clear()
            result = yield
            problems = self.problems()
            self.clear()
            if problems:
                raise AssertionError("protocol violations:\n  " + "\n  ".join(problems))
            return result

        return pytest_runtest_call
