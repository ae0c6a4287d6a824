"""Qualifiers: numbered versions, aliases, weighted aliases and updates of $LATEST."""

from __future__ import annotations

import math

import pytest

import kindling_e2e as k


def _two_versions(lam, kind: k.RuntimeKind) -> str:
    """A function with version 1 (marker v1), version 2 (marker v2) and $LATEST (marker latest)."""
    name = k.create_function(lam, kind, marker="v1")
    assert k.publish(lam, name) == "1"
    k.update_code(lam, name, kind.zip("v2"))
    assert k.publish(lam, name) == "2"
    k.update_code(lam, name, kind.zip("latest"))
    return name


def test_versions_and_aliases(lam, kind):
    name = _two_versions(lam, kind)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    cases = [
        # (FunctionName, Qualifier, executed version, marker, invoked ARN)
        (name, None, "$LATEST", "latest", k.function_arn(name)),
        (name, "$LATEST", "$LATEST", "latest", k.function_arn(name, "$LATEST")),
        (f"{name}:1", None, "1", "v1", k.function_arn(name, "1")),
        (name, "2", "2", "v2", k.function_arn(name, "2")),
        (f"{name}:live", None, "1", "v1", k.function_arn(name, "live")),
        (name, "live", "1", "v1", k.function_arn(name, "live")),
        (k.function_arn(name, "2"), None, "2", "v2", k.function_arn(name, "2")),
    ]
    for fn_name, qualifier, version, marker, arn in cases:
        inv = k.invoke(lam, fn_name, {"env": "AWS_LAMBDA_FUNCTION_VERSION"}, qualifier=qualifier)
        info = inv.ok()
        where = f"invoke {fn_name} Qualifier={qualifier}"
        assert inv.executed_version == version, f"{where}: ExecutedVersion {inv.executed_version}"
        assert info["marker"] == marker, f"{where}: ran the code of {info['marker']}"
        assert info["function_version"] == version, f"{where}: context version {info['function_version']}"
        assert info["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == version, where
        assert info["invoked_function_arn"] == arn, f"{where}: invoked ARN {info['invoked_function_arn']}"
        m = k.LOG_STREAM_RE.match(info["log_stream_name"])
        assert m and m.group(4) == version, f"{where}: log stream {info['log_stream_name']}"

    # Moving the alias moves its invocations.
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    inv = k.invoke(lam, name, {"info": True}, qualifier="live")
    assert (inv.executed_version, inv.ok()["marker"]) == ("2", "v2")


@pytest.mark.slow
@pytest.mark.runtimes("rust", "python")
def test_weighted_alias_splits_traffic(lam, kind):
    name = _two_versions(lam, kind)
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    n = 200
    executed = {"1": 0, "2": 0}
    for i in range(n):
        inv = k.invoke(lam, name, {"info": True}, qualifier="canary")
        info = inv.ok()
        v = inv.executed_version
        assert v in executed, f"invoke {i}: ExecutedVersion {v!r}"
        assert info["marker"] == f"v{v}", f"invoke {i}: ExecutedVersion {v} but code {info['marker']}"
        assert info["function_version"] == v
        assert info["invoked_function_arn"] == k.function_arn(name, "canary")
        executed[v] += 1
    share = executed["2"] / n
    sd = math.sqrt(0.3 * 0.7 / n)
    assert executed["1"] > 0 and executed["2"] > 0, f"only one version ran: {executed}"
    assert abs(share - 0.3) <= 0.12, (
        f"version 2 got {share:.3f} of {n} invokes (expected 0.3 +- 0.12, sd {sd:.3f}): {executed}")


def test_update_of_latest_is_picked_up(lam, kind):
    name = k.create_function(lam, kind, marker="before")
    first = k.invoke(lam, name, {"info": True}).ok()
    assert first["marker"] == "before"
    k.update_code(lam, name, kind.zip("after"))
    second = k.invoke(lam, name, {"info": True}).ok()
    assert second["marker"] == "after", "the next invoke ran the old code"
    assert second["count"] == 1, "an environment with the old code was reused"
    assert second["log_stream_name"] != first["log_stream_name"]


def test_recreated_function_runs_new_code(lam, kind):
    """Deleting a function retires its warm environments: a new function of the same name runs
    its own code."""
    name = k.create_function(lam, kind, marker="old")
    assert k.invoke(lam, name, {"info": True}).ok()["marker"] == "old"
    lam.delete_function(FunctionName=name)
    err = k.invoke_error(lam, name, {"info": True})
    k.assert_api_error(err, "ResourceNotFoundException", 404)
    k.create_function(lam, kind, name=name, marker="new")
    info = k.invoke(lam, name, {"info": True}).ok()
    assert (info["marker"], info["count"]) == ("new", 1), info


def test_published_version_keeps_warm_state_separately(lam, kinds):
    kind = kinds["python"]
    name = k.create_function(lam, kind, marker="v1")
    k.publish(lam, name)
    assert k.invoke(lam, name, {"info": True}, qualifier="1").ok()["count"] == 1
    assert k.invoke(lam, name, {"info": True}).ok()["count"] == 1, "$LATEST reused version 1's environment"
    assert k.invoke(lam, name, {"info": True}, qualifier="1").ok()["count"] == 2
