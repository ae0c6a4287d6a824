"""Put/Get/Delete/ListProvisionedConcurrencyConfig(s) through boto3: Lambda's rules (published
versions and aliases only, one configuration per version, within reserved concurrency or the
account's unreserved pool), statuses IN_PROGRESS -> READY (or FAILED with a reason), list
pagination, and the account figures they move.

This module runs against its own fresh server so that account-wide numbers are exact."""

from __future__ import annotations

import re

import pytest

from support import (
    create_function,
    expect_error,
    function_arn,
    make_zip,
    publish,
    stop_cleanly,
    unique,
    wait_for,
)

LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?\+0000$")
ON_LATEST = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."


@pytest.fixture(scope="module")
def server(server_factory):
    srv = server_factory()
    yield srv
    stop_cleanly(srv)


def _ready(lam, name, qualifier, allocated):
    def check():
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert cfg["Status"] != "FAILED", cfg
        return cfg if cfg["Status"] == "READY" else None

    cfg = wait_for(check, timeout=60, interval=0.1, what=f"{name}:{qualifier} to be READY")
    assert cfg["AllocatedProvisionedConcurrentExecutions"] == allocated
    assert cfg["AvailableProvisionedConcurrentExecutions"] == allocated
    return cfg


def _published(lam, versions=1):
    fn = create_function(lam)
    out = []
    for i in range(versions):
        if i:
            lam.update_function_configuration(FunctionName=fn.name, Description=f"v{i + 1}")
            wait_for(lambda: lam.get_function_configuration(FunctionName=fn.name)
                     ["LastUpdateStatus"] == "Successful")
        out.append(publish(lam, fn.name)["Version"])
    return fn.name, out


def _delete(lam, name):
    for c in lam.list_provisioned_concurrency_configs(FunctionName=name)[
            "ProvisionedConcurrencyConfigs"]:
        lam.delete_provisioned_concurrency_config(
            FunctionName=name, Qualifier=c["FunctionArn"].rsplit(":", 1)[1])
    lam.delete_function(FunctionName=name)


def test_put_get_list_delete_on_a_version(lam):
    name, (v1,) = _published(lam)
    resp = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=1)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    body = {k: v for k, v in resp.items() if k != "ResponseMetadata"}
    assert body.pop("LastModified")
    assert body == {
        "RequestedProvisionedConcurrentExecutions": 1,
        "AvailableProvisionedConcurrentExecutions": 0,
        "AllocatedProvisionedConcurrentExecutions": 0,
        "Status": "IN_PROGRESS",
    }
    assert LAST_MODIFIED_RE.match(resp["LastModified"]), resp["LastModified"]
    cfg = _ready(lam, name, v1, 1)
    assert cfg["RequestedProvisionedConcurrentExecutions"] == 1
    assert "FunctionArn" not in cfg and "StatusReason" not in cfg
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    [item] = listed["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"] == function_arn(name, v1)
    assert item["Status"] == "READY"
    assert "NextMarker" not in listed
    # Reserved concurrency is not provisioned concurrency.
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)

    resp = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v1)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("ProvisionedConcurrencyConfigNotFoundException", 404,
                      "No Provisioned Concurrency Config found for this function") as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=v1)
    assert isinstance(e.value, lam.exceptions.ProvisionedConcurrencyConfigNotFoundException)
    # Deleting again changes nothing and is not an error.
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v1)
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    lam.delete_function(FunctionName=name)


def test_an_alias_and_the_arn_forms(lam):
    name, (v1,) = _published(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=function_arn(name), Qualifier="live", ProvisionedConcurrentExecutions=1)
    cfg = _ready(lam, f"{name}:live", "live", 1)
    [item] = lam.list_provisioned_concurrency_configs(
        FunctionName=function_arn(name))["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"] == function_arn(name, "live")
    assert item["LastModified"] == cfg["LastModified"]
    _delete(lam, name)


def test_latest_is_refused(lam):
    fn = create_function(lam)
    with expect_error("InvalidParameterValueException", 400, ON_LATEST):
        lam.put_provisioned_concurrency_config(
            FunctionName=fn.name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
    lam.create_alias(FunctionName=fn.name, Name="edge", FunctionVersion="$LATEST")
    with expect_error("InvalidParameterValueException", 400, ON_LATEST):
        lam.put_provisioned_concurrency_config(
            FunctionName=fn.name, Qualifier="edge", ProvisionedConcurrentExecutions=1)
    for call in (lam.get_provisioned_concurrency_config,
                 lam.delete_provisioned_concurrency_config):
        with expect_error("InvalidParameterValueException", 400, NOT_PUBLISHED):
            call(FunctionName=fn.name, Qualifier="$LATEST")
    lam.delete_function(FunctionName=fn.name)


def test_missing_function_version_alias(lam):
    missing = unique("missing")
    with expect_error("ResourceNotFoundException", 404, f"Function not found: {function_arn(missing)}"):
        lam.put_provisioned_concurrency_config(
            FunctionName=missing, Qualifier="1", ProvisionedConcurrentExecutions=1)
    with expect_error("ResourceNotFoundException", 404):
        lam.list_provisioned_concurrency_configs(FunctionName=missing)
    name, _ = _published(lam)
    with expect_error("ResourceNotFoundException", 404,
                      f"Function not found: {function_arn(name, '7')}"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="7", ProvisionedConcurrentExecutions=1)
    with expect_error("ResourceNotFoundException", 404,
                      f"Cannot find alias arn: {function_arn(name, 'nope')}"):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="nope")
    with expect_error("ResourceNotFoundException", 404):
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="nope")
    lam.delete_function(FunctionName=name)


