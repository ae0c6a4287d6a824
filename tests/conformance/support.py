"""Shared helpers for the Kindling control-plane conformance suite.

Everything here talks to Kindling only through real AWS clients (boto3 / botocore and the
aws CLI), so a test that passes means an unmodified client works against the server.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/kindling-conformance"
RUNTIME = "python3.12"
HANDLER = "lambda_function.handler"

# `YYYY-MM-DDThh:mm:ss.sss+0000` (FunctionConfiguration.LastModified, layer CreatedDate).
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Standard base64 of a 32-byte digest: 43 significant characters and one '=' pad.
B64_SHA256_RE = re.compile(r"^[A-Za-z0-9+/]{43}=$")

MB = 1024 * 1024
ZIPPED_LIMIT = 52_428_800  # CodeSizeZipped
UNZIPPED_LIMIT = 262_144_000  # CodeSizeUnzipped

TOO_LARGE_CODES = ("RequestEntityTooLargeException", "RequestTooLargeException")

# Keys that FunctionConfiguration items of ListFunctions may omit (AWS leaves state out of lists).
LIST_OMITTABLE_KEYS = {
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
}


# --------------------------------------------------------------------------------------------
# Names, ARNs, payloads
# --------------------------------------------------------------------------------------------


def unique(prefix: str = "fn") -> str:
    """A function/layer/alias name that no other test uses (fits the 64-char name limit)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier is not None else arn


def partial_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier is not None else arn


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


_FIXED_DATE = (2024, 1, 2, 3, 4, 6)


def make_zip(files: dict[str, bytes | str] | None = None, *, marker: str = "") -> bytes:
    """A small, deterministic deployment package. `marker` makes the bytes (and sha256) unique."""
    if files is None:
        files = {
            "lambda_function.py": (
                "def handler(event, context):\n"
                f"    return {{'marker': {marker!r}, 'event': event}}\n"
            )
        }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, content.encode() if isinstance(content, str) else content)
    return buf.getvalue()


def make_incompressible_zip(size: int) -> bytes:
    """A zip whose *compressed* size is a bit above `size` bytes (random data, stored)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        info = zipfile.ZipInfo("random.bin", date_time=_FIXED_DATE)
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, os.urandom(size))
    return buf.getvalue()


def make_zero_zip(unzipped_size: int, name: str = "zeros.bin") -> bytes:
    """A tiny zip (deflated zeros) that expands to `unzipped_size` bytes."""
    buf = io.BytesIO()
    chunk = b"\0" * MB
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        with zf.open(name, "w", force_zip64=True) as f:
            remaining = unzipped_size
            while remaining > 0:
                n = min(remaining, len(chunk))
                f.write(chunk[:n])
                remaining -= n
    return buf.getvalue()


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def parse_timestamp(value: str) -> dt.datetime:
    assert TIMESTAMP_RE.match(value), f"timestamp {value!r} is not YYYY-MM-DDThh:mm:ss.sss+0000"
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def assert_recent(value: str, slack_seconds: float = 600) -> None:
    """A LastModified/CreatedDate string must be 'now' in UTC (catches local-time offsets)."""
    ts = parse_timestamp(value)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - ts).total_seconds()) < slack_seconds, f"{value} is not close to {now}"


def strip_meta(resp: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def download(url: str) -> bytes:
    assert isinstance(url, str) and re.match(r"^https?://", url), f"not an absolute URL: {url!r}"
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - test code
        assert resp.status == 200, f"GET {url} -> {resp.status}"
        return resp.read()


# --------------------------------------------------------------------------------------------
# Response recording (every response: x-amzn-RequestId; every error: x-amzn-ErrorType; no 5xx)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorded:
    operation: str
    status: int
    headers: dict[str, str]
    request_id: str | None
    error_code: str | None


RESPONSES: list[Recorded] = []


def _record_response(http_response, parsed, model, **_kwargs) -> None:
    headers = {k.lower(): v for k, v in http_response.headers.items()}
    meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
    error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    RESPONSES.append(
        Recorded(
            operation=model.name,
            status=http_response.status_code,
            headers=headers,
            request_id=meta.get("RequestId"),
            error_code=error.get("Code"),
        )
    )


def sanitize_error_type(value: str) -> str:
    """What botocore does with x-amzn-ErrorType: text before ':' and after the last '#'."""
    value = value.split(":", 1)[0]
    return value.rsplit("#", 1)[-1]


def check_recorded_responses(responses: list[Recorded]) -> list[str]:
    problems = []
    for r in responses:
        if not r.headers.get("x-amzn-requestid"):
            problems.append(f"{r.operation} -> HTTP {r.status} without an x-amzn-RequestId header")
        elif not r.request_id:
            problems.append(f"{r.operation}: botocore found no ResponseMetadata.RequestId")
        if r.status >= 500:
            problems.append(f"{r.operation} -> HTTP {r.status} ({r.error_code}): server error")
        if r.status >= 300:
            etype = r.headers.get("x-amzn-errortype")
            if not etype:
                problems.append(f"{r.operation} -> HTTP {r.status} without x-amzn-ErrorType")
            elif sanitize_error_type(etype) != r.error_code:
                problems.append(
                    f"{r.operation}: x-amzn-ErrorType {etype!r} disagrees with parsed code "
                    f"{r.error_code!r}"
                )
    return problems


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def make_client(endpoint: str, *, validate: bool = True, read_timeout: int = 120):
    """A boto3 Lambda client for Kindling: dummy credentials, no retries, optional client-side
    parameter validation (off lets us send values the model forbids and see the server's answer)."""
    session = boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name=REGION,
    )
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=validate,
        connect_timeout=10,
        read_timeout=read_timeout,
    )
    client = session.client("lambda", endpoint_url=endpoint, config=config)
    client.meta.events.register("after-call.lambda", _record_response)
    return client


