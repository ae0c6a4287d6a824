"""Helpers of the API Gateway suite: functions from source, Powertools zips, permissions,
requests to invoke URLs with deadlines."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import requests

import support

ACCOUNT = support.ACCOUNT
REGION = support.REGION
POWERTOOLS = os.environ.get("KINDLING_POWERTOOLS_SPEC", "aws-lambda-powertools>=3,<4")

_vendor_lock = threading.Lock()
_vendored: dict[str, Path] = {}


def unique(prefix: str = "ag") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def function_arn(name: str, qualifier: str | None = None) -> str:
    return support.function_arn(name, qualifier)


def vendor(spec: str, into: Path) -> Path:
    """`pip install --target` of `spec`, once per process."""
    with _vendor_lock:
        if spec in _vendored:
            return _vendored[spec]
        target = into / ("vendor-" + uuid.uuid4().hex[:8])
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(target), spec]
        subprocess.run(cmd, check=True, timeout=600)
        _vendored[spec] = target
        return target


def zip_with(files: dict[str, str | bytes], vendored: Path | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if vendored is not None:
            for path in sorted(vendored.rglob("*")):
                rel = path.relative_to(vendored)
                if path.is_file() and "__pycache__" not in rel.parts:
                    z.write(path, rel.as_posix())
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def python_function(lam, source: str, *, zip_bytes: bytes | None = None, name: str | None = None,
                    **kwargs) -> str:
    name = name or unique("fn")
    support.create_function(lam, name, zip_bytes=zip_bytes or zip_with({"app.py": source}),
                            Handler="app.handler", **kwargs)
    return name


def allow_apigateway(lam, name: str, source_arn: str | None = None,
                     qualifier: str | None = None) -> None:
    extra = {"SourceArn": source_arn} if source_arn else {}
    if qualifier:
        extra["Qualifier"] = qualifier
    lam.add_permission(FunctionName=name, StatementId=unique("apigw"),
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                       **extra)


def get(url: str, method: str = "GET", timeout: float = 60, **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=timeout, **kwargs)


def wait_log(server, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_path.read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in Kindling's log:\n{server.log_tail()}")


# A handler that answers with the event it got (payload 2.0 or 1.0), so tests can look at it.
ECHO = """
import json, os, time
def handler(event, context):
    body = event.get("body")
    if body == "sleep":
        time.sleep(3)
    if body == "malformed":
        return {"statusCode": "not-a-status", "body": {"not": "a string"}}
    if body == "raise":
        raise RuntimeError("boom")
    return {"statusCode": 200, "headers": {"content-type": "application/json",
            "access-control-allow-origin": "https://function.example"},
            "cookies": ["a=1", "b=2; Path=/"], "body": json.dumps(event)}
"""
