"""Invoke API edges: payload limits, non-JSON payloads, DryRun, unknown functions."""

from __future__ import annotations

import json

import pytest

import kindling_e2e as k

SYNC_LIMIT = 6 * 1024 * 1024  # 6 MiB
ASYNC_LIMIT = 1024 * 1024  # 1 MiB (Event)


@pytest.fixture(scope="module")
def py_fn(lam, kinds):
    """One Python function shared by the API-edge tests (they never reach the handler twice in
    a way that matters)."""
    return k.create_function(lam, kinds["python"])


def _json_of_size(size: int) -> bytes:
    body = b'"' + b"a" * (size - 2) + b'"'
    assert len(body) == size
    return body


def test_request_over_6mb_is_413(lam, py_fn):
    err = k.invoke_error(lam, py_fn, raw=_json_of_size(SYNC_LIMIT + 1))
    k.assert_api_error(err, "RequestTooLargeException", 413)


def test_event_request_over_1mb_is_413(lam, py_fn):
    err = k.invoke_error(lam, py_fn, raw=_json_of_size(ASYNC_LIMIT + 1), invocation_type="Event")
    k.assert_api_error(err, "RequestTooLargeException", 413)


def test_event_request_over_256kb_is_accepted(lam, py_fn):
    inv = k.invoke(lam, py_fn, raw=_json_of_size(300 * 1024), invocation_type="Event")
    assert inv.status == 202


@pytest.mark.parametrize("raw", [b"not json", b"{\"a\": 1", b"{'a': 1}", b"\xff\xfe"],
                         ids=["text", "truncated", "single-quotes", "binary"])
def test_non_json_payload_is_rejected(lam, py_fn, raw):
    err = k.invoke_error(lam, py_fn, raw=raw)
    k.assert_api_error(err, "InvalidRequestContentException", 400)


def test_dry_run_does_not_run_the_function(lam, kinds):
    name = k.create_function(lam, kinds["python"])
    inv = k.invoke(lam, name, {"info": True}, invocation_type="DryRun")
    assert inv.status == 204
    assert inv.payload == b""
    # The handler never ran: the first real invocation is the first one the function sees.
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 1


def test_dry_run_of_missing_function_is_404(lam):
    err = k.invoke_error(lam, k.unique("e2e-missing"), {}, invocation_type="DryRun")
    k.assert_api_error(err, "ResourceNotFoundException", 404)


def test_unknown_function_and_version_are_404(lam, py_fn):
    err = k.invoke_error(lam, k.unique("e2e-missing"), {})
    k.assert_api_error(err, "ResourceNotFoundException", 404)
    err = k.invoke_error(lam, py_fn, {}, qualifier="42")
    k.assert_api_error(err, "ResourceNotFoundException", 404)
    err = k.invoke_error(lam, py_fn, {}, qualifier="nosuchalias")
    k.assert_api_error(err, "ResourceNotFoundException", 404)


def test_event_to_missing_function_is_404(lam):
    err = k.invoke_error(lam, k.unique("e2e-missing"), {}, invocation_type="Event")
    k.assert_api_error(err, "ResourceNotFoundException", 404)


def test_response_is_json_content_type(lam, py_fn):
    inv = k.invoke(lam, py_fn, {"a": 1})
    assert json.loads(inv.payload) == {"a": 1}
    assert inv.headers.get("content-type", "").startswith("application/json"), inv.headers