# --------------------------------------------------------------------------------------------
# Error assertions
# --------------------------------------------------------------------------------------------


def check_client_error(
    err: ClientError,
    code: str | tuple[str, ...] | dict[str, int],
    status: int | None = None,
    message_contains: str | tuple[str, ...] | None = None,
) -> None:
    """Assert the exact error code(s), HTTP status, x-amzn-ErrorType header and message."""
    got_code = err.response.get("Error", {}).get("Code")
    meta = err.response.get("ResponseMetadata", {})
    got_status = meta.get("HTTPStatusCode")
    headers = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}
    message = err.response.get("Error", {}).get("Message", "")
    desc = f"got {got_code} / HTTP {got_status}: {message!r}"
    if isinstance(code, dict):
        assert got_code in code, f"expected one of {sorted(code)}, {desc}"
        assert got_status == code[got_code], f"expected HTTP {code[got_code]} for {got_code}, {desc}"
    else:
        codes = (code,) if isinstance(code, str) else code
        assert got_code in codes, f"expected {' or '.join(codes)}, {desc}"
        if status is not None:
            assert got_status == status, f"expected HTTP {status}, {desc}"
    etype = headers.get("x-amzn-errortype")
    assert etype, f"error response without x-amzn-ErrorType header ({desc})"
    assert sanitize_error_type(etype) == got_code, f"x-amzn-ErrorType {etype!r} vs code {got_code}"
    assert meta.get("RequestId"), "error response without x-amzn-RequestId"
    if message_contains is not None:
        needles = (message_contains,) if isinstance(message_contains, str) else message_contains
        for needle in needles:
            assert needle in message, f"message {message!r} does not contain {needle!r}"


@contextlib.contextmanager
def expect_error(
    code: str | tuple[str, ...] | dict[str, int],
    status: int | None = None,
    message_contains: str | tuple[str, ...] | None = None,
) -> Iterator[Any]:
    """`with expect_error("ResourceNotFoundException", 404): client.get_function(...)`"""
    with pytest.raises(ClientError) as excinfo:
        yield excinfo
    check_client_error(excinfo.value, code, status, message_contains)


# --------------------------------------------------------------------------------------------
# Function helpers
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Fn:
    name: str
    zip: bytes
    resp: dict[str, Any]

    @property
    def arn(self) -> str:
        return function_arn(self.name)


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def wait_active(lam, name: str, qualifier: str | None = None, timeout: float = 15.0) -> dict:
    """Wait until State == Active and LastUpdateStatus is not InProgress."""
    kwargs = {"FunctionName": name}
    if qualifier is not None:
        kwargs["Qualifier"] = qualifier
    holder: dict[str, Any] = {}

    def ready():
        cfg = lam.get_function_configuration(**kwargs)
        holder["cfg"] = cfg
        assert cfg.get("State") != "Failed", f"function {name} went to Failed: {cfg}"
        return cfg.get("State") == "Active" and cfg.get("LastUpdateStatus") != "InProgress"

    try:
        wait_for(ready, timeout=timeout, what=f"{name} to become Active")
    except AssertionError as e:
        raise AssertionError(f"{e}; last configuration: {holder.get('cfg')}") from None
    return holder["cfg"]


