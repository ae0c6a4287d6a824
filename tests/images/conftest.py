"""Harness for the container-image suite: one `kindling serve --isolation namespaces` (images
run as the environment's root filesystem, which needs root), boto3 through
`AWS_ENDPOINT_URL` only, images written as OCI layouts by the test and pushed with skopeo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import harness  # noqa: E402
import kindling_e2e  # noqa: E402  (builds the Rust echo fixture once for every suite)
import support  # noqa: E402

harness.isolate_aws_env()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("container-image functions run in namespaces mode, which needs root")
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is required (apt-get install skopeo)")
    path = harness.kindling_binary()
    srv = support.KindlingServer(path, tmp_path_factory.mktemp("data"),
                                 tmp_path_factory.mktemp("logs") / "kindling.log",
                                 extra_args=["--isolation", "namespaces"])
    srv.start()
    os.environ["AWS_ENDPOINT_URL"] = srv.url
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def registry(server) -> str:
    """`127.0.0.1:<port>`: the registry is the same endpoint."""
    return server.url.split("://", 1)[1]


@pytest.fixture(scope="session")
def lam(server):
    return boto3.client("lambda", config=Config(retries={"max_attempts": 1}, read_timeout=120))


@pytest.fixture(scope="session")
def static_echo() -> Path:
    """tests/fixtures/rust-echo (lambda_runtime) linked statically (glibc, crt-static): it runs
    in a `FROM scratch` image with nothing else in it."""
    binary = kindling_e2e.build_rust_echo()
    out = subprocess.run(["file", str(binary)], capture_output=True, text=True).stdout
    assert "statically linked" in out or "static-pie" in out, out
    return binary
