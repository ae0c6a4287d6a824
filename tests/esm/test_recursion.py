"""Recursive loop detection: a function that sends to the queue that invokes it is stopped
after 16 invocations by the same chain of events (the `Lineage` of the X-Ray trace header that
botocore forwards from `_X_AMZN_TRACE_ID` and SQS keeps as `AWSTraceHeader`); the event goes to
the queue's dead-letter queue. `RecursiveLoop: Allow` lets the loop run."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

import support
from esm_support import (boto3_files, drain, make_function, make_queue, map_queue, queue_counts,
                         redrive, wait_for, wait_state)

LOOPER = r'''
import json, os, urllib.request
import boto3

sqs = boto3.client("sqs")  # AWS_ENDPOINT_URL and the function's credentials, from the environment

def handler(event, context):
    for r in event["Records"]:
        req = urllib.request.Request(os.environ["SINK"], method="POST", data=json.dumps(
            {"ids": [r["messageId"]], "failed": [], "body": r["body"],
             "trace": os.environ.get("_X_AMZN_TRACE_ID")}).encode())
        urllib.request.urlopen(req, timeout=10).read()
        sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=str(int(r["body"]) + 1))
    return {}
'''


@pytest.fixture(scope="module")
def looper_zip():
    return support.make_zip({**boto3_files(), "lambda_function.py": LOOPER})


def looping_function(lam, sqs, sink, endpoint, looper_zip):
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout=30)
    redrive(sqs, url, dlq_arn, 5)
    fn = make_function(lam, sink, zip_bytes=looper_zip, timeout=30, MemorySize=256,
                       env={"QUEUE_URL": url, "AWS_ENDPOINT_URL": endpoint})
    return fn, url, arn, dlq_url


def test_recursion_config_api(lam, lam_raw, sink):
    fn = make_function(lam, sink)
    assert lam.get_function_recursion_config(FunctionName=fn)["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Allow")[
        "RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName=fn)["RecursiveLoop"] == "Allow"
    with pytest.raises(ClientError) as e:
        lam_raw.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Sometimes")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        lam.get_function_recursion_config(FunctionName=fn + "-missing")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_loop_through_sqs_stops_after_16_invocations(lam, sqs, sink, endpoint, looper_zip):
    fn, url, arn, dlq_url = looping_function(lam, sqs, sink, endpoint, looper_zip)
    map_queue(lam, fn, arn)
    sqs.send_message(QueueUrl=url, MessageBody="0")
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= 1, timeout=180, interval=0.5,
             what="the looping event in the dead-letter queue")
    dead = drain(sqs, dlq_url)
    assert [m["Body"] for m in dead] == ["16"]
    reports = sink.get(fn)
    assert sorted(int(r["body"]) for r in reports) == list(range(16))
    last = max(reports, key=lambda r: int(r["body"]))
    assert "Lineage=" in last["trace"] and last["trace"].rstrip().endswith(":16"), last["trace"]
    assert queue_counts(sqs, url) == (0, 0)


def test_allow_lets_the_loop_run(lam, sqs, sink, endpoint, looper_zip):
    fn, url, arn, dlq_url = looping_function(lam, sqs, sink, endpoint, looper_zip)
    lam.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Allow")
    uuid_ = map_queue(lam, fn, arn)
    sqs.send_message(QueueUrl=url, MessageBody="0")
    wait_for(lambda: len(sink.get(fn)) >= 20, timeout=180, interval=0.5,
             what="the loop to pass 16 invocations")
    lam.update_event_source_mapping(UUID=uuid_, Enabled=False)
    wait_state(lam, uuid_, "Disabled")
    assert queue_counts(sqs, dlq_url)[0] == 0


FAILING = r'''
import json, os, urllib.request

def handler(event, context):
    req = urllib.request.Request(os.environ["SINK"], method="POST", data=json.dumps(
        {"ids": [context.aws_request_id], "failed": [context.aws_request_id],
         "trace": os.environ.get("_X_AMZN_TRACE_ID")}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    raise RuntimeError("always fails")
'''


def test_a_function_that_is_its_own_failure_destination_stops(lam, sqs, sink):
    dlq_url, dlq_arn = make_queue(sqs)
    fn = make_function(lam, sink, zip_bytes=support.make_zip({"lambda_function.py": FAILING}),
                       DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=fn, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": support.function_arn(fn)}})
    lam.invoke(FunctionName=fn, InvocationType="Event", Payload=b'{"n": 0}')
    # Each failed invocation sends the event to the DLQ (and to itself as OnFailure); the 17th is
    # not invoked: it goes to the DLQ only, and the chain ends.
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= 17, timeout=180, interval=0.5,
             what="16 failures and the stopped event in the dead-letter queue")
    time.sleep(3)
    assert queue_counts(sqs, dlq_url)[0] == 17
    reports = sink.get(fn)
    assert len(reports) == 16, len(reports)
    assert any(r["trace"].rstrip().endswith(":16") for r in reports)


PUBLISHER = r'''
import json, os, urllib.request
import boto3

sns = boto3.client("sns")

def handler(event, context):
    n = int(json.loads(event["Records"][0]["Sns"]["Message"])["n"])
    req = urllib.request.Request(os.environ["SINK"], method="POST", data=json.dumps(
        {"ids": [context.aws_request_id], "failed": [], "n": n,
         "trace": os.environ.get("_X_AMZN_TRACE_ID")}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps({"n": n + 1}))
'''


def test_a_loop_through_sns_stops_after_16_invocations(lam, sqs, sink, endpoint):
    import esm_support
    sns = esm_support.client("sns")
    topic = sns.create_topic(Name=support.unique("loop"))["TopicArn"]
    dlq_url, dlq_arn = make_queue(sqs)
    fn = make_function(lam, sink, zip_bytes=support.make_zip(
        {**boto3_files(), "lambda_function.py": PUBLISHER}), timeout=30, MemorySize=256,
        env={"TOPIC_ARN": topic, "AWS_ENDPOINT_URL": endpoint},
        DeadLetterConfig={"TargetArn": dlq_arn})
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=support.function_arn(fn))
    sns.publish(TopicArn=topic, Message=json.dumps({"n": 0}))
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] >= 1, timeout=180, interval=0.5,
             what="the stopped event in the dead-letter queue")
    time.sleep(2)
    assert sorted(r["n"] for r in sink.get(fn)) == list(range(16))
    body = json.loads(drain(sqs, dlq_url)[0]["Body"])
    assert json.loads(body["Records"][0]["Sns"]["Message"]) == {"n": 16}
