"""The X-Ray trace header through async invokes, destinations, SQS and SNS (AWSTraceHeader),
and OTLP spans (request, queue wait, init, invoke) received by a collector the test runs."""

from __future__ import annotations

import json
import time

import support
from conftest import OtlpReceiver, client
from obs_support import invoke, make_function, wait_for

TRACED = """
import os, json
def handler(event, context):
    print("TRACE " + os.environ.get("_X_AMZN_TRACE_ID", ""))
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}
"""

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def header(parent: str = "53995c3f42cd8ad8") -> str:
    return f"Root={ROOT};Parent={parent};Sampled=1"


def with_trace_header(c, operation: str, value: str):
    """The client sends X-Amzn-Trace-Id on `operation`, as SDKs do inside a function."""
    def add(request, **_):
        request.headers["X-Amzn-Trace-Id"] = value
    c.meta.events.register(f"before-sign.{c.meta.service_model.service_name}.{operation}", add)
    return c


def fields(h: str) -> dict:
    return dict(p.split("=", 1) for p in h.split(";") if "=" in p)


def traces_in_logs(logs, function: str) -> list[str]:
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}",
                                        filterPattern='"TRACE "')["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"].split(" ", 1)[1] for e in events]


def test_sync_invoke_continues_the_callers_trace_and_exports_spans(lam, otlp):
    name = make_function(lam, code=TRACED)
    traced = with_trace_header(client("lambda"), "Invoke", header())
    resp = traced.invoke(FunctionName=name, Payload=b"{}")
    runtime_header = json.loads(resp["Payload"].read())["trace"]
    f = fields(runtime_header)
    assert f["Root"] == ROOT and f["Parent"] != "53995c3f42cd8ad8"
    trace_id = ROOT[2:].replace("-", "")

    def spans():
        # The function is the spans' resource (OpenTelemetry's FaaS resource attributes).
        mine = [s for s in otlp.spans(function=name) if s["traceId"] == trace_id]
        return mine if {"invoke", "init"} <= {s["name"] for s in mine} else None
    mine = wait_for(spans, timeout=30, what="the invocation's spans")
    by_name = {s["name"]: s for s in mine}
    request = by_name[f"{name} request"]
    assert request["parentSpanId"] == "53995c3f42cd8ad8"
    assert request["kind"] == 2
    attrs = {a["key"]: a["value"] for a in request["attributes"]}
    assert attrs["faas.coldstart"] == {"boolValue": True}
    assert attrs["faas.invocation_id"]["stringValue"] == resp["ResponseMetadata"]["RequestId"]
    assert attrs["aws.lambda.invoked_arn"] == {"stringValue": support.function_arn(name)}
    resource = next(r for r, s in otlp.resource_spans() if s["spanId"] == request["spanId"])
    assert resource == {
        "service.name": {"stringValue": "kindling"},
        "cloud.provider": {"stringValue": "kindling"},
        "faas.name": {"stringValue": name},
        "faas.version": {"stringValue": "$LATEST"},
        "cloud.resource_id": {"stringValue": support.function_arn(name)},
    }
    # Every span carries its invocation's id, none repeats the resource's attributes.
    for s in mine:
        keys = [a["key"] for a in s["attributes"]]
        assert keys[0] == "faas.invocation_id" and not set(keys) & set(resource), keys
    init, run = by_name["init"], by_name["invoke"]
    for child in (init, run):
        assert child["parentSpanId"] == request["spanId"]
        assert int(request["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
        assert int(child["endTimeUnixNano"]) <= int(request["endTimeUnixNano"])
    # The function's own segment continues from the invoke span.
    assert run["spanId"] == f["Parent"]
    assert int(init["endTimeUnixNano"]) <= int(run["startTimeUnixNano"])
    assert otlp.paths and all(p == "/v1/traces" for p in otlp.paths)
    # Protobuf unless asked otherwise (decoded by opentelemetry-proto's classes).
    assert otlp.content_types and set(otlp.content_types) == {"application/x-protobuf"}
    # A warm invocation: no init span.
    traced2 = with_trace_header(client("lambda"), "Invoke", header("1111111111111111"))
    traced2.invoke(FunctionName=name, Payload=b"{}")

    def warm():
        s = [s for s in otlp.spans() if s.get("parentSpanId") == "1111111111111111"]
        return s or None
    warm_request = wait_for(warm, timeout=30, what="the warm request span")[0]
    children = [s for s in otlp.spans() if s.get("parentSpanId") == warm_request["spanId"]]
    assert "init" not in {c["name"] for c in children}
    # Through an alias and directly, version 1 is one resource: cloud.resource_id is the
    # version's ARN (as GetFunctionConfiguration reports it), the request span says how it
    # was invoked (OpenTelemetry's semantic conventions for AWS Lambda).
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    version_arn = support.function_arn(name, version)
    assert lam.get_function_configuration(
        FunctionName=name, Qualifier=version)["FunctionArn"] == version_arn
    for parent, qualifier in (("7777777777777777", "live"), ("8888888888888888", version)):
        with_trace_header(client("lambda"), "Invoke", header(parent)).invoke(
            FunctionName=name, Qualifier=qualifier, Payload=b"{}")

        def called(parent=parent):
            s = [(r, s) for r, s in otlp.resource_spans() if s.get("parentSpanId") == parent]
            return s or None
        resource, span = wait_for(called, timeout=30, what=f"the request span via {qualifier}")[0]
        assert resource["faas.version"] == {"stringValue": version}
        assert resource["cloud.resource_id"] == {"stringValue": version_arn}
        attrs = {a["key"]: a["value"] for a in span["attributes"]}
        assert attrs["aws.lambda.invoked_arn"] == {
            "stringValue": support.function_arn(name, qualifier)}


def test_an_all_zero_parent_keeps_the_callers_root_and_lineage(lam):
    """An all-zero Parent is an invalid span id (W3C, OTLP), i.e. no parent: the Root is still
    the caller's, and the other fields (Lineage: recursive loop detection) with it."""
    name = make_function(lam, code=TRACED)
    sent = f"Root={ROOT};Parent=0000000000000000;Sampled=1;Lineage=0badf00d:4"
    resp = with_trace_header(client("lambda"), "Invoke", sent).invoke(
        FunctionName=name, Payload=b"{}")
    f = fields(json.loads(resp["Payload"].read())["trace"])
    assert f["Root"] == ROOT, f
    assert f["Parent"] != "0000000000000000", f
    assert f.get("Lineage") == "0badf00d:4", f


def test_spans_in_otlp_json_when_asked(server_factory):
    receiver = OtlpReceiver()
    srv = server_factory(extra=["--otlp-endpoint", receiver.url, "--otlp-protocol", "http/json"])
    try:
        lam = client("lambda", endpoint_url=srv.url)
        name = make_function(lam, code=TRACED)
        traced = with_trace_header(client("lambda", endpoint_url=srv.url), "Invoke",
                                   header("2222222222222222"))
        traced.invoke(FunctionName=name, Payload=b"{}")

        def request():
            return [s for s in receiver.spans() if s.get("parentSpanId") == "2222222222222222"]
        span = wait_for(request, timeout=30, what="the request span in OTLP/JSON")[0]
        assert span["name"] == f"{name} request" and span["traceId"] == ROOT[2:].replace("-", "")
        assert span in receiver.spans(function=name)
        assert set(receiver.content_types) == {"application/json"}
    finally:
        support.stop_cleanly(srv)
        receiver.server.shutdown()


def test_async_invoke_and_function_destination_continue_the_trace(lam, logs, otlp):
    second = make_function(lam, code=TRACED)
    first = make_function(lam, code=TRACED)
    lam.put_function_event_invoke_config(
        FunctionName=first,
        DestinationConfig={"OnSuccess": {"Destination": support.function_arn(second)}})
    traced = with_trace_header(client("lambda"), "Invoke", header("2222222222222222"))
    resp = traced.invoke(FunctionName=first, InvocationType="Event", Payload=b"{}")
    assert resp["StatusCode"] == 202
    seen_first = wait_for(lambda: traces_in_logs(logs, first), timeout=60, what="first's trace")
    seen_second = wait_for(lambda: traces_in_logs(logs, second), timeout=60,
                           what="the destination's trace")
    assert fields(seen_first[0])["Root"] == ROOT
    assert fields(seen_second[0])["Root"] == ROOT
    trace_id = ROOT[2:].replace("-", "")

    def queued():
        return [s for s in otlp.spans() if s["traceId"] == trace_id and s["name"] == "queue wait"]
    assert wait_for(queued, timeout=30, what="a queue wait span")


def test_sqs_messages_carry_the_trace_header(lam):
    sqs = with_trace_header(client("sqs"), "SendMessage", header("3333333333333333"))
    url = sqs.create_queue(QueueName=support.unique("traced"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"],
                              WaitTimeSeconds=5)["Messages"][0]
    assert got["Attributes"]["AWSTraceHeader"] == header("3333333333333333")
    # A header the sender set itself wins.
    sqs.send_message(QueueUrl=url, MessageBody="own", MessageSystemAttributes={
        "AWSTraceHeader": {"DataType": "String", "StringValue": header("4444444444444444")}})
    got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"],
                              WaitTimeSeconds=5)["Messages"][0]
    assert got["Attributes"]["AWSTraceHeader"] == header("4444444444444444")


def test_failure_destination_queue_and_sns_carry_the_trace(lam, logs):
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=support.unique("onfailure"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    failing = make_function(lam, code=TRACED)
    lam.put_function_event_invoke_config(
        FunctionName=failing, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}})
    traced = with_trace_header(client("lambda"), "Invoke", header("5555555555555555"))
    traced.invoke(FunctionName=failing, InvocationType="Event", Payload=b'{"fail": true}')

    def record():
        r = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"],
                                WaitTimeSeconds=2)
        return r.get("Messages")
    msg = wait_for(record, timeout=60, what="the OnFailure record")[0]
    assert fields(msg["Attributes"]["AWSTraceHeader"])["Root"] == ROOT
    # SNS: a Lambda subscriber continues the publisher's trace.
    sns = with_trace_header(client("sns"), "Publish", header("6666666666666666"))
    topic = sns.create_topic(Name=support.unique("traced"))["TopicArn"]
    subscriber = make_function(lam, code=TRACED)
    lam.add_permission(FunctionName=subscriber, StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com", SourceArn=topic)
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=support.function_arn(subscriber))
    sns.publish(TopicArn=topic, Message="hi")
    seen = wait_for(lambda: traces_in_logs(logs, subscriber), timeout=60,
                    what="the subscriber's trace")
    assert fields(seen[0])["Root"] == ROOT
