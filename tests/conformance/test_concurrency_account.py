"""Put/Get/DeleteFunctionConcurrency and GetAccountSettings.

This module runs against its own fresh server so that account-wide numbers (function count,
code size, unreserved concurrency) are exact."""

from __future__ import annotations

import pytest

from support import (
    ACCOUNT,
    create_function,
    expect_error,
    function_arn,
    make_zip,
    stop_cleanly,
    partial_arn,
    publish,
    unique,
    update_code,
)

MIN_MSG = "below its minimum value of [100]"


@pytest.fixture(scope="module")
def server(server_factory):
    srv = server_factory()
    yield srv
    stop_cleanly(srv)


@pytest.fixture(autouse=True)
def no_reservations_left(lam):
    """Every test starts and must end with no reserved concurrency anywhere."""
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    yield
    settings = lam.get_account_settings()
    if settings["AccountLimit"]["UnreservedConcurrentExecutions"] != 1000:
        for f in lam.list_functions()["Functions"]:
            lam.delete_function_concurrency(FunctionName=f["FunctionName"])


def test_account_settings_on_a_fresh_server(lam):
    resp = lam.get_account_settings()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["AccountLimit"] == {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert resp["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}


def test_account_usage_tracks_functions_and_code(lam):
    before = lam.get_account_settings()["AccountUsage"]
    a = create_function(lam)
    b = create_function(lam)
    usage = lam.get_account_settings()["AccountUsage"]
    assert usage["FunctionCount"] == before["FunctionCount"] + 2
    assert usage["TotalCodeSize"] == before["TotalCodeSize"] + len(a.zip) + len(b.zip)
    # A published version is not a new function, but its code counts towards storage.
    publish(lam, a.name)
    usage = lam.get_account_settings()["AccountUsage"]
    assert usage["FunctionCount"] == before["FunctionCount"] + 2
    assert usage["TotalCodeSize"] == before["TotalCodeSize"] + 2 * len(a.zip) + len(b.zip)
    lam.delete_function(FunctionName=a.name)
    lam.delete_function(FunctionName=b.name)
    assert lam.get_account_settings()["AccountUsage"] == before


def test_put_get_delete_function_concurrency(lam):
    fn = create_function(lam)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=fn.name)
    resp = lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=10)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ReservedConcurrentExecutions"] == 10
    got = lam.get_function_concurrency(FunctionName=fn.name)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["ReservedConcurrentExecutions"] == 10
    assert lam.get_function(FunctionName=fn.name)["Concurrency"] == \
        {"ReservedConcurrentExecutions": 10}
    limit = lam.get_account_settings()["AccountLimit"]
    assert limit["ConcurrentExecutions"] == 1000
    assert limit["UnreservedConcurrentExecutions"] == 990
    deleted = lam.delete_function_concurrency(FunctionName=fn.name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=fn.name)
    assert "Concurrency" not in lam.get_function(FunctionName=fn.name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_unreserved_is_limit_minus_sum_of_reservations(lam):
    fns = [create_function(lam) for _ in range(3)]
    for fn, n in zip(fns, (100, 250, 50)):
        lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=n)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 600
    # Replacing a reservation counts the new value, not old + new.
    lam.put_function_concurrency(FunctionName=fns[1].name, ReservedConcurrentExecutions=20)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 830
    # Deleting a function releases its reservation.
    lam.delete_function(FunctionName=fns[0].name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 930
    for fn in fns[1:]:
        lam.delete_function_concurrency(FunctionName=fn.name)


def test_reservation_may_not_push_unreserved_below_100(lam):
    a = create_function(lam)
    b = create_function(lam)
    with expect_error("InvalidParameterValueException", 400, message_contains=MIN_MSG):
        lam.put_function_concurrency(FunctionName=a.name, ReservedConcurrentExecutions=901)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=a.name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    # Exactly 100 left is allowed.
    lam.put_function_concurrency(FunctionName=a.name, ReservedConcurrentExecutions=900)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    with expect_error("InvalidParameterValueException", 400, message_contains=MIN_MSG):
        lam.put_function_concurrency(FunctionName=b.name, ReservedConcurrentExecutions=1)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=b.name)
    # Lowering an existing reservation is fine, and frees room for another one.
    lam.put_function_concurrency(FunctionName=a.name, ReservedConcurrentExecutions=800)
    lam.put_function_concurrency(FunctionName=b.name, ReservedConcurrentExecutions=100)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    with expect_error("InvalidParameterValueException", 400, message_contains=MIN_MSG):
        lam.put_function_concurrency(FunctionName=a.name, ReservedConcurrentExecutions=801)
    assert lam.get_function_concurrency(FunctionName=a.name)["ReservedConcurrentExecutions"] \
        == 800
    for fn in (a, b):
        lam.delete_function_concurrency(FunctionName=fn.name)


def test_zero_reservation_is_allowed(lam):
    fn = create_function(lam)
    resp = lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=0)
    assert resp["ReservedConcurrentExecutions"] == 0
    assert lam.get_function_concurrency(FunctionName=fn.name)["ReservedConcurrentExecutions"] == 0
    assert lam.get_function(FunctionName=fn.name)["Concurrency"] == \
        {"ReservedConcurrentExecutions": 0}
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    lam.delete_function_concurrency(FunctionName=fn.name)


def test_negative_reservation_is_a_validation_error(lam_raw):
    fn = create_function(lam_raw)
    with expect_error("ValidationException", 400):
        lam_raw.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=-1)
    assert "ReservedConcurrentExecutions" not in lam_raw.get_function_concurrency(
        FunctionName=fn.name)


@pytest.mark.parametrize("form", ["partial-arn", "full-arn"])
def test_concurrency_accepts_arn_forms(lam, form):
    fn = create_function(lam)
    ident = partial_arn(fn.name) if form == "partial-arn" else function_arn(fn.name)
    lam.put_function_concurrency(FunctionName=ident, ReservedConcurrentExecutions=5)
    assert lam.get_function_concurrency(FunctionName=ident)["ReservedConcurrentExecutions"] == 5
    lam.delete_function_concurrency(FunctionName=ident)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=ident)


def test_reservation_survives_code_updates_and_applies_to_versions(lam):
    fn = create_function(lam)
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=7)
    update_code(lam, fn.name, make_zip(marker="conc"))
    publish(lam, fn.name)
    assert lam.get_function_concurrency(FunctionName=fn.name)["ReservedConcurrentExecutions"] == 7
    assert lam.get_function(FunctionName=fn.name, Qualifier="1")["Concurrency"] == \
        {"ReservedConcurrentExecutions": 7}
    lam.delete_function_concurrency(FunctionName=fn.name)


@pytest.mark.parametrize("qualifier", ["1", "$LATEST", "live"])
def test_concurrency_on_a_version_or_alias_is_refused(lam, qualifier):
    fn = create_function(lam)
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "This operation is permitted on Lambda functions only.")):
        lam.put_function_concurrency(FunctionName=function_arn(fn.name, qualifier),
                                     ReservedConcurrentExecutions=3)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=fn.name)


def test_concurrency_on_missing_function(lam):
    name = unique("noconc")
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(name)):
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function_concurrency(FunctionName=name)
    with expect_error("ResourceNotFoundException", 404):
        lam.delete_function_concurrency(FunctionName=name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_account_id_in_arns(lam):
    fn = create_function(lam)
    assert fn.resp["FunctionArn"].split(":")[4] == ACCOUNT
