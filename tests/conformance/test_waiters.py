"""The SDK waiters that tools (Terraform, SAM, CDK, the CLI) run against the control plane."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import WaiterError

from support import (
    HANDLER,
    ROLE,
    RUNTIME,
    create_function,
    make_zip,
    unique,
    wait_active,
)

FAST = {"Delay": 1, "MaxAttempts": 15}


def _create(lam, name=None):
    return create_function(lam, name, wait=False)


def test_function_active_v2(lam):
    fn = _create(lam)
    lam.get_waiter("function_active_v2").wait(FunctionName=fn.name, WaiterConfig=FAST)
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["State"] == "Active"


def test_function_active(lam):
    fn = _create(lam)
    lam.get_waiter("function_active").wait(FunctionName=fn.name, WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=fn.name)["State"] == "Active"


def test_function_exists_for_existing_function(lam):
    fn = _create(lam)
    started = time.monotonic()
    lam.get_waiter("function_exists").wait(FunctionName=fn.name, WaiterConfig=FAST)
    assert time.monotonic() - started < 5


def test_function_exists_waits_for_creation(lam):
    name = unique("later")
    errors = []

    def create_later():
        try:
            time.sleep(1.5)
            lam.create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER,
                                Code={"ZipFile": make_zip(marker=name)})
        except Exception as e:  # surfaced below
            errors.append(e)

    t = threading.Thread(target=create_later)
    t.start()
    try:
        lam.get_waiter("function_exists").wait(FunctionName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    finally:
        t.join()
    assert not errors, errors


def test_function_exists_gives_up_on_missing_function(lam):
    name = unique("never")
    with pytest.raises(WaiterError) as excinfo:
        lam.get_waiter("function_exists").wait(FunctionName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    last = excinfo.value.last_response
    assert last["Error"]["Code"] == "ResourceNotFoundException"


def test_function_updated_after_code_update(lam):
    fn = create_function(lam)
    lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip(marker="upd"))
    lam.get_waiter("function_updated").wait(FunctionName=fn.name, WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=fn.name)["LastUpdateStatus"] == "Successful"


def test_function_updated_v2_after_configuration_update(lam):
    fn = create_function(lam)
    lam.update_function_configuration(FunctionName=fn.name, MemorySize=512)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig=FAST)
    cfg = lam.get_function(FunctionName=fn.name)["Configuration"]
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["MemorySize"] == 512


def test_published_version_active(lam):
    fn = create_function(lam)
    version = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=fn.name, Qualifier=version,
                                                    WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=fn.name,
                                          Qualifier=version)["State"] == "Active"


def test_active_waiter_fails_fast_on_missing_function(lam):
    started = time.monotonic()
    with pytest.raises(WaiterError):
        lam.get_waiter("function_active_v2").wait(FunctionName=unique("nope"),
                                                  WaiterConfig=FAST)
    assert time.monotonic() - started < 5


def test_waiters_after_full_deploy_sequence(lam):
    """The sequence deploy tools run: create, wait active, update code, wait updated, update
    config, wait updated, publish, wait version active."""
    name = unique("deploy")
    lam.create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER,
                        Code={"ZipFile": make_zip(marker=name)})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip(marker=name + "-2"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A1": "1"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=v,
                                                    WaiterConfig=FAST)
    cfg = wait_active(lam, name, qualifier=v)
    assert cfg["Environment"] == {"Variables": {"A1": "1"}}
