"""Helpers for Kindling's end-to-end invoke suite.

Everything talks to a real `kindling serve` through boto3 (the Invoke API) and to the function
through real runtime interface clients: the Rust `lambda_runtime` crate, AWS's `awslambdaric`,
and Kindling's own Python and Node bootstraps.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_TARGET = REPO / "target" / "fixtures"

ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/kindling-e2e"
HOST_PYTHON = "/usr/bin/python3"

# The four runtime interface clients the suite drives.
RUNTIMES = ("rust", "ric", "python", "node")

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LOG_STREAM_RE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/\[(\$LATEST|\d+)\]([0-9a-f]{32})$")

# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------


def unique(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Deployment packages
# --------------------------------------------------------------------------------------------

_ZIP_DATE = (2024, 1, 2, 3, 4, 6)


def make_zip(files: dict[str, bytes | str | tuple[bytes | str, int]],
             trees: Iterable[tuple[Path, str]] = ()) -> bytes:
    """A deployment package. `files` maps archive paths to content or (content, mode);
    `trees` adds whole directories (source dir, archive prefix) with their file modes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        def add(path: str, content: bytes | str, mode: int) -> None:
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, content.encode() if isinstance(content, str) else content)

        for path, value in files.items():
            content, mode = value if isinstance(value, tuple) else (value, 0o644)
            add(path, content, mode)
        for src, prefix in trees:
            for p in sorted(src.rglob("*")):
                if p.is_file() and "__pycache__" not in p.parts:
                    mode = 0o755 if os.access(p, os.X_OK) else 0o644
                    add(f"{prefix}/{p.relative_to(src).as_posix()}", p.read_bytes(), mode)
    return buf.getvalue()


def _newest_mtime(paths: Iterable[Path]) -> float:
    return max(p.stat().st_mtime for p in paths)


# tests/fixtures/rust-echo is built once for every suite that runs it, statically linked
# (glibc, crt-static) with exactly the README's and tests/images' command and settings, so that
# this one release build serves them all (cargo finds it fresh): the e2e and streaming suites
# run it as a zip function, the images suite and the README in a `FROM scratch` image.
RUST_ECHO_TARGET = REPO / "target" / "images-fixture"
RUST_ECHO_TRIPLE = "x86_64-unknown-linux-gnu"
RUST_ECHO_RUSTFLAGS = "-C target-feature=+crt-static"


