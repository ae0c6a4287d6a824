"""Helpers of the observability suite: functions, the aws CLI, polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import support  # the conformance suite's helpers (conftest puts it on the path)

VENV_BIN = Path(sys.executable).parent

# A function that logs what the event asks, as text and as JSON records.
LOGGER_CODE = """
import json, sys
def handler(event, context):
    for line in event.get("lines", []):
        print(line)
    for rec in event.get("records", []):
        print(json.dumps(rec))
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"ok": True, "request": context.aws_request_id}
"""


def make_function(lam, name: str | None = None, code: str = LOGGER_CODE, **kwargs) -> str:
    name = name or support.unique("obs")
    support.create_function(
        lam, name, zip_bytes=support.make_zip({"lambda_function.py": code}), **kwargs
    )
    return name


def invoke(lam, name: str, event: dict, **kwargs) -> dict:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    resp["body"] = resp["Payload"].read()
    return resp


def aws(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """The aws CLI (v1, from the venv) with AWS_ENDPOINT_URL from the environment only."""
    proc = subprocess.run([str(VENV_BIN / "aws"), *args, "--output", "json"], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def aws_json(*args: str) -> dict:
    return json.loads(aws(*args).stdout or "{}")


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
