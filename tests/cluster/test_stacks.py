"""CloudFormation on several nodes: a stack deployed through one node (`aws cloudformation
deploy`, AWS_ENDPOINT_URL only) is described, with its events and change sets, by every node
at once; an operation in progress on one node is refused on another as CloudFormation refuses
a busy stack; of concurrent creates of one name exactly one wins; and an operation whose node
dies is adopted by a survivor and rolled back (AWS's outcome for an interrupted update),
never left `*_IN_PROGRESS`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from conftest import DEAD_AFTER, wait_for

TEMPLATES = Path(__file__).resolve().parent / "templates"


def aws(node_url: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The aws CLI (v1) pointed at a node with AWS_ENDPOINT_URL only."""
    env = support.cli_env(Path(os.environ.get("TMPDIR", "/tmp")))
    env["AWS_ENDPOINT_URL"] = node_url
    return subprocess.run([sys.executable, "-m", "awscli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def cfn_of(url: str):
    return boto3.client("cloudformation", endpoint_url=url,
                        config=Config(retries={"max_attempts": 1}, read_timeout=120))


def summary(cfn, stack: str) -> dict:
    s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {"id": s["StackId"], "status": s["StackStatus"],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])},
            "parameters": s.get("Parameters", [])}


def events(cfn, stack: str) -> list[tuple[str, str, str]]:
    return [(e["EventId"], e["LogicalResourceId"], e["ResourceStatus"])
            for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]


def test_a_stack_deployed_through_one_node_is_seen_by_every_node_at_once(nodes):
    a, b, c = (n.url for n in nodes)
    cfns = [cfn_of(u) for u in (a, b, c)]
    stack = support.unique("shared")
    res = aws(a, "cloudformation", "deploy", "--template-file", str(TEMPLATES / "shared.yaml"),
              "--stack-name", stack, "--capabilities", "CAPABILITY_IAM")
    assert res.returncode == 0, res
    # No wait, no retry: B and C describe what A just deployed, with the same events.
    seen = [summary(cfn, stack) for cfn in cfns]
    assert seen[0]["status"] == "CREATE_COMPLETE"
    assert seen[1] == seen[0] and seen[2] == seen[0]
    trail = events(cfns[0], stack)
    assert trail[0][1:] == (stack, "CREATE_COMPLETE")
    assert events(cfns[1], stack) == trail and events(cfns[2], stack) == trail
    sets = cfns[2].list_change_sets(StackName=stack)["Summaries"]
    assert [s["ExecutionStatus"] for s in sets] == ["EXECUTE_COMPLETE"]
    described = cfns[1].describe_change_set(ChangeSetName=sets[0]["ChangeSetId"])
    assert described["StackName"] == stack
    assert "ZipFile" in cfns[2].get_template(StackName=stack)["TemplateBody"]
    assert {s["StackName"] for s in cfns[1].list_stacks()["StackSummaries"]} >= {stack}
    fn = seen[0]["outputs"]["FunctionName"]

    # An update through B (the CLI's change set on B) is what A and C describe next. The CLI
    # names its change set after the current second, and a stack's executed change set keeps
    # its name (CloudFormation's AlreadyExistsException for a second one): on a fast machine
    # the first deploy and the checks above fit in one second.
    named_at = int(sets[0]["ChangeSetName"].rsplit("-", 1)[1])
    wait_for(lambda: int(time.time()) > named_at, timeout=5, what="the next second")
    res = aws(b, "cloudformation", "deploy", "--template-file", str(TEMPLATES / "shared.yaml"),
              "--stack-name", stack, "--capabilities", "CAPABILITY_IAM",
              "--parameter-overrides", "Greeting=bonjour")
    assert res.returncode == 0, res
    for cfn in (cfns[0], cfns[2]):
        now = summary(cfn, stack)
        assert now["status"] == "UPDATE_COMPLETE"
        assert now["parameters"] == [{"ParameterKey": "Greeting", "ParameterValue": "bonjour"}]
        assert now["outputs"]["FunctionName"] == fn
    assert events(cfns[0], stack)[0][1:] == (stack, "UPDATE_COMPLETE")

    # A delete through C: A and B see it deleted (by id), and the name is free everywhere.
    cfns[2].delete_stack(StackName=stack)
    for cfn in cfns[:2]:
        gone = cfn.describe_stacks(StackName=seen[0]["id"])["Stacks"][0]
        assert gone["StackStatus"] == "DELETE_COMPLETE"
        with pytest.raises(ClientError) as e:
            cfn.describe_stacks(StackName=stack)
        assert e.value.response["Error"]["Code"] == "ValidationError"