def build_rust_echo() -> Path:
    """`cargo build --release` of tests/fixtures/rust-echo (statically linked) when the binary
    is missing or older than its sources; returns the binary (`rust-stream` is next to it)."""
    crate = FIXTURES / "rust-echo"
    binary = RUST_ECHO_TARGET / RUST_ECHO_TRIPLE / "release" / "rust-echo"
    sources = [crate / "Cargo.toml", *crate.joinpath("src").rglob("*.rs")]
    if (crate / "Cargo.lock").exists():
        sources.append(crate / "Cargo.lock")
    if binary.exists() and binary.stat().st_mtime >= _newest_mtime(sources):
        return binary
    env = dict(os.environ, CARGO_TARGET_DIR=str(RUST_ECHO_TARGET), CARGO_TERM_COLOR="never",
               RUSTFLAGS=RUST_ECHO_RUSTFLAGS)
    proc = subprocess.run(
        ["cargo", "build", "--release", "--target", RUST_ECHO_TRIPLE,
         "--manifest-path", str(crate / "Cargo.toml")],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the rust-echo fixture failed:\n{proc.stderr[-4000:]}")
    assert binary.exists(), f"cargo succeeded but {binary} is missing"
    return binary


def host_python_version() -> str:
    out = subprocess.run([HOST_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def awslambdaric_version() -> str | None:
    """The awslambdaric the test environment pinned (installed from requirements.txt), if any."""
    try:
        from importlib.metadata import version

        return version("awslambdaric")
    except Exception:
        return None


def build_ric_package() -> Path:
    """`pip install --target` of awslambdaric for the host's CPython (the one the function's
    bootstrap runs), cached in target/fixtures/ by version; returns the package directory."""
    pyver = host_python_version()
    ric = awslambdaric_version()
    key = f"awslambdaric-{ric or 'latest'}-cp{pyver.replace('.', '')}"
    root = FIXTURE_TARGET / key
    pkg = root / "pkg"
    stamp = root / ".complete"
    if stamp.exists():
        return pkg
    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.mkdir(parents=True)
    spec = f"awslambdaric=={ric}" if ric else "awslambdaric"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-compile", "--target", str(pkg), "--python-version", pyver,
           "--implementation", "cp", "--only-binary=:all:", spec]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"pip could not install {spec} for CPython {pyver}:\n{proc.stderr[-4000:]}")
    stamp.write_text(spec + "\n")
    return pkg


RIC_BOOTSTRAP = """#!/bin/sh
# Custom runtime: AWS's awslambdaric (from PyPI, vendored under pkg/) on the host's CPython.
export PYTHONPATH="$LAMBDA_TASK_ROOT:$LAMBDA_TASK_ROOT/pkg${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
"""


@dataclasses.dataclass(frozen=True)
class RuntimeKind:
    """How to deploy the test function for one runtime interface client."""

    key: str
    runtime: str
    handler: str
    broken_handler: str | None  # a handler whose module fails to import
    missing_handler: str | None  # module loads, function missing
    error_keys: frozenset[str]  # keys of the runtime's function-error payload
    build: Callable[[str | None], bytes]

    def zip(self, marker: str | None = None) -> bytes:
        return self.build(marker)


def _marker_files(marker: str | None) -> dict[str, Any]:
    return {"marker.txt": marker} if marker is not None else {}


def python_files() -> dict[str, Any]:
    d = FIXTURES / "python"
    return {f: (d / f).read_bytes() for f in ("handler.py", "broken.py", "layered.py")}


def node_files() -> dict[str, Any]:
    d = FIXTURES / "node"
    return {f: (d / f).read_bytes() for f in ("index.js", "broken.js", "layered.js")}


class Fixtures:
    """Lazily built fixture artifacts (the Rust binary and the awslambdaric package)."""

    def __init__(self) -> None:
        self._rust: Path | Exception | None = None
        self._ric: Path | Exception | None = None

    def _get(self, attr: str, builder: Callable[[], Path]) -> Path:
        value = getattr(self, attr)
        if value is None:
            try:
                value = builder()
            except Exception as e:  # remembered, so later tests fail fast with the same cause
                value = e
            setattr(self, attr, value)
        if isinstance(value, Exception):
            raise RuntimeError(f"fixture build failed: {value}") from value
        return value

    def rust_binary(self) -> Path:
        return self._get("_rust", build_rust_echo)

    def ric_pkg(self) -> Path:
        return self._get("_ric", build_ric_package)

    def kinds(self) -> dict[str, RuntimeKind]:
        return {
            "rust": RuntimeKind(
                "rust", "provided.al2023", "bootstrap", None, None,
                frozenset({"errorType", "errorMessage"}),
                lambda m: make_zip({"bootstrap": (self.rust_binary().read_bytes(), 0o755),
                                    **_marker_files(m)}),
            ),
            "ric": RuntimeKind(
                "ric", "provided.al2023", "handler.handler", "broken.handler", "handler.nope",
                frozenset({"errorType", "errorMessage", "requestId", "stackTrace"}),
                lambda m: make_zip({"bootstrap": (RIC_BOOTSTRAP, 0o755), **python_files(),
                                    **_marker_files(m)}, trees=[(self.ric_pkg(), "pkg")]),
            ),
            "python": RuntimeKind(
                "python", "python3.11", "handler.handler", "broken.handler", "handler.nope",
                frozenset({"errorType", "errorMessage", "requestId", "stackTrace"}),
                lambda m: make_zip({**python_files(), **_marker_files(m)}),
            ),
            "node": RuntimeKind(
                "node", "nodejs20.x", "index.handler", "broken.handler", "index.nope",
                frozenset({"errorType", "errorMessage", "trace"}),
                lambda m: make_zip({**node_files(), **_marker_files(m)}),
            ),
        }


# --------------------------------------------------------------------------------------------
# Clients and invocation results
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorded:
    operation: str
    status: int
    headers: dict[str, str]
    body: bytes


RESPONSES: list[Recorded] = []


def _record(http_response, parsed, model, **_kwargs) -> None:
    headers = {k.lower(): v for k, v in http_response.headers.items()}
    body = b""
    if http_response.status_code >= 300:
        try:
            body = http_response.content
        except Exception:
            body = b""
    RESPONSES.append(Recorded(model.name, http_response.status_code, headers, body))


def last_error_body(operation: str = "Invoke") -> dict:
    """The raw JSON body of the last error response for `operation`."""
    for r in reversed(RESPONSES):
        if r.operation == operation and r.status >= 300:
            return json.loads(r.body)
    raise AssertionError(f"no error response recorded for {operation}")


def make_client(endpoint: str, read_timeout: int = 120, validate: bool = True):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=REGION)
    config = Config(retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=10, read_timeout=read_timeout,
                    parameter_validation=validate, max_pool_connections=32)
    client = session.client("lambda", endpoint_url=endpoint, config=config)
    client.meta.events.register("after-call.lambda", _record)
    return client


