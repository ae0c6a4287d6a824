"""Scheduled rules and schedules deployed by CloudFormation run on time: a SAM function with a
Schedule (EventBridge rule) and a ScheduleV2 (Scheduler) event deploys; a one-time Scheduler
schedule invokes its function at its time (seen through the function's on-success destination
queue); a tick missed while Kindling was stopped is delivered when it starts again."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import boto3

import support
from conftest import REGION, aws, outputs, wait_for
from harness import kindling_binary

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  At:
    Type: String
Resources:
  Results:
    Type: AWS::SQS::Queue
  Tick:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      InlineCode: |
        def handler(event, context):
            return {"got": event}
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnSuccess:
            Type: SQS
            Destination: !GetAtt Results.Arn
      Events:
        EveryDay:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
        Once:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: !Sub "at(${At})"
            Input: '{"once": true}'
Outputs:
  ResultsUrl:
    Value: !Ref Results
  RuleArn:
    Value: !GetAtt TickEveryDay.Arn
"""


def at(seconds: float) -> tuple[str, float]:
    """An `at()` time `seconds` from now, and that instant as epoch seconds."""
    t = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S"), t.timestamp()


def deploy(tmp_path, stack: str, when: str, env=None):
    path = tmp_path / f"{stack}.yaml"
    path.write_text(TEMPLATE)
    return aws("cloudformation", "deploy", "--template-file", str(path), "--stack-name", stack,
               "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", f"At={when}", env=env)


def receive(sqs, url: str, timeout: float = 60) -> dict:
    def got():
        return sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages")
    return json.loads(wait_for(got, timeout=timeout, what="the scheduled invocation")[0]["Body"])


def test_schedules_deploy_and_fire_on_time(tmp_path, cfn, sqs):
    when, epoch = at(25)
    res = deploy(tmp_path, "ticks", when)
    assert res.rc == 0, res
    assert time.time() < epoch, "the deploy took longer than the schedule's margin"
    out = outputs(cfn, "ticks")
    assert out["RuleArn"].startswith("arn:aws:events:us-east-1:000000000000:rule/ticks-TickEveryDay")
    types = {r["ResourceType"] for r in
             cfn.list_stack_resources(StackName="ticks")["StackResourceSummaries"]}
    assert {"AWS::Events::Rule", "AWS::Scheduler::Schedule"} <= types
    record = receive(sqs, out["ResultsUrl"], timeout=90)
    assert record["responsePayload"] == {"got": {"once": True}}
    assert time.time() >= epoch
    cfn.delete_stack(StackName="ticks")


def test_a_tick_missed_while_stopped_is_delivered_at_start(tmp_path, tmp_path_factory):
    srv = support.KindlingServer(kindling_binary(), tmp_path / "data", tmp_path / "kindling.log")
    srv.start()
    env = {"AWS_ENDPOINT_URL": srv.url}
    try:
        when, epoch = at(25)
        res = deploy(tmp_path, "missed", when, env=env)
        assert res.rc == 0, res
        cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=srv.url)
        url = outputs(cfn, "missed")["ResultsUrl"]
        support.stop_cleanly(srv)
        assert time.time() < epoch, "the deploy took longer than the schedule's margin"
        time.sleep(epoch - time.time() + 2)  # the tick passes while Kindling is down
        srv.proc = None
        srv.start()
        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=srv.url)
        url = f"{srv.url}/{url.split('/', 3)[3]}"  # the port changed
        record = receive(sqs, url)
        assert record["responsePayload"] == {"got": {"once": True}}
    finally:
        if srv.running:
            support.stop_cleanly(srv)