QUEUE_ONLY = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
"""


def test_concurrent_creates_of_one_name_through_three_nodes_make_one_stack(nodes):
    cfns = [cfn_of(n.url) for n in nodes]
    stack = support.unique("race")
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(cfns))

    def create(cfn):
        barrier.wait()
        try:
            cfn.create_stack(StackName=stack, TemplateBody=QUEUE_ONLY)
            result = "created"
        except ClientError as e:
            result = e.response["Error"]["Code"]
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create, args=(c,)) for c in cfns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["AlreadyExistsException", "AlreadyExistsException", "created"]
    live = [s for s in cfns[0].list_stacks()["StackSummaries"] if s["StackName"] == stack]
    assert len(live) == 1, live
    cfns[1].delete_stack(StackName=stack)


def canary_template(marker: str) -> str:
    """A function whose `live` alias shifts traffic by Linear10PercentEvery1Minute (nine
    "minutes": the nodes' `--traffic-shift-minute` decides how long an update lasts)."""
    return (TEMPLATES / "canary.yaml").read_text().replace("Default: v1", f"Default: {marker}") \
        .replace('return {"marker": os.environ["MARKER"]}',
                 f'return {{"marker": os.environ["MARKER"], "code": "{marker}"}}')


class refused:
    """`with refused("ValidationError", "can not be updated"): ...` (the query protocol: the
    code and message are in the XML body)."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        assert isinstance(err, ClientError), f"expected {self.code}, got {err!r}"
        error = err.response["Error"]
        assert error["Code"] == self.code, error
        assert self.message in error["Message"], error
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return True


def busy(cfn, stack: str) -> bool:
    return summary(cfn, stack)["status"] == "UPDATE_IN_PROGRESS"


def test_an_update_in_progress_on_one_node_is_refused_on_another(start_node):
    a = start_node(extra=["--traffic-shift-minute", "0.5"])
    b = start_node(extra=["--traffic-shift-minute", "0.5"])
    ca, cb = a.client("cloudformation"), b.client("cloudformation")
    stack = support.unique("busy")
    ca.create_stack(StackName=stack, TemplateBody=canary_template("v1"),
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    assert summary(cb, stack)["status"] == "CREATE_COMPLETE"

    # A's update shifts traffic for ~4.5 s; meanwhile B refuses every operation on the stack.
    done: list[object] = []
    t = threading.Thread(target=lambda: done.append(ca.update_stack(
        StackName=stack, TemplateBody=canary_template("v2"),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])))
    t.start()
    wait_for(lambda: busy(cb, stack), timeout=30, interval=0.05, what="B to see the update")
    with refused("ValidationError", "is in UPDATE_IN_PROGRESS state and can not be updated"):
        cb.update_stack(StackName=stack, TemplateBody=canary_template("v3"),
                        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    with refused("ValidationError", "cannot be deleted while in status UPDATE_IN_PROGRESS"):
        cb.delete_stack(StackName=stack)
    with refused("ValidationError", "can not be updated"):
        cb.create_change_set(StackName=stack, ChangeSetName="later",
                             TemplateBody=canary_template("v3"),
                             Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    t.join(timeout=120)
    assert done, "A's update did not answer"
    final = wait_for(lambda: (s := summary(cb, stack))["status"] != "UPDATE_IN_PROGRESS" and s,
                     timeout=60, interval=0.1, what="the update to end")
    assert final["status"] == "UPDATE_COMPLETE"
    # Free again: B updates it now.
    cb.update_stack(StackName=stack, TemplateBody=canary_template("v3"),
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    wait_for(lambda: summary(ca, stack)["status"] == "UPDATE_COMPLETE", timeout=60,
             interval=0.1, what="B's update")


def test_the_update_of_a_node_that_dies_is_rolled_back_by_a_survivor(start_node):
    a = start_node(extra=["--traffic-shift-minute", "2"])
    b = start_node(extra=["--traffic-shift-minute", "2"])
    ca, cb = a.client("cloudformation"), b.client("cloudformation")
    lam = b.client("lambda")
    stack = support.unique("orphan")
    ca.create_stack(StackName=stack, TemplateBody=canary_template("v1"),
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    fn = summary(cb, stack)["outputs"]["FunctionName"]
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "1"

    # A's update is in the middle of its traffic shift (18 s in all) when A is SIGKILLed.
    def update():
        try:
            ca.update_stack(StackName=stack, TemplateBody=canary_template("v2"),
                            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
        except Exception:  # noqa: BLE001 - the node dies under the call
            pass
    t = threading.Thread(target=update, daemon=True)
    t.start()

    def shifting():
        alias = lam.get_alias(FunctionName=fn, Name="live")
        return alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    assert wait_for(shifting, timeout=60, interval=0.05, what="the shift to start") == {"2": 0.1}
    assert summary(cb, stack)["status"] == "UPDATE_IN_PROGRESS"
    a.srv.kill()
    killed = time.monotonic()

    # B declares A dead (3 s), adopts the operation and rolls it back.
    final = wait_for(lambda: (s := summary(cb, stack))["status"].endswith("COMPLETE") and s,
                     timeout=60, interval=0.1, what="the stack to leave UPDATE_IN_PROGRESS")
    took = time.monotonic() - killed
    assert final["status"] == "UPDATE_ROLLBACK_COMPLETE", final
    assert took >= DEAD_AFTER - 0.5, f"adopted {took:.1f} s after the kill, before A was dead"
    alias = lam.get_alias(FunctionName=fn, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    reasons = [e.get("ResourceStatusReason", "") for e in
               cb.describe_stack_events(StackName=stack)["StackEvents"]
               if e["LogicalResourceId"] == stack]
    assert any("node running the operation stopped" in r for r in reasons), reasons
    assert lam.invoke(FunctionName=fn, Qualifier="live")["StatusCode"] == 200
    # The stack is free again: the survivor deletes it.
    cb.delete_stack(StackName=stack)
    wait_for(lambda: summary(cb, final["id"])["status"] == "DELETE_COMPLETE", timeout=60,
             interval=0.1, what="the survivor's delete")
