"""`aws cloudformation deploy` (aws CLI v1, AWS_ENDPOINT_URL only) of plain templates:
create, no-change redeploy, update in place and by replacement, a failing resource rolled
back leaving nothing behind, an unsupported type named in the failure, delete. cfn-lint
accepts every template used here."""

from __future__ import annotations

import json
import sys

import pytest
from botocore.exceptions import ClientError

from conftest import HERE, aws, invoke, outputs, run, stack_events

TEMPLATES = HERE / "templates"


def deploy(template: str, stack: str, *extra: str):
    return aws("cloudformation", "deploy", "--template-file", str(TEMPLATES / template),
               "--stack-name", stack, *extra)


def test_cfn_lint_accepts_the_templates():
    files = sorted(str(p) for p in TEMPLATES.glob("*.yaml"))
    files.append(str(HERE / "sam_apis" / "template.yaml"))
    res = run(["cfn-lint", *files])
    assert res.rc == 0, res


def test_create_no_change_update_delete(cfn, lam, sqs, s3):
    stack = "basic"
    res = deploy("basic.yaml", stack, "--capabilities", "CAPABILITY_IAM")
    assert res.rc == 0, res
    assert "Successfully created/updated stack - basic" in res.stdout
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["Parameters"] == [{"ParameterKey": "Greeting", "ParameterValue": "hello"}]
    out = outputs(cfn, stack)
    fn = out["FunctionName"]
    assert fn.startswith("basic-Fn-")
    assert invoke(lam, fn) == {"greeting": "hello"}
    attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "40"
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    assert exports["basic-fn"] == fn
    events = stack_events(cfn, stack)
    assert events[0][:2] == ("basic", "REVIEW_IN_PROGRESS")
    assert events[-1][:2] == ("basic", "CREATE_COMPLETE")
    role_events = [e for e in events if e[0] == "Role" and e[1] == "CREATE_COMPLETE"]
    assert "Kindling has no IAM" in role_events[0][2]
    resources = {r["LogicalResourceId"]: r for r in
                 cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    assert set(resources) == {"Queue", "Topic", "Sub", "Role", "Fn"}
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources.values())
    detail = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="Fn")
    assert detail["StackResourceDetail"]["PhysicalResourceId"] == fn
    original = cfn.get_template(StackName=stack)["TemplateBody"]
    assert "ZipFile" in (original if isinstance(original, str) else str(original))

    # The same template again: the change set has no changes; the CLI says so (exit 255
    # unless --no-fail-on-empty-changeset, as against AWS).
    res = deploy("basic.yaml", stack, "--capabilities", "CAPABILITY_IAM")
    assert res.rc == 255, res
    assert "No changes to deploy. Stack basic is up to date" in res.stderr
    res = deploy("basic.yaml", stack, "--capabilities", "CAPABILITY_IAM",
                 "--no-fail-on-empty-changeset")
    assert res.rc == 0, res
    sets = cfn.list_change_sets(StackName=stack)["Summaries"]
    failed = [s for s in sets if s["Status"] == "FAILED"]
    assert failed and failed[0]["StatusReason"].startswith(
        "The submitted information didn't contain changes.")
    assert failed[0]["ExecutionStatus"] == "UNAVAILABLE"

    # Update: the function in place (same name, new code and configuration), the queue in
    # place, the subscription removed, a bucket added.
    queue_url = out["QueueUrl"]
    res = deploy("basic-v2.yaml", stack, "--capabilities", "CAPABILITY_IAM",
                 "--parameter-overrides", "Greeting=bonjour")
    assert res.rc == 0, res
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    out2 = outputs(cfn, stack)
    assert out2["FunctionName"] == fn and out2["QueueUrl"] == queue_url
    assert invoke(lam, fn) == {"greeting": "bonjour, v2", "version": 2}
    assert lam.get_function_configuration(FunctionName=fn)["MemorySize"] == 256
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "60"
    bucket = out2["BucketArn"].split(":::")[1]
    s3.head_bucket(Bucket=bucket)
    resources = {r["LogicalResourceId"] for r in
                 cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    assert resources == {"Queue", "Topic", "Role", "Fn", "Bucket"}
    statuses = [e[1] for e in stack_events(cfn, stack) if e[0] == "basic"]
    assert statuses[-3:] == ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                             "UPDATE_COMPLETE"]
    assert ("Sub", "DELETE_COMPLETE", "") in stack_events(cfn, stack)

    # Delete: everything goes.
    res = aws("cloudformation", "delete-stack", "--stack-name", stack)
    assert res.rc == 0, res
    res = aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", stack)
    assert res.rc == 0, res
    with pytest.raises(ClientError) as e:
        cfn.describe_stacks(StackName=stack)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "does not exist" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=fn)
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=queue_url)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)
    deleted = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == stack]
    assert deleted and deleted[0]["StackStatus"] == "DELETE_COMPLETE"


def test_failing_resource_rolls_back_leaving_nothing(cfn, sns, lam):
    stack = "rollback"
    res = deploy("failing.yaml", stack)
    assert res.rc == 255, res
    assert "Failed to create/update the stack" in res.stderr
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    events = stack_events(cfn, stack)
    failed = [e for e in events if e[1] == "CREATE_FAILED"]
    assert [e[0] for e in failed] == ["BadFunction"]
    assert "S3 Error Code: NoSuchBucket" in failed[0][2]
    rollback = [e for e in events if e[0] == stack and e[1] == "ROLLBACK_IN_PROGRESS"]
    assert rollback[0][2] == ("The following resource(s) failed to create: [BadFunction]. "
                              "Rollback requested by user.")
    assert ("Topic", "DELETE_COMPLETE", "") in events
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert not any(t.endswith(":kindling-rollback-topic") for t in topics)
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="kindling-rollback-function")
    # A stack in ROLLBACK_COMPLETE can only be deleted.
    with pytest.raises(ClientError) as e:
        cfn.update_stack(StackName=stack, UsePreviousTemplate=True)
    assert "ROLLBACK_COMPLETE state and can not be updated" in e.value.response["Error"]["Message"]
    cfn.delete_stack(StackName=stack)
    assert cfn.describe_stacks(StackName=described["StackId"])["Stacks"][0]["StackStatus"] == \
        "DELETE_COMPLETE"