@dataclasses.dataclass
class Invocation:
    status: int
    payload: bytes
    function_error: str | None
    executed_version: str | None
    log: str | None
    request_id: str
    headers: dict[str, str]
    elapsed: float

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError:
            raise AssertionError(f"payload is not JSON: {self.payload[:500]!r}") from None

    def ok(self) -> Any:
        """Assert a successful synchronous invoke and return the parsed payload."""
        assert self.status == 200, f"status {self.status}, payload {self.payload[:500]!r}"
        assert self.function_error is None, (
            f"unexpected function error {self.function_error}: {self.payload[:1000]!r}")
        return self.json

    def error(self) -> dict:
        """Assert a function error (200 + X-Amz-Function-Error: Unhandled); return the payload."""
        assert self.status == 200, f"status {self.status}, payload {self.payload[:500]!r}"
        assert self.function_error == "Unhandled", (
            f"FunctionError {self.function_error!r} (expected 'Unhandled'), "
            f"payload {self.payload[:1000]!r}")
        body = self.json
        assert isinstance(body, dict), f"error payload is not an object: {body!r}"
        return body


def invoke(lam, name: str, payload: Any = None, *, raw: bytes | None = None,
           tail: bool = False, qualifier: str | None = None, invocation_type: str | None = None,
           client_context: str | None = None) -> Invocation:
    kwargs: dict[str, Any] = {"FunctionName": name}
    if raw is not None:
        kwargs["Payload"] = raw
    elif payload is not None:
        kwargs["Payload"] = json.dumps(payload).encode()
    if tail:
        kwargs["LogType"] = "Tail"
    if qualifier is not None:
        kwargs["Qualifier"] = qualifier
    if invocation_type is not None:
        kwargs["InvocationType"] = invocation_type
    if client_context is not None:
        kwargs["ClientContext"] = client_context
    started = time.monotonic()
    resp = lam.invoke(**kwargs)
    body = resp["Payload"].read()
    elapsed = time.monotonic() - started
    meta = resp["ResponseMetadata"]
    log = resp.get("LogResult")
    return Invocation(
        status=resp["StatusCode"],
        payload=body,
        function_error=resp.get("FunctionError"),
        executed_version=resp.get("ExecutedVersion"),
        log=base64.b64decode(log).decode("utf-8", "replace") if log is not None else None,
        request_id=meta.get("RequestId", ""),
        headers={k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()},
        elapsed=elapsed,
    )


def invoke_error(lam, name: str, payload: Any = None, **kwargs) -> ClientError:
    """Invoke expecting an API error (not a function error); returns the ClientError."""
    try:
        inv = invoke(lam, name, payload, **kwargs)
    except ClientError as e:
        return e
    raise AssertionError(
        f"expected an API error, got HTTP {inv.status} FunctionError={inv.function_error} "
        f"payload {inv.payload[:300]!r}")


def error_info(err: ClientError) -> tuple[str, int, str]:
    meta = err.response.get("ResponseMetadata", {})
    return (err.response.get("Error", {}).get("Code", ""), meta.get("HTTPStatusCode", 0),
            err.response.get("Error", {}).get("Message", ""))