def test_model_constraints(lam_raw):
    name, (v1,) = _published(lam_raw)
    for bad in (0, -3):
        with expect_error("ValidationException", 400,
                          f"Value '{bad}' at 'provisionedConcurrentExecutions'"):
            lam_raw.put_provisioned_concurrency_config(
                FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=bad)
    lam_raw.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=1)
    for bad in (0, 51):
        with expect_error("ValidationException", 400, f"Value '{bad}' at 'maxItems'"):
            lam_raw.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=bad)
    _delete(lam_raw, name)


def test_one_configuration_per_version(lam):
    name, (v1, v2) = _published(lam, versions=2)
    lam.create_alias(FunctionName=name, Name="blue", FunctionVersion=v1)
    lam.create_alias(FunctionName=name, Name="green", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=1)
    with expect_error("ResourceConflictException", 409,
                      "Alias can't be used for Provisioned Concurrency configuration on an "
                      "already Provisioned version"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="blue", ProvisionedConcurrentExecutions=1)
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="blue", ProvisionedConcurrentExecutions=1)
    with expect_error("ResourceConflictException", 409,
                      "Version is pointed by a Provisioned Concurrency alias"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=1)
    with expect_error("ResourceConflictException", 409):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="green", ProvisionedConcurrentExecutions=1)
    # Updating the alias's own configuration is fine.
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="blue", ProvisionedConcurrentExecutions=2)
    assert lam.get_provisioned_concurrency_config(
        FunctionName=name, Qualifier="blue")["RequestedProvisionedConcurrentExecutions"] == 2
    # An alias with routing weights cannot carry provisioned concurrency.
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion=v2,
                     RoutingConfig={"AdditionalVersionWeights": {v1: 0.1}})
    with expect_error("InvalidParameterValueException", 400, "Alias with weights"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="canary", ProvisionedConcurrentExecutions=1)
    _delete(lam, name)


def test_reserved_and_unreserved_concurrency(lam):
    def unreserved():
        return lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    base = unreserved()
    name, (v1, v2) = _published(lam, versions=2)
    # Without a reservation it comes out of the unreserved pool, which keeps its minimum.
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=3)
    assert unreserved() == base - 3
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 1000
    with expect_error("InvalidParameterValueException", 400,
                      "decreases account's UnreservedConcurrentExecution below its minimum "
                      "value of [100]"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=v2, ProvisionedConcurrentExecutions=base - 3 - 99)
    with expect_error("InvalidParameterValueException", 400,
                      "greater than account's unreserved concurrency"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=v2, ProvisionedConcurrentExecutions=5000)
    # With a reservation it must fit in it (all of the function's configurations together).
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=4)
    assert unreserved() == base - 4
    with expect_error("InvalidParameterValueException", 400,
                      "Requested Provisioned Concurrency should not be greater than the "
                      "reservedConcurrentExecution for function"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=v2, ProvisionedConcurrentExecutions=2)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v2, ProvisionedConcurrentExecutions=1)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 4
    lam.delete_function_concurrency(FunctionName=name)
    assert unreserved() == base - 4
    _delete(lam, name)
    assert unreserved() == base


def test_list_pagination(lam):
    name, versions = _published(lam, versions=3)
    lam.create_alias(FunctionName=name, Name="zed", FunctionVersion=versions[2])
    for q in (versions[0], versions[1], "zed"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=q, ProvisionedConcurrentExecutions=1)
    first = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=2)
    assert len(first["ProvisionedConcurrencyConfigs"]) == 2
    assert first["NextMarker"]
    second = lam.list_provisioned_concurrency_configs(
        FunctionName=name, MaxItems=2, Marker=first["NextMarker"])
    assert len(second["ProvisionedConcurrencyConfigs"]) == 1
    assert "NextMarker" not in second
    arns = [c["FunctionArn"] for c in
            first["ProvisionedConcurrencyConfigs"] + second["ProvisionedConcurrencyConfigs"]]
    assert arns == [function_arn(name, q) for q in (versions[0], versions[1], "zed")]
    paged = [c["FunctionArn"]
             for page in lam.get_paginator("list_provisioned_concurrency_configs").paginate(
                 FunctionName=name, PaginationConfig={"PageSize": 1})
             for c in page["ProvisionedConcurrencyConfigs"]]
    assert paged == arns
    _delete(lam, name)


def test_init_failure_is_failed_with_a_reason(lam):
    fn = create_function(lam, zip_bytes=make_zip(
        {"lambda_function.py": "raise RuntimeError('no init for you')\n"
                               "def handler(event, context):\n    return 1\n"}))
    v1 = publish(lam, fn.name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fn.name, Qualifier=v1, ProvisionedConcurrentExecutions=1)

    def failed():
        cfg = lam.get_provisioned_concurrency_config(FunctionName=fn.name, Qualifier=v1)
        return cfg if cfg["Status"] == "FAILED" else None

    cfg = wait_for(failed, timeout=60, what="the configuration to fail")
    assert cfg["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert cfg["AllocatedProvisionedConcurrentExecutions"] == 0
    _delete(lam, fn.name)
