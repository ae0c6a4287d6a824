"""Harness for the response-streaming suite.

Starts the real `kindling serve` (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) once per
session (the end-to-end suite's `KindlingServer`), with the streamed-size limit lowered to
21 MiB and the bandwidth past the first 6 MiB raised to 8 MiB/s so that the limits are reached
in seconds. Functions: `functions/stream.js` on Kindling's Node bootstrap, and the `rust-stream`
binary of `tests/fixtures/rust-echo` (the `lambda_runtime` crate's streaming responses).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import kindling_e2e as k  # noqa: E402  (the end-to-end suite's server and client helpers)

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

MAX_STREAM = 21 * 1024 * 1024
BANDWIDTH = 8 * 1024 * 1024
BURST = 6 * 1024 * 1024
FUNCTIONS = Path(__file__).resolve().parent / "functions"


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = _binary()
    if not binary.is_file():
        pytest.exit(f"kindling binary not found at {binary}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    srv = k.KindlingServer(binary, tmp_path_factory.mktemp("data"),
                           tmp_path_factory.mktemp("logs") / "kindling.log",
                           ["--max-stream-size", str(MAX_STREAM),
                            "--stream-bandwidth", str(BANDWIDTH)])
    srv.start()
    yield srv
    assert srv.running, f"kindling died during the tests:\n{srv.log_tail()}"
    assert srv.stop() == 0, f"kindling did not stop cleanly:\n{srv.log_tail()}"


@pytest.fixture(scope="session")
def lam(server):
    return k.make_client(server.url, read_timeout=120)


def _create(lam, name: str, runtime: str, handler: str, zip_bytes: bytes, timeout: int = 30) -> str:
    lam.create_function(FunctionName=name, Runtime=runtime, Role=k.ROLE, Handler=handler,
                        Code={"ZipFile": zip_bytes}, Timeout=timeout, MemorySize=256)
    k.wait_active(lam, name)
    return name


@pytest.fixture(scope="session")
def node_fn(lam) -> str:
    """The Node streaming handler (`stream.handler`), 30 s timeout."""
    zip_bytes = k.make_zip({"stream.js": (FUNCTIONS / "stream.js").read_bytes()})
    return _create(lam, k.unique("node-stream"), "nodejs20.x", "stream.handler", zip_bytes)


@pytest.fixture(scope="session")
def node_buffered_fn(lam) -> str:
    zip_bytes = k.make_zip({"stream.js": (FUNCTIONS / "stream.js").read_bytes()})
    return _create(lam, k.unique("node-buffered"), "nodejs20.x", "stream.buffered", zip_bytes)


@pytest.fixture(scope="session")
def node_short_fn(lam) -> str:
    """The Node streaming handler with a 2 s timeout."""
    zip_bytes = k.make_zip({"stream.js": (FUNCTIONS / "stream.js").read_bytes()})
    return _create(lam, k.unique("node-short"), "nodejs20.x", "stream.handler", zip_bytes,
                   timeout=2)


@pytest.fixture(scope="session")
def rust_fn(lam) -> str:
    """`rust-stream` (lambda_runtime's streaming responses) as a provided.al2023 function."""
    binary = k.build_rust_echo().parent / "rust-stream"
    assert binary.exists(), f"{binary} was not built"
    zip_bytes = k.make_zip({"bootstrap": (binary.read_bytes(), 0o755)})
    return _create(lam, k.unique("rust-stream"), "provided.al2023", "bootstrap", zip_bytes)