def assert_api_error(err: ClientError, code: str, status: int) -> str:
    got_code, got_status, message = error_info(err)
    assert (got_code, got_status) == (code, status), (
        f"expected {code} / HTTP {status}, got {got_code} / HTTP {got_status}: {message!r}")
    headers = {k.lower(): v for k, v in err.response["ResponseMetadata"].get("HTTPHeaders", {}).items()}
    etype = headers.get("x-amzn-errortype", "")
    assert etype.split(":", 1)[0].rsplit("#", 1)[-1] == code, f"x-amzn-ErrorType {etype!r}"
    assert err.response["ResponseMetadata"].get("RequestId"), "no x-amzn-RequestId on the error"
    return message


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


def wait_active(lam, name: str, qualifier: str | None = None, timeout: float = 30.0) -> dict:
    kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    holder: dict[str, Any] = {}

    def ready():
        cfg = lam.get_function_configuration(**kwargs)
        holder["cfg"] = cfg
        assert cfg.get("State") != "Failed", f"{name} went to Failed: {cfg}"
        return cfg.get("State") == "Active" and cfg.get("LastUpdateStatus") != "InProgress"

    wait_for(ready, timeout=timeout, what=f"{name} to become Active")
    return holder["cfg"]


def create_function(lam, kind: RuntimeKind, name: str | None = None, *, marker: str | None = None,
                    zip_bytes: bytes | None = None, env: dict[str, str] | None = None,
                    **kwargs) -> str:
    name = name or unique(f"e2e-{kind.key}")
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": kind.runtime,
        "Role": ROLE,
        "Handler": kind.handler,
        "Code": {"ZipFile": zip_bytes if zip_bytes is not None else kind.zip(marker)},
        "Timeout": 30,
    }
    if env is not None:
        params["Environment"] = {"Variables": env}
    params.update(kwargs)
    lam.create_function(**params)
    wait_active(lam, name)
    return name


def update_code(lam, name: str, zip_bytes: bytes) -> dict:
    resp = lam.update_function_code(FunctionName=name, ZipFile=zip_bytes)
    wait_active(lam, name)
    return resp


def publish(lam, name: str) -> str:
    resp = lam.publish_version(FunctionName=name)
    wait_active(lam, name, qualifier=resp["Version"])
    return resp["Version"]


# --------------------------------------------------------------------------------------------
# Log lines
# --------------------------------------------------------------------------------------------

REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<id>\S+)\tDuration: (?P<duration>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<maxmem>\d+) MB\t(?P<rest>.*)$"
)
INIT_RE = re.compile(r"Init Duration: (\d+\.\d{2}) ms\t")


@dataclasses.dataclass
class Report:
    request_id: str
    duration: float
    billed: int
    memory: int
    max_memory: int
    init_duration: float | None
    line: str


def parse_report(line: str) -> Report:
    m = REPORT_RE.search(line)
    assert m, f"REPORT line does not have Lambda's format: {line!r}"
    init = INIT_RE.search(m.group("rest"))
    return Report(m.group("id"), float(m.group("duration")), int(m.group("billed")),
                  int(m.group("memory")), int(m.group("maxmem")),
                  float(init.group(1)) if init else None, line)


def report_for(text: str, request_id: str) -> Report:
    lines = [ln for ln in text.splitlines() if ln.startswith(f"REPORT RequestId: {request_id}")]
    assert len(lines) == 1, (f"expected one REPORT line for {request_id}, found {len(lines)} "
                             f"in:\n{text}")
    return parse_report(lines[0])


def check_billed(rep: Report) -> None:
    assert rep.billed >= math.ceil(rep.duration), f"Billed Duration below Duration: {rep.line!r}"
    if rep.init_duration is None:
        assert rep.billed <= math.ceil(rep.duration) + 1, (
            f"Billed Duration is not Duration rounded up to the millisecond: {rep.line!r}")


