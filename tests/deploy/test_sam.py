"""The real SAM CLI against Kindling (AWS_ENDPOINT_URL only): `sam build`, `sam deploy
--resolve-s3` of a seed-shaped application (Powertools function behind an AutoPublishAlias, a
layer, an SNS topic fanning out to an SQS queue and to a function whose on-success destination
is another queue), driven over Lambda, SNS and SQS; a no-change redeploy; a redeploy with a
changed handler and a removed resource updates in place; `sam delete` removes everything."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import HERE, call, changeset_deploy, outputs, run, wait_for

STACK = "orders"


def sam(*args: str, cwd, timeout: float = 600):
    return run(["sam", *args], cwd=cwd, timeout=timeout)


def build(app):
    res = sam("build", "--build-dir", str(app / ".aws-sam" / "build"), cwd=app)
    assert res.rc == 0, res
    return app / ".aws-sam" / "build" / "template.yaml"


def deploy(app, template, *extra: str):
    return changeset_deploy(lambda: sam(
        "deploy", "--template-file", str(template), "--stack-name", STACK, "--resolve-s3",
        "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset", "--no-progressbar", *extra,
        cwd=app))


def receive(sqs, url: str, timeout: float = 60) -> list[str]:
    def got():
        return sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages")
    return [m["Body"] for m in wait_for(got, timeout=timeout, what=f"a message on {url}")]


@pytest.fixture
def app(tmp_path):
    dst = tmp_path / "app"
    shutil.copytree(HERE / "sam_app", dst)
    return dst


def test_sam_build_deploy_drive_update_delete(app, endpoint, cfn, lam, sns, sqs, s3):
    template = build(app)
    res = deploy(app, template)
    assert res.rc == 0, res
    assert "Successfully created/updated stack - orders" in res.stdout
    # Each resource event streamed as it happened, then the outputs.
    assert re.search(r"CREATE_COMPLETE\s+AWS::Lambda::Alias", res.stdout), res.stdout
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = outputs(cfn, STACK)
    alias_arn = out["OrdersFunctionAlias"]
    assert alias_arn.endswith(":live")
    orders_fn = alias_arn.split(":")[6]

    # The Powertools function behind its alias, importing the layer's module.
    r = lam.invoke(FunctionName=alias_arn, Payload=json.dumps({"id": "42"}).encode())
    assert "FunctionError" not in r
    assert json.loads(r["Payload"].read()) == {"message": "order 42 accepted", "version": "1"}
    config = lam.get_function_configuration(FunctionName=orders_fn)
    assert config["Runtime"] == "python3.11" and config["MemorySize"] == 256
    assert len(config["Layers"]) == 1
    assert config["Environment"]["Variables"]["STAGE"] == "dev"

    # The topic fans out to the audit queue (raw delivery) and to the notify function, whose
    # on-success destination is the results queue.
    sns.publish(TopicArn=out["EventsTopicArn"], Message=json.dumps({"id": "7"}))
    assert receive(sqs, out["AuditQueueUrl"]) == ['{"id": "7"}']
    record = json.loads(receive(sqs, out["ResultsQueueUrl"])[0])
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == {"notified": ["order 7 accepted"]}

    # The function URL (on the live alias) answers over HTTP.
    with urllib.request.urlopen(f"{out['OrdersUrl']}?id=9", timeout=30) as r:
        assert json.loads(r.read()) == {"message": "order 9 accepted", "version": "1"}
    # So do the REST API's route (Prod stage) and the HTTP API's, both to the live alias.
    for api in ("OrdersRestApi", "OrdersHttpApi"):
        status, body = call(endpoint, f"{out[api]}?id=5")
        assert (status, body) == (200, {"message": "order 5 accepted", "version": "1"}), api

    # The topic also feeds the orders queue, consumed by a function through an event source
    # mapping with partial batch responses: the good order is deleted, the failing one goes
    # to the dead-letter queue after its one receive.
    sns.publish(TopicArn=out["EventsTopicArn"], Message=json.dumps({"id": "bad", "fail": True}))
    assert json.loads(receive(sqs, out["DeadLettersUrl"])[0]) == {"id": "bad", "fail": True}

    def drained():
        attrs = sqs.get_queue_attributes(QueueUrl=out["OrdersQueueUrl"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(v == "0" for v in attrs.values())
    wait_for(drained, timeout=60, what="the orders queue to drain")

    # The managed bucket holds the artifacts and the template.
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    managed = [b for b in buckets if b.startswith("aws-sam-cli-managed-default-")]
    assert len(managed) == 1
    assert s3.list_objects_v2(Bucket=managed[0])["KeyCount"] >= 3

    # No change: the SAM CLI reports it from the change set's status reason.
    res = deploy(app, template)
    assert res.rc != 0 and "No changes to deploy. Stack orders is up to date" in \
        res.stdout + res.stderr, res
    res = deploy(app, template, "--no-fail-on-empty-changeset")
    assert res.rc == 0, res

    # A changed handler and a removed resource (the audit queue and its subscription).
    handler = app / "src" / "orders" / "app.py"
    source = handler.read_text()
    assert "describe_order(order_id)" in source
    handler.write_text(source.replace("describe_order(order_id)", "describe_order(order_id) + \" (v2)\""))
    text = (app / "template.yaml").read_text()
    text = re.sub(r"\n  AuditQueue:\n.*?\n\n", "\n", text, flags=re.S)
    text = re.sub(r"\n  AuditSubscription:\n.*?\n\n", "\n", text, flags=re.S)
    text = re.sub(r"\n  AuditQueueUrl:\n    Value: !Ref AuditQueue\n", "\n", text)
    assert "AuditQueue" not in text
    (app / "template.yaml").write_text(text)
    template = build(app)
    res = deploy(app, template)
    assert res.rc == 0, res
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    out2 = outputs(cfn, STACK)
    assert out2["OrdersFunctionAlias"] == alias_arn  # same function, same alias
    assert "AuditQueueUrl" not in out2
    r = lam.invoke(FunctionName=alias_arn, Payload=json.dumps({"id": "43"}).encode())
    assert json.loads(r["Payload"].read()) == {"message": "order 43 accepted (v2)",
                                               "version": "2"}
    alias = lam.get_alias(FunctionName=orders_fn, Name="live")
    assert alias["FunctionVersion"] == "2"
    status, body = call(endpoint, f"{out2['OrdersRestApi']}?id=6")
    assert (status, body) == (200, {"message": "order 6 accepted (v2)", "version": "2"})
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=out["AuditQueueUrl"])
    resources = {r["LogicalResourceId"] for r in
                 cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    assert "AuditQueue" not in resources and "AuditSubscription" not in resources

    # sam delete: the stack, its functions, topic and queues, and the uploaded artifacts.
    res = sam("delete", "--stack-name", STACK, "--no-prompts", cwd=app)
    assert res.rc == 0, res
    assert "Deleted successfully" in res.stdout
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName=STACK)
    assert all(call(endpoint, f"{out[api]}?id=1")[0] != 200
               for api in ("OrdersRestApi", "OrdersHttpApi"))
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=orders_fn)
    with pytest.raises(ClientError):
        sns.get_topic_attributes(TopicArn=out["EventsTopicArn"])
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=out["ResultsQueueUrl"])