def create_function(lam, name: str | None = None, *, zip_bytes: bytes | None = None,
                    wait: bool = True, **kwargs) -> Fn:
    name = name or unique()
    zip_bytes = zip_bytes if zip_bytes is not None else make_zip(marker=name)
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": RUNTIME,
        "Role": ROLE,
        "Handler": HANDLER,
        "Code": {"ZipFile": zip_bytes},
    }
    params.update(kwargs)
    resp = lam.create_function(**params)
    if wait:
        wait_active(lam, name)
    return Fn(name=name, zip=zip_bytes, resp=resp)


def update_code(lam, name: str, zip_bytes: bytes, **kwargs) -> dict:
    resp = lam.update_function_code(FunctionName=name, ZipFile=zip_bytes, **kwargs)
    wait_active(lam, name)
    return resp


def update_config(lam, name: str, **kwargs) -> dict:
    resp = lam.update_function_configuration(FunctionName=name, **kwargs)
    wait_active(lam, name)
    return resp


def publish(lam, name: str, **kwargs) -> dict:
    resp = lam.publish_version(FunctionName=name, **kwargs)
    wait_active(lam, name, qualifier=resp["Version"])
    return resp


def list_all(lam, operation: str, result_key: str, **kwargs) -> list[dict]:
    """Follow NextMarker by hand (no paginator), asserting the marker protocol as we go."""
    items: list[dict] = []
    marker = None
    seen_markers = set()
    for _ in range(10_000):
        call = dict(kwargs)
        if marker:
            call["Marker"] = marker
        page = getattr(lam, operation)(**call)
        items.extend(page[result_key])
        marker = page.get("NextMarker")
        if not marker:
            return items
        assert marker not in seen_markers, f"{operation}: NextMarker {marker!r} repeated"
        seen_markers.add(marker)
    raise AssertionError(f"{operation}: pagination did not terminate")


def version_numbers(lam, name: str) -> list[str]:
    return [v["Version"] for v in list_all(lam, "list_versions_by_function", "Versions",
                                            FunctionName=name)]


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KindlingServer:
    """`kindling serve --listen 127.0.0.1:<port> --data-dir <dir>` as a child process."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, extra_args: list[str] | None = None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def start(self, timeout: float = 30.0) -> "KindlingServer":
        assert self.proc is None, "already started"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = open(self.log_path, "ab")
        cmd = [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", str(self.data_dir), *self.extra_args]
        log.write(f"\n==== {' '.join(cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            try:
                # Doubles as the pause between attempts and as crash detection.
                rc = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                self.proc = None
                raise RuntimeError(
                    f"kindling exited with status {rc} before accepting connections:\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"kindling did not accept connections on port {self.port} within "
                    f"{timeout}s:\n{self.log_tail()}"
                )

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait; returns the exit status (kills and raises if it does not exit)."""
        assert self.proc is not None, "not running"
        proc = self.proc
        self.proc = None
        if proc.poll() is not None:
            return proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"kindling did not exit within {timeout}s of SIGTERM:\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def stop_cleanly(srv: KindlingServer) -> None:
    """SIGTERM the server and require exit status 0 (a clean, graceful shutdown)."""
    if not srv.running:
        raise AssertionError(f"kindling died during the tests:\n{srv.log_tail()}")
    rc = srv.stop()
    assert rc == 0, f"kindling exited with status {rc} after SIGTERM:\n{srv.log_tail()}"


# --------------------------------------------------------------------------------------------
# The aws CLI (v1, same interpreter/venv as the tests)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        assert self.stdout.strip(), f"no JSON on stdout (rc={self.rc}, stderr={self.stderr!r})"
        return json.loads(self.stdout)


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY",
                                                     "http_proxy", "https_proxy")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        AWS_PAGER="",
        HOME=str(home),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


class AwsCli:
    def __init__(self, endpoint: str, cwd: Path):
        self.endpoint = endpoint
        self.cwd = cwd
        self.env = cli_env(cwd)

    def __call__(self, *args: str, timeout: float = 120) -> CliResult:
        cmd = [sys.executable, "-m", "awscli", "lambda", *args,
               "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json"]
        proc = subprocess.run(cmd, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str) -> Any:
        res = self(*args)
        assert res.rc == 0, f"aws lambda {' '.join(args)} failed rc={res.rc}: {res.stderr}"
        return res.json if res.stdout.strip() else None