class KindlingLogs:
    """`kindling logs FUNCTION --data-dir DIR`: lines `<ISO timestamp>\\t<message>`."""

    def __init__(self, binary: Path, data_dir: Path, store_args: list[str] | None = None):
        self.binary = binary
        self.data_dir = data_dir
        # The server's `--store URL`, when its functions live in PostgreSQL.
        self.store_args = list(store_args or [])

    def raw(self, function: str) -> str:
        proc = subprocess.run([str(self.binary), "logs", function, "--data-dir", str(self.data_dir),
                               *self.store_args],
                              capture_output=True, timeout=30)
        assert proc.returncode == 0, f"kindling logs {function} failed rc={proc.returncode}: {proc.stderr!r}"
        # Decoded as is: a "\r" inside an event (Node.js's multi-line console.log) stays one.
        return proc.stdout.decode("utf-8", "replace")

    def messages(self, function: str) -> list[str]:
        out = []
        for line in self.raw(function).splitlines():
            if not line:
                continue
            ts, sep, message = line.partition("\t")
            assert sep, f"log line without a tab after the timestamp: {line!r}"
            assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$", ts), (
                f"log line does not start with an ISO timestamp: {line!r}")
            out.append(message)
        return out

    def wait_contains(self, function: str, needle: str, timeout: float = 20.0) -> list[str]:
        return wait_for(lambda: (lambda m: m if any(needle in x for x in m) else None)(
            self.messages(function)), timeout=timeout, interval=0.2,
            what=f"{needle!r} in `kindling logs {function}`")


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment or command line contains `marker` (root sees every namespace)."""
    needle = marker.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for what in ("environ", "cmdline"):
            try:
                with open(f"/proc/{entry}/{what}", "rb") as f:
                    if needle in f.read():
                        pids.append(int(entry))
                        break
            except OSError:
                continue
    return pids


def kill_pids(pids: list[int]) -> None:
    """SIGKILL the given runtime processes (ones a test's own server started and leaked)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def describe_pids(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ln.startswith("State:")), "")
        except OSError:
            cmd, state = "<gone>", ""
        out.append(f"{pid}: {cmd.strip()} ({state})")
    return "; ".join(out)


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


class KindlingServer:
    """`kindling serve --listen 127.0.0.1:<port> --data-dir <dir> [extra args]`."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, args: list[str],
                 nofile: tuple[int, int] | None = None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.args = args
        # (soft, hard) RLIMIT_NOFILE the server starts with, else the test process's.
        self.nofile = nofile
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> KindlingLogs:
        store: list[str] = []
        if "--store" in self.args:
            i = self.args.index("--store")
            store = self.args[i:i + 2]
        return KindlingLogs(self.binary, self.data_dir, store)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def start(self, timeout: float = 30.0) -> "KindlingServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", str(self.data_dir), *self.args]
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== {' '.join(cmd)}\n".encode())
            log.flush()
            limits = self.nofile

            def preexec() -> None:
                if limits is not None:
                    resource.setrlimit(resource.RLIMIT_NOFILE, limits)

            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=preexec if limits else None)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            try:
                rc = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                self.proc = None
                raise RuntimeError(f"kindling exited with status {rc} before accepting "
                                   f"connections ({' '.join(cmd)}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"kindling did not listen within {timeout}s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status (kills and raises after `timeout`)."""
        assert self.proc is not None, "not running"
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"kindling did not exit within {timeout}s of SIGTERM:\n"
                                     f"{self.log_tail()}") from None
        self.returncode = proc.returncode
        return proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


_HELP_CACHE: dict[str, str] = {}


def serve_help(binary: Path) -> str:
    key = str(binary)
    if key not in _HELP_CACHE:
        proc = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True,
                              timeout=30)
        _HELP_CACHE[key] = proc.stdout + proc.stderr
    return _HELP_CACHE[key]


def supports_flag(binary: Path, flag: str) -> bool:
    return flag in serve_help(binary)


def expected_isolation_is_namespaces() -> bool:
    """Whether functions should see Lambda's file layout (/var/task): namespaces isolation,
    which `auto` picks when running as root."""
    iso = os.environ.get("KINDLING_E2E_ISOLATION", "auto")
    return iso.startswith("namespaces") or (iso == "auto" and os.geteuid() == 0)
