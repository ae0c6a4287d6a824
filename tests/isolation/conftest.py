"""Fixtures of the isolation suite: one shared `kindling serve --isolation namespaces` for the
attacks that need no server of their own, and a factory for dedicated servers."""

from __future__ import annotations

import os

import pytest

import iso_support as k

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def kindling_binary():
    try:
        return k.ensure_binary()
    except Exception as e:  # noqa: BLE001 - reported as a usage error
        pytest.exit(f"no kindling binary: {e}", returncode=2)


class ServerFactory:
    def __init__(self):
        self.servers: list[k.Server] = []

    def start(self, tag: str, isolation: str = "namespaces", extra_args=(),
              prefix=()) -> k.Server:
        server = k.Server(k.new_data_dir(tag), isolation=isolation, extra_args=list(extra_args),
                          prefix=list(prefix))
        self.servers.append(server)
        return server.start()

    def restart(self, server: k.Server) -> k.Server:
        return server.start()


@pytest.fixture
def server_factory(kindling_binary):
    """Dedicated servers; each is stopped (SIGTERM, exit 0 required) and its data dir removed at
    the end of the test."""
    factory = ServerFactory()
    yield factory
    problems = []
    for server in factory.servers:
        if server.proc is not None and server.proc.poll() is None:
            code = server.stop()
            if code != 0:
                problems.append(f"{server.endpoint} exited with {code}:\n{server.log_tail()}")
        k.remove_data_dir(server.data_dir)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def server(kindling_binary):
    """The shared server (`--isolation namespaces`); SIGTERM at the end must exit 0."""
    srv = k.Server(k.new_data_dir("shared"), isolation="namespaces")
    srv.start()
    yield srv
    code = srv.stop()
    log = srv.log_tail()
    k.remove_data_dir(srv.data_dir)
    assert code == 0, f"kindling serve exited with {code} after SIGTERM:\n{log}"