def test_unsupported_type_fails_naming_it(cfn, sqs):
    stack = "unsupported"
    res = deploy("unsupported.yaml", stack)
    assert res.rc == 255, res
    events = stack_events(cfn, stack)
    failed = [e for e in events if e[1] == "CREATE_FAILED"]
    assert len(failed) == 1 and failed[0][0] == "Log"
    assert "AWS::Logs::LogGroup" in failed[0][2]
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    assert sqs.list_queues(QueueNamePrefix="kindling-unsupported").get("QueueUrls", []) == []
    cfn.delete_stack(StackName=stack)


def test_errors_in_cloudformations_format(cfn):
    with pytest.raises(ClientError) as e:
        cfn.describe_stacks(StackName="no-such-stack")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"] == "Stack with id no-such-stack does not exist"
    with pytest.raises(ClientError) as e:
        cfn.validate_template(TemplateBody="Resources: [")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"].startswith("Template format error")
    with pytest.raises(ClientError) as e:
        cfn.describe_change_set(ChangeSetName="nope", StackName="no-such-stack")
    assert e.value.response["Error"]["Code"] == "ChangeSetNotFound"
    body = (TEMPLATES / "basic.yaml").read_text()
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName="needs-iam", TemplateBody=body)
    assert e.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert e.value.response["Error"]["Message"] == "Requires capabilities : [CAPABILITY_IAM]"
    summary = cfn.validate_template(TemplateBody=body)
    assert summary["Parameters"][0]["ParameterKey"] == "Greeting"
    assert summary["Capabilities"] == ["CAPABILITY_IAM"]


def test_create_stack_api_and_update_stack(cfn, sqs):
    body = """
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      DelaySeconds: 1
Outputs:
  Url:
    Value: !Ref Q
"""
    stack_id = cfn.create_stack(StackName="direct", TemplateBody=body)["StackId"]
    cfn.get_waiter("stack_create_complete").wait(StackName="direct",
                                                 WaiterConfig={"Delay": 1})
    url = outputs(cfn, "direct")["Url"]
    with pytest.raises(ClientError) as e:
        cfn.update_stack(StackName="direct", TemplateBody=body)
    assert e.value.response["Error"]["Message"] == "No updates are to be performed."
    cfn.update_stack(StackName="direct", TemplateBody=body.replace("DelaySeconds: 1",
                                                                   "DelaySeconds: 2"))
    cfn.get_waiter("stack_update_complete").wait(StackName="direct",
                                                 WaiterConfig={"Delay": 1})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])
    assert attrs["Attributes"]["DelaySeconds"] == "2"
    processed = cfn.get_template(StackName="direct", TemplateStage="Processed")
    assert "Resources" in str(processed["TemplateBody"])
    cfn.delete_stack(StackName=stack_id)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack_id,
                                                 WaiterConfig={"Delay": 1})


def test_provisioned_concurrency_is_ready_when_the_stack_completes(cfn, lam):
    """ProvisionedConcurrencyConfig on a SAM function's AutoPublishAlias and on an
    AWS::Lambda::Version: the stack completes once each configuration is READY (as
    CloudFormation waits), an update changes or removes them, the deletion takes them."""
    body = (TEMPLATES / "provisioned.yaml").read_text()
    caps = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    waiter = {"Delay": 1, "MaxAttempts": 300}
    stack_id = cfn.create_stack(StackName="provisioned", TemplateBody=body,
                                Capabilities=caps)["StackId"]
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_id, WaiterConfig=waiter)
    out = outputs(cfn, "provisioned")
    on_alias, plain, version = out["OnAlias"], out["Plain"], out["PlainVersion"]
    for name, qualifier in ((on_alias, "live"), (plain, version)):
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert cfg["Status"] == "READY", cfg
        assert cfg["AllocatedProvisionedConcurrentExecutions"] == 1, cfg
        got = json.loads(lam.invoke(FunctionName=name, Qualifier=qualifier)["Payload"].read())
        assert got == {"init": "provisioned-concurrency"}, got

    # Two on the alias, none on the version: READY with 2 when the update completes.
    updated = body.replace("ProvisionedConcurrentExecutions: 1\n      InlineCode",
                           "ProvisionedConcurrentExecutions: 2\n      InlineCode")
    updated = updated.replace(
        "      FunctionName: !Ref Plain\n      ProvisionedConcurrencyConfig:\n"
        "        ProvisionedConcurrentExecutions: 1\n",
        "      FunctionName: !Ref Plain\n")
    assert updated.count("ProvisionedConcurrencyConfig") == 1
    cfn.update_stack(StackName=stack_id, TemplateBody=updated, Capabilities=caps)
    cfn.get_waiter("stack_update_complete").wait(StackName=stack_id, WaiterConfig=waiter)
    cfg = lam.get_provisioned_concurrency_config(FunctionName=on_alias, Qualifier="live")
    assert (cfg["Status"], cfg["AllocatedProvisionedConcurrentExecutions"]) == ("READY", 2), cfg
    listed = lam.list_provisioned_concurrency_configs(FunctionName=plain)
    assert listed["ProvisionedConcurrencyConfigs"] == [], listed

    cfn.delete_stack(StackName=stack_id)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack_id, WaiterConfig=waiter)
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=on_alias)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
