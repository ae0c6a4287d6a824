"""The mapping control plane: Create/Get/Update/Delete/ListEventSourceMappings with Lambda's
shapes, states and validation; targets (function, version, alias); mappings go with their
function and survive a restart."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from botocore.exceptions import ClientError

import support
from esm_support import (clients_for, make_function, make_queue, map_queue, processed_ids,
                         send_many, unique, wait_for, wait_state)


def error(excinfo) -> tuple[str, int, str]:
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def test_lifecycle_and_shapes(lam, sqs, sink):
    fn = make_function(lam, sink)
    _, arn = make_queue(sqs, VisibilityTimeout=30)
    m = lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert m["State"] == "Creating" and m["StateTransitionReason"] == "USER_INITIATED"
    assert m["BatchSize"] == 10 and m["MaximumBatchingWindowInSeconds"] == 0
    assert m["EventSourceArn"] == arn
    assert m["FunctionArn"] == support.function_arn(fn)
    assert m["FunctionResponseTypes"] == []
    assert isinstance(m["LastModified"], dt.datetime)
    assert m["EventSourceMappingArn"].endswith(f":event-source-mapping:{m['UUID']}")
    uuid_ = m["UUID"]
    got = wait_state(lam, uuid_, "Enabled")
    assert got["UUID"] == uuid_

    listed = lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid_]
    by_arn = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [x["UUID"] for x in by_arn] == [uuid_]

    up = lam.update_event_source_mapping(
        UUID=uuid_, BatchSize=50, MaximumBatchingWindowInSeconds=2,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"k": ["v"]}}'}]})
    assert up["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert up["State"] == "Updating"
    got = wait_state(lam, uuid_, "Enabled")
    assert got["BatchSize"] == 50 and got["MaximumBatchingWindowInSeconds"] == 2
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert got["FilterCriteria"] == {"Filters": [{"Pattern": '{"body": {"k": ["v"]}}'}]}

    off = lam.update_event_source_mapping(UUID=uuid_, Enabled=False)
    assert off["State"] == "Disabling"
    wait_state(lam, uuid_, "Disabled")
    on = lam.update_event_source_mapping(UUID=uuid_, Enabled=True)
    assert on["State"] == "Enabling"
    wait_state(lam, uuid_, "Enabled")

    gone = lam.delete_event_source_mapping(UUID=uuid_)
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert gone["State"] == "Deleting"

    def deleted():
        try:
            lam.get_event_source_mapping(UUID=uuid_)
            return False
        except ClientError as e:
            return e.response["Error"]["Code"] == "ResourceNotFoundException"

    wait_for(deleted, timeout=20, what="the mapping to be deleted")
    assert lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"] == []


def test_validation(lam, lam_raw, sqs, sink):
    fn = make_function(lam, sink, timeout=60)
    _, short_vt = make_queue(sqs, VisibilityTimeout=30)
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=short_vt)
    assert error(e)[:2] == ("InvalidParameterValueException", 400)
    assert error(e)[2] == ("Queue visibility timeout: 30 seconds is less than Function "
                           "timeout: 60 seconds")

    fn = make_function(lam, sink)
    _, arn = make_queue(sqs)
    missing = arn.rsplit(":", 1)[0] + ":" + unique("nope")
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=missing)
    assert error(e)[:2] == ("InvalidParameterValueException", 400)
    assert "NonExistentQueue" in error(e)[2]

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn, BatchSize=11)
    assert error(e)[0] == "InvalidParameterValueException"
    assert "Maximum batch window in seconds must be greater than 0" in error(e)[2]

    for bad, field in [({"BatchSize": 0}, "batchSize"),
                       ({"BatchSize": 10001}, "batchSize"),
                       ({"MaximumBatchingWindowInSeconds": 301}, "maximumBatchingWindowInSeconds"),
                       ({"ScalingConfig": {"MaximumConcurrency": 1}},
                        "scalingConfig.maximumConcurrency"),
                       ({"ScalingConfig": {"MaximumConcurrency": 1001}},
                        "scalingConfig.maximumConcurrency"),
                       ({"FunctionResponseTypes": ["Nope"]}, "functionResponseTypes")]:
        with pytest.raises(ClientError) as e:
            lam_raw.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn, **bad)
        code, status, message = error(e)
        assert (code, status) == ("ValidationException", 400), bad
        assert f"at '{field}'" in message, message

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn,
                                        FilterCriteria={"Filters": [{"Pattern": "{nope"}]})
    assert error(e)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn,
                                        StartingPosition="LATEST")
    assert error(e)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=unique("nofn"), EventSourceArn=arn)
    assert error(e)[:2] == ("ResourceNotFoundException", 404)

    _, fifo = make_queue(sqs, unique("f") + ".fifo")
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=fifo, BatchSize=11,
                                        MaximumBatchingWindowInSeconds=1)
    assert error(e)[0] == "InvalidParameterValueException"

    ok = lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn, BatchSize=100,
                                         MaximumBatchingWindowInSeconds=1)
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn)
    assert error(e)[:2] == ("ResourceConflictException", 409)
    assert ok["UUID"] in error(e)[2]

    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID="9f0a2c1e-0000-4000-8000-000000000000")
    assert error(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID="9f0a2c1e-0000-4000-8000-000000000000", BatchSize=5)
    assert error(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam_raw.list_event_source_mappings(EventSourceArn=arn, MaxItems=0)
    assert error(e)[0] == "ValidationException"


def test_alias_target_and_function_deletion(lam, sqs, sink):
    fn = make_function(lam, sink)
    version = support.publish(lam, fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=version)
    url, arn = make_queue(sqs)
    uuid_ = map_queue(lam, f"{fn}:live", arn)
    m = lam.get_event_source_mapping(UUID=uuid_)
    assert m["FunctionArn"] == support.function_arn(fn, "live")
    assert [x["UUID"] for x in
            lam.list_event_source_mappings(FunctionName=f"{fn}:live")["EventSourceMappings"]] == [uuid_]
    send_many(sqs, url, ["hello"])
    wait_for(lambda: processed_ids(sink, fn), timeout=60, what="the alias to be invoked")
    assert sink.get(fn)[0]["arn"] == support.function_arn(fn, "live")

    lam.delete_function(FunctionName=fn)

    def gone():
        try:
            lam.get_event_source_mapping(UUID=uuid_)
            return False
        except ClientError as e:
            return e.response["Error"]["Code"] == "ResourceNotFoundException"

    wait_for(gone, timeout=10, what="the mapping to go with its function")
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"] == []
    # Its pollers stopped (within the manager's reconcile interval): a new message stays in the
    # queue and no function runs.
    time.sleep(2)
    reports = len(sink.get(fn))
    send_many(sqs, url, ["after"])
    time.sleep(3)
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in msgs] == ["after"]
    assert len(sink.get(fn)) == reports


def test_mappings_survive_a_restart(server_factory, sink, tmp_path):
    data = tmp_path / "data"
    srv = server_factory(data_dir=data)
    sqs, lam = clients_for(srv.url)
    fn = make_function(lam, sink)
    url, arn = make_queue(sqs)
    uuid_ = map_queue(lam, fn, arn, BatchSize=5)
    srv.stop()
    srv2 = server_factory(data_dir=data)
    sqs, lam = clients_for(srv2.url)
    m = wait_state(lam, uuid_, "Enabled")
    assert m["BatchSize"] == 5
    ids = send_many(sqs, url, [f"m{i}" for i in range(12)])
    wait_for(lambda: set(ids) <= set(processed_ids(sink, fn)), timeout=60,
             what="messages sent after the restart to be processed")
    support.stop_cleanly(srv2)
