"""`kindling deploy` and `kindling delete-stack` against the suite's server: packaging of local
code folders, streamed events, outputs, no-change redeploys, the failing resource's reason with
a non-zero exit, and deletion."""

from __future__ import annotations

import json
import shutil

import pytest
from botocore.exceptions import ClientError

from conftest import HERE, invoke, outputs, run
from harness import kindling_binary

APP = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hi
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.handler
      Runtime: python3.11
      AutoPublishAlias: live
      Environment:
        Variables:
          GREETING: !Ref Greeting
  Inbox:
    Type: AWS::SQS::Queue
Outputs:
  HelloAlias:
    Value: !Ref HelloAliaslive
  InboxUrl:
    Value: !Ref Inbox
"""


def kindling(*args: str, cwd):
    return run([str(kindling_binary()), *args], cwd=cwd)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "app.py").write_text(
        "import os\n\ndef handler(event, context):\n"
        "    return {'greeting': os.environ['GREETING'], 'version': context.function_version}\n")
    (tmp_path / "template.yaml").write_text(APP)
    return tmp_path


def test_deploy_redeploy_fail_delete(project, endpoint, cfn, lam, sqs):
    env_args = ["--endpoint", endpoint]
    res = kindling("deploy", "-t", "template.yaml", "--stack-name", "kd", *env_args, cwd=project)
    assert res.rc == 0, res
    assert "Uploaded hello" in res.stdout
    lines = res.stdout.splitlines()
    assert any("CREATE_COMPLETE" in line and "AWS::Lambda::Alias" in line for line in lines)
    assert "Outputs" in res.stdout and "Stack kd: CREATE_COMPLETE" in res.stdout
    out = outputs(cfn, "kd")
    assert out["HelloAlias"] in res.stdout
    assert invoke(lam, out["HelloAlias"]) == {"greeting": "hi", "version": "1"}

    res = kindling("deploy", "-t", "template.yaml", "--stack-name", "kd", *env_args, cwd=project)
    assert res.rc == 0, res
    assert "No changes to deploy: stack kd is up to date" in res.stdout

    (project / "hello" / "app.py").write_text(
        (project / "hello" / "app.py").read_text().replace("'greeting'", "'hello'"))
    res = kindling("deploy", "-t", "template.yaml", "--stack-name", "kd",
                   "--parameter-overrides", "Greeting=salut", *env_args, cwd=project)
    assert res.rc == 0, res
    assert "Stack kd: UPDATE_COMPLETE" in res.stdout
    assert invoke(lam, out["HelloAlias"]) == {"hello": "salut", "version": "2"}

    # A failing resource: the deploy exits non-zero naming it and its reason; the stack is
    # rolled back to what it was.
    broken = APP.replace("  Inbox:\n    Type: AWS::SQS::Queue\n",
                         "  Inbox:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                         "      RedrivePolicy:\n        deadLetterTargetArn: "
                         "arn:aws:sqs:us-east-1:000000000000:missing\n        maxReceiveCount: 3\n")
    (project / "broken.yaml").write_text(broken)
    res = kindling("deploy", "-t", "broken.yaml", "--stack-name", "kd", *env_args, cwd=project)
    assert res.rc != 0, res
    assert "Inbox (AWS::SQS::Queue)" in res.stderr, res
    assert "Dead letter target does not exist" in res.stderr, res
    assert "UPDATE_ROLLBACK_COMPLETE" in res.stdout
    assert cfn.describe_stacks(StackName="kd")["Stacks"][0]["StackStatus"] == \
        "UPDATE_ROLLBACK_COMPLETE"
    assert invoke(lam, out["HelloAlias"]) == {"hello": "salut", "version": "2"}
    sqs.get_queue_attributes(QueueUrl=out["InboxUrl"])

    res = kindling("delete-stack", "--stack-name", "kd", *env_args, cwd=project)
    assert res.rc == 0, res
    assert "DELETE_COMPLETE" in res.stdout and "Stack kd deleted" in res.stdout
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName="kd")
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=out["HelloAlias"])
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=out["InboxUrl"])


def test_deploy_reports_template_errors(project, endpoint):
    (project / "bad.yaml").write_text("Resources:\n  X:\n    Type: AWS::Nope::Thing\n")
    res = kindling("deploy", "-t", "bad.yaml", "--stack-name", "bad", "--endpoint", endpoint,
                   cwd=project)
    assert res.rc != 0
    assert "Unrecognized resource types: [AWS::Nope::Thing]" in res.stderr, res
