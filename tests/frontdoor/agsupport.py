"""Helpers of the API Gateway tests of the front-door suite (HTTP APIs and REST APIs): boto3
clients as fixtures, functions from source, permissions for apigateway.amazonaws.com, requests
with deadlines. Packaging (zips, vendored Powertools) is fdsupport's."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

import support
from conftest import client
from fdsupport import POWERTOOLS, vendor, zip_with  # noqa: F401  (re-exported for the tests)

ACCOUNT = support.ACCOUNT
REGION = support.REGION


@pytest.fixture(scope="session")
def apigw(endpoint):
    return client("apigateway")


@pytest.fixture(scope="session")
def apigw_raw(endpoint):
    """Client-side validation off, so values the model forbids reach the server."""
    return client("apigateway", validate=False)


@pytest.fixture(scope="session")
def apigwv2(endpoint):
    return client("apigatewayv2")


@pytest.fixture(scope="session")
def apigwv2_raw(endpoint):
    return client("apigatewayv2", validate=False)


def unique(prefix: str = "ag") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def function_arn(name: str, qualifier: str | None = None) -> str:
    return support.function_arn(name, qualifier)


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
