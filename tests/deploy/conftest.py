"""Harness for the deploy suite: one real `kindling serve` per session, the aws CLI v1 and
the SAM CLI pointed at it with `AWS_ENDPOINT_URL` only, boto3 clients for checking results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import harness  # noqa: E402
import support  # noqa: E402

VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"

harness.isolate_aws_env()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    path = harness.kindling_binary()
    logs = tmp_path_factory.mktemp("logs")
    # A DeploymentPreference "minute" of 0.4 s: canary deployments finish in seconds.
    srv = support.KindlingServer(path, tmp_path_factory.mktemp("data"), logs / "kindling.log",
                                 ["--traffic-shift-minute", "0.4"])
    srv.start()
    os.environ["AWS_ENDPOINT_URL"] = srv.url
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.url


def client(service: str):
    return boto3.client(service, region_name=REGION,
                        config=Config(retries={"max_attempts": 1}, read_timeout=120))


@pytest.fixture(scope="session")
def cfn(endpoint):
    return client("cloudformation")


@pytest.fixture(scope="session")
def lam(endpoint):
    return client("lambda")


@pytest.fixture(scope="session")
def sqs(endpoint):
    return client("sqs")


@pytest.fixture(scope="session")
def sns(endpoint):
    return client("sns")


@pytest.fixture(scope="session")
def s3(endpoint):
    return client("s3")


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self) -> str:
        return f"rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 300,
        env: dict | None = None) -> Run:
    full_env = dict(os.environ)
    full_env["PATH"] = f"{VENV_BIN}:{full_env.get('PATH', '')}"
    full_env["SAM_CLI_TELEMETRY"] = "0"
    full_env["AWS_PAGER"] = ""
    if env:
        full_env.update(env)
    return Run(subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout))


_last_deploy_second = 0


def changeset_deploy(start):
    """Runs `start()`, an `aws cloudformation deploy` or `sam deploy`, in a wall-clock second of
    its own. Both CLIs name their change set after the second they reach CreateChangeSet in
    (`awscli-cloudformation-package-deploy-<epoch>`, `samcli-deploy<epoch>`), and a no-change
    deploy leaves its FAILED change set behind, as AWS does; two deploys of one stack within
    one second collide with AlreadyExistsException against AWS as against Kindling. The
    previous deploy named its change set no later than the second it ended in, so the next
    one starts after that second."""
    global _last_deploy_second
    deadline = time.monotonic() + 5
    while int(time.time()) <= _last_deploy_second and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        return start()
    finally:
        _last_deploy_second = int(time.time())


def aws(*args: str, **kw) -> Run:
    cmd = [sys.executable, "-m", "awscli", *args]
    if args[:2] == ("cloudformation", "deploy"):
        return changeset_deploy(lambda: run(cmd, **kw))
    return run(cmd, **kw)


def stack_events(cfn, name: str) -> list[tuple[str, str, str]]:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
            for e in reversed(events)]


def outputs(cfn, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def invoke(lam, name: str, payload: dict | None = None) -> dict:
    res = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode())
    body = res["Payload"].read()
    assert "FunctionError" not in res, body
    return json.loads(body)


def call(endpoint: str, url: str) -> tuple[int, dict | str]:
    """GETs an API's URL: the host form (`https://<id>.execute-api.<region>.amazonaws.com/...`,
    as templates' Outputs print it) through Kindling's endpoint with its Host header, any other
    URL as it is."""
    parts = urllib.parse.urlsplit(url)
    headers = {}
    if ".execute-api." in parts.netloc:
        headers["Host"] = parts.netloc
        url = endpoint + parts.path + (f"?{parts.query}" if parts.query else "")
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")
