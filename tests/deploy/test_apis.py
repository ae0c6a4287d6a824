"""API Gateway and EventBridge resources deployed by the real clients, and SAM's
DeploymentPreference:

- the SAM CLI's hello-world (`Events: HelloWorld: Type: Api` on the implicit
  `ServerlessRestApi`, `Prod` stage) plus an `HttpApi` event (`ServerlessHttpApi`, `$default`
  stage) deployed by `sam deploy`, then called at the URLs its Outputs print; a redeploy with
  changed code moves the `live` alias by `Canary10Percent5Minutes` (the session server's
  minute is 0.4 s); `sam delete` removes both APIs;
- plain CloudFormation (`aws cloudformation deploy`): an `AWS::ApiGatewayV2` API with its
  integration, route and auto-deploying stage, a quick-created HTTP API, and an
  `AWS::ApiGateway` REST API with resource, method, deployment and stage; an update changes a
  route in place and replaces the REST resource; deleting the stack deletes the APIs;
- an `EventBridgeRule` event and an `AWS::Events::Rule` with `EventPattern` deliver the events
  `aws events put-events` puts (and only the matching ones) to a function and to a queue.

The Outputs print AWS's host form (`https://<api-id>.execute-api.<region>.amazonaws.com/...`):
Kindling serves it when the request's Host header says so, which is how these tests call it
(`call`); the HTTP APIs' `ApiEndpoint` is Kindling's DNS-free path form."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import (HERE, VENV_BIN, aws, call, changeset_deploy, client, outputs, run,
                      stack_events, wait_for)

TEMPLATES = HERE / "templates"


def sam(*args: str, cwd):
    if args[:1] == ("deploy",):
        return changeset_deploy(lambda: run(["sam", *args], cwd=cwd, timeout=600))
    return run(["sam", *args], cwd=cwd, timeout=600)


SAM_DEPLOY = ["deploy", "--template-file", "template.yaml", "--stack-name", "hello",
              "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
              "--no-progressbar"]


def test_sam_hello_world_apis_canary_and_delete(tmp_path, endpoint, cfn, lam):
    app = tmp_path / "app"
    shutil.copytree(HERE / "sam_apis", app)
    res = sam(*SAM_DEPLOY, cwd=app)
    assert res.rc == 0, res
    out = outputs(cfn, "hello")
    rest_url = out["HelloWorldApi"]
    assert rest_url.startswith("https://") and rest_url.endswith(
        ".execute-api.us-east-1.amazonaws.com/Prod/hello/")
    assert call(endpoint, rest_url) == (200, {"message": "hello world", "name": None})
    http_url = out["HelloHttpApi"]
    assert call(endpoint, f"{http_url}/kindling") == (
        200, {"message": "hello world", "name": "kindling"})
    # The generated resources carry samtranslator's logical ids.
    resources = {r["LogicalResourceId"]: r for r in
                 cfn.list_stack_resources(StackName="hello")["StackResourceSummaries"]}
    assert {"ServerlessRestApi", "ServerlessRestApiProdStage", "ServerlessHttpApi",
            "ServerlessHttpApiApiGatewayDefaultStage", "HelloWorldFunctionAliaslive",
            "ServerlessDeploymentApplication",
            "HelloWorldFunctionDeploymentGroup"} <= set(resources)
    rest_id = resources["ServerlessRestApi"]["PhysicalResourceId"]
    http_id = resources["ServerlessHttpApi"]["PhysicalResourceId"]
    assert rest_url.startswith(f"https://{rest_id}.")
    # The HTTP API answers at its DNS-free path form too.
    assert call(endpoint, f"{endpoint}/execute-api/{http_id}/hi/path")[0] == 200
    fn = out["HelloWorldFunction"].split(":")[6]
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "1"

    # New code: the alias keeps version 1 and sends 10 % to version 2 for "5 minutes"
    # (2 s here), then moves to version 2, while the deploy waits as it does for CodeDeploy.
    source = app / "hello_world" / "app.py"
    source.write_text(source.read_text().replace('"hello world"', '"hello canary"'))
    proc = subprocess.Popen(["sam", *SAM_DEPLOY], cwd=app, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "SAM_CLI_TELEMETRY": "0",
                                 "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    try:
        def canary():
            alias = lam.get_alias(FunctionName=fn, Name="live")
            weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
            return (alias["FunctionVersion"], weights) if weights else None
        assert wait_for(canary, timeout=120, interval=0.05, what="the canary weight") == \
            ("1", {"2": 0.1})
        stdout, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout
    alias = lam.get_alias(FunctionName=fn, Name="live")
    assert alias["FunctionVersion"] == "2"
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    assert call(endpoint, rest_url) == (200, {"message": "hello canary", "name": None})
    notes = [e[2] for e in stack_events(cfn, "hello")
             if e[0] == "HelloWorldFunctionAliaslive" and e[1] == "UPDATE_COMPLETE"]
    assert notes and "Traffic shifted from version 1 to 2 by Kindling (Canary10Percent5Minutes)" \
        in notes[-1]

    res = sam("delete", "--stack-name", "hello", "--no-prompts", cwd=app)
    assert res.rc == 0, res
    with pytest.raises(ClientError) as e:
        client("apigateway").get_rest_api(restApiId=rest_id)
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as e:
        client("apigatewayv2").get_api(ApiId=http_id)
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert call(endpoint, rest_url)[0] in (403, 404)


def delete_stack(cfn, stack: str):
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def deploy(template: str, stack: str, *extra: str):
    return aws("cloudformation", "deploy", "--template-file", str(TEMPLATES / template),
               "--stack-name", stack, "--capabilities", "CAPABILITY_IAM", *extra)


def test_cloudformation_http_and_rest_apis_update_and_delete(endpoint, cfn):
    res = deploy("apis.yaml", "apis")
    assert res.rc == 0, res
    out = outputs(cfn, "apis")
    v2 = client("apigatewayv2")
    v1 = client("apigateway")
    http = out["HttpEndpoint"]
    assert http == f"{endpoint}/execute-api/{out['HttpApiId']}"
    assert call(endpoint, f"{http}/items/7") == (
        200, {"path": "/items/7", "params": {"id": "7"}})
    status, body = call(endpoint, f"{out['QuickEndpoint']}/any/where")
    assert status == 200 and body["path"] == "/any/where"
    assert call(endpoint, out["RestUrl"]) == (200, {"path": "/items", "params": {}})
    routes = v2.get_routes(ApiId=out["HttpApiId"])["Items"]
    assert [(r["RouteId"], r["RouteKey"]) for r in routes] == [(out["RouteId"], "GET /items/{id}")]
    assert v2.get_api(ApiId=out["HttpApiId"])["Name"] == "apis-http"
    tree = v1.get_resources(restApiId=out["RestApiId"])["items"]
    assert {r["path"]: r["id"] for r in tree}["/"] == out["RootResourceId"]
    assert v1.get_stage(restApiId=out["RestApiId"], stageName="prod")["deploymentId"]

    # Update: the route changes in place (same id), the REST resource is replaced and
    # deployed again (the old one goes at cleanup, after the new deployment: as on AWS, that
    # deployment still holds it); the HTTP API's old route is gone at once (auto-deploy).
    res = deploy("apis.yaml", "apis", "--parameter-overrides", "ItemsPath=things")
    assert res.rc == 0, res
    out2 = outputs(cfn, "apis")
    assert out2["RouteId"] == out["RouteId"] and out2["HttpApiId"] == out["HttpApiId"]
    assert call(endpoint, f"{http}/things/8")[1] == {"path": "/things/8", "params": {"id": "8"}}
    assert call(endpoint, f"{http}/items/8")[0] == 404
    assert call(endpoint, out2["RestUrl"]) == (200, {"path": "/things", "params": {}})
    paths = {r["path"] for r in v1.get_resources(restApiId=out["RestApiId"])["items"]}
    assert paths == {"/", "/things"}

    delete_stack(cfn, "apis")
    for api_id in (out["HttpApiId"], out["QuickEndpoint"].rsplit("/", 1)[1]):
        with pytest.raises(ClientError) as e:
            v2.get_api(ApiId=api_id)
        assert e.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as e:
        v1.get_rest_api(restApiId=out["RestApiId"])
    assert e.value.response["Error"]["Code"] == "NotFoundException"


def put_events(*entries: dict) -> dict:
    res = aws("events", "put-events", "--entries", json.dumps(list(entries)))
    assert res.rc == 0, res
    return json.loads(res.stdout)


def test_eventbridge_rules_deliver_matching_put_events(cfn, sqs):
    res = deploy("events.yaml", "events")
    assert res.rc == 0, res
    out = outputs(cfn, "events")
    assert out["RuleArn"].startswith("arn:aws:events:us-east-1:000000000000:rule/events-OnOrderBigOrders")
    order = {"Source": "shop.orders", "DetailType": "Order Placed"}
    answer = put_events(
        {**order, "Detail": json.dumps({"amount": 150, "state": "live"}),
         "Resources": ["arn:aws:shop:order/1"]},
        {**order, "Detail": json.dumps({"amount": 50})},
        {**order, "Source": "bank", "Detail": json.dumps({"amount": 500, "state": "live"})},
        {**order, "Detail": "[not an object]"},
    )
    assert answer["FailedEntryCount"] == 1
    assert [sorted(e) for e in answer["Entries"]] == [["EventId"]] * 3 + [
        ["ErrorCode", "ErrorMessage"]]
    assert answer["Entries"][3]["ErrorCode"] == "MalformedDetail"

    got = []

    def two():
        for m in sqs.receive_message(QueueUrl=out["ResultsUrl"], WaitTimeSeconds=1,
                                     MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(m["Body"])["responsePayload"]["got"])
            sqs.delete_message(QueueUrl=out["ResultsUrl"], ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= 2
    wait_for(two, timeout=60, what="the matching events' invocations")
    envelope = next(g for g in got if isinstance(g, dict))
    assert 150 in got  # the second rule's InputPath: $.detail.amount
    assert envelope["id"] == answer["Entries"][0]["EventId"]
    assert {k: envelope[k] for k in ("version", "detail-type", "source", "account", "region",
                                     "resources", "detail")} == {
        "version": "0", "detail-type": "Order Placed", "source": "shop.orders",
        "account": "000000000000", "region": "us-east-1",
        "resources": ["arn:aws:shop:order/1"], "detail": {"amount": 150, "state": "live"}}
    assert time.strptime(envelope["time"], "%Y-%m-%dT%H:%M:%SZ")
    # The queue target got the one event its rule matched, as it was put.
    raw = wait_for(lambda: sqs.receive_message(QueueUrl=out["RawUrl"], WaitTimeSeconds=1,
                                               MaxNumberOfMessages=10).get("Messages"),
                   timeout=30, what="the queue target's message")
    assert [json.loads(m["Body"]) for m in raw] == [envelope]
    # Nothing else matched.
    assert not sqs.receive_message(QueueUrl=out["ResultsUrl"], WaitTimeSeconds=2).get("Messages")

    # An unknown operation is refused in EventBridge's own error format.
    events = client("events")
    with pytest.raises(ClientError) as e:
        events.list_rules()
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"

    delete_stack(cfn, "events")
    # The rules went with the stack: an event is accepted and matches nothing.
    assert events.put_events(Entries=[{**order, "Detail": json.dumps(
        {"amount": 150, "state": "live"})}])["FailedEntryCount"] == 0
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=out["ResultsUrl"])
