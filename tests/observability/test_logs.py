"""CloudWatch Logs over the streams Kindling writes: the aws CLI (v1), boto3 the way aws CLI
v2's `aws logs tail [--follow]` calls it, and the SAM CLI's `sam logs [--tail]`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import support
from obs_support import VENV_BIN, aws, aws_json, invoke, make_function, wait_for

STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


@pytest.fixture(scope="module")
def chatty(lam):
    """A function invoked a few times: markers, a JSON record per call, a failure."""
    name = make_function(lam)
    for i in range(5):
        invoke(lam, name, {"lines": [f"marker-{i} plain text"],
                           "records": [{"level": "error" if i % 2 else "info", "n": i}]})
    invoke(lam, name, {"lines": ["about to fail"], "fail": True})
    return name


def group(name: str) -> str:
    return f"/aws/lambda/{name}"


def test_describe_groups_and_streams_with_the_cli(chatty):
    groups = aws_json("logs", "describe-log-groups", "--log-group-name-prefix", group(chatty))
    assert [g["logGroupName"] for g in groups["logGroups"]] == [group(chatty)]
    g = groups["logGroups"][0]
    assert g["arn"].endswith(f":log-group:{group(chatty)}:*")
    assert g["storedBytes"] > 0
    streams = aws_json("logs", "describe-log-streams", "--log-group-name", group(chatty),
                       "--order-by", "LastEventTime", "--descending")["logStreams"]
    assert streams, "no stream"
    for s in streams:
        assert STREAM_RE.match(s["logStreamName"]), s["logStreamName"]
        assert s["firstEventTimestamp"] <= s["lastEventTimestamp"]
    last = [s["lastEventTimestamp"] for s in streams]
    assert last == sorted(last, reverse=True)


def test_get_log_events_with_the_cli(chatty):
    stream = aws_json("logs", "describe-log-streams", "--log-group-name", group(chatty),
                      "--order-by", "LastEventTime", "--descending",
                      "--max-items", "1")["logStreams"][0]["logStreamName"]
    out = aws_json("logs", "get-log-events", "--log-group-name", group(chatty),
                   "--log-stream-name", stream, "--start-from-head")
    messages = [e["message"] for e in out["events"]]
    assert any(m.startswith("START RequestId: ") and m.endswith("Version: $LATEST")
               for m in messages)
    assert any(m.startswith("REPORT RequestId: ") and "\tBilled Duration: " in m for m in messages)
    assert any("marker-0 plain text" in m for m in messages)
    assert out["nextForwardToken"].startswith("f/")
    assert out["nextBackwardToken"].startswith("b/")
    # At the end of the stream the forward token comes back unchanged.
    again = aws_json("logs", "get-log-events", "--log-group-name", group(chatty),
                     "--log-stream-name", stream, "--next-token", out["nextForwardToken"])
    assert again["events"] == []
    assert again["nextForwardToken"] == out["nextForwardToken"]


def test_filter_log_events_with_the_cli(chatty):
    # The CLI pages on nextToken by itself (--page-size 2): every event arrives once.
    everything = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                          "--page-size", "2")["events"]
    ids = [e["eventId"] for e in everything]
    assert len(ids) == len(set(ids))
    assert [e["timestamp"] for e in everything] == sorted(e["timestamp"] for e in everything)
    markers = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                       "--filter-pattern", '"marker-3 plain"')["events"]
    assert [e["message"] for e in markers] == ["marker-3 plain text"]
    excluded = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                        "--filter-pattern", "plain -marker-1")["events"]
    assert sorted(e["message"] for e in excluded) == [
        f"marker-{i} plain text" for i in (0, 2, 3, 4)]
    errors = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                      "--filter-pattern", '{ $.level = "error" }')["events"]
    assert sorted(e["message"] for e in errors) == [
        '{"level": "error", "n": 1}', '{"level": "error", "n": 3}']
    not_info = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                        "--filter-pattern", '{ $.level != "info" && $.n >= 3 }')["events"]
    assert [e["message"] for e in not_info] == ['{"level": "error", "n": 3}']
    either = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                      "--filter-pattern", "?RuntimeError ?marker-4")["events"]
    assert any("marker-4" in e["message"] for e in either)
    assert any("RuntimeError" in e["message"] for e in either)
    stream = everything[0]["logStreamName"]
    only = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                    "--log-stream-names", stream)["events"]
    assert {e["logStreamName"] for e in only} == {stream}
    window = aws_json("logs", "filter-log-events", "--log-group-name", group(chatty),
                      "--start-time", str(everything[2]["timestamp"]),
                      "--end-time", str(everything[2]["timestamp"]))["events"]
    assert window and all(e["timestamp"] == everything[2]["timestamp"] for e in window)


def test_errors_are_cloudwatch_errors(logs, logs_raw, chatty):
    proc = aws("logs", "get-log-events", "--log-group-name", "/aws/lambda/no-such-fn",
               "--log-stream-name", "x", check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr
    assert "The specified log group does not exist." in proc.stderr
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group(chatty), logStreamName="2020/01/01/[$LATEST]none")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group(chatty), filterPattern="{ $.level = ")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group(chatty), orderBy="LastEventTime",
                                  logStreamNamePrefix="20")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs_raw.filter_log_events(logGroupName=group(chatty), nextToken="not-a-token")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs_raw.put_retention_policy(logGroupName=group(chatty), retentionInDays=2)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=group(chatty))
    assert e.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"


def tail_like_aws_cli_v2(logs, group_name: str, start_ms: int, seen_ids: set[str]):
    """One round of aws CLI v2's `aws logs tail --follow` (awscli/customizations/logs/tail.py):
    FilterLogEvents with `interleaved`, following `nextToken`; events deduplicated by eventId.
    Returns the new events and the next startTime."""
    new = []
    kwargs = {"logGroupName": group_name, "interleaved": True, "startTime": start_ms}
    while True:
        resp = logs.filter_log_events(**kwargs)
        for e in resp["events"]:
            if e["eventId"] not in seen_ids:
                seen_ids.add(e["eventId"])
                new.append(e)
        if "nextToken" not in resp:
            break
        kwargs["nextToken"] = resp["nextToken"]
    if new:
        start_ms = max(e["timestamp"] for e in new)
    return new, start_ms


def test_follow_the_way_aws_logs_tail_does(logs, lam):
    name = make_function(lam)
    start = int(time.time() * 1000) - 1000
    invoke(lam, name, {"lines": ["first"]})
    seen: set[str] = set()
    new, start = tail_like_aws_cli_v2(logs, group(name), start, seen)
    assert any(e["message"] == "first" for e in new)
    # Nothing new: the same startTime finds only events already seen.
    again, start = tail_like_aws_cli_v2(logs, group(name), start, seen)
    assert again == []
    invoke(lam, name, {"lines": ["second"]})
    later = wait_for(lambda: tail_like_aws_cli_v2(logs, group(name), start, seen)[0],
                     what="the second invocation's lines")
    assert "second" in [e["message"] for e in later]
    assert all(e["message"] != "first" for e in later)


def test_sam_logs_and_tail(lam, endpoint):
    sam = VENV_BIN / "sam"
    if not sam.exists():
        pytest.fail("the SAM CLI is not installed in the test venv (tests/observability/requirements.txt)")
    name = make_function(lam)
    marker = f"sam-{uuid.uuid4().hex[:8]}"
    invoke(lam, name, {"lines": [marker]})
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    out = subprocess.run([str(sam), "logs", "--cw-log-group", group(name), "--start-time",
                          "5min ago"], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    assert marker in out.stdout
    # --tail polls FilterLogEvents: a line logged after it started shows up.
    proc = subprocess.Popen([str(sam), "logs", "--cw-log-group", group(name), "--tail"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        time.sleep(3)
        later = f"tail-{uuid.uuid4().hex[:8]}"
        invoke(lam, name, {"lines": [later]})
        wait_for(lambda: any(later in line for line in seen) or proc.poll() is not None,
                 timeout=90, what="sam logs --tail to print the new line")
        assert any(later in line for line in seen), "".join(seen)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_searches_within_a_small_budget_page_through_partial_answers(server_factory, tmp_path):
    # A server whose FilterLogEvents reads about 300 bytes per request: every search pauses
    # many times (empty pages with a nextToken), and the aws CLI, the way aws CLI v2 tails and
    # sam logs still get every event once, in order.
    import conftest
    srv = server_factory(extra=["--logs-search-budget", "300"])
    try:
        logs = conftest.client("logs", endpoint_url=srv.url)
        g = f"/kindling/budget/{uuid.uuid4().hex[:8]}"
        logs.create_log_group(logGroupName=g)
        now = int(time.time() * 1000) - 60_000
        want = []
        for s in range(3):
            stream = f"app/{s}"
            logs.create_log_stream(logGroupName=g, logStreamName=stream)
            batch = [{"timestamp": now + i * 3 + s, "message": f"line {s}-{i:03d} " + "x" * 40}
                     for i in range(40)]
            logs.put_log_events(logGroupName=g, logStreamName=stream, logEvents=batch)
            want += [(e["timestamp"], e["message"]) for e in batch]
        want.sort()
        first = logs.filter_log_events(logGroupName=g)
        assert first["events"] == [] and "nextToken" in first
        env = dict(os.environ, AWS_ENDPOINT_URL=srv.url)
        out = subprocess.run([str(VENV_BIN / "aws"), "logs", "filter-log-events",
                              "--log-group-name", g, "--output", "json"],
                             capture_output=True, text=True, timeout=180, env=env)
        assert out.returncode == 0, out.stderr
        got = [(e["timestamp"], e["message"]) for e in json.loads(out.stdout)["events"]]
        assert got == want
        seen: set[str] = set()
        tailed, _ = tail_like_aws_cli_v2(logs, g, now - 1000, seen)
        assert [(e["timestamp"], e["message"]) for e in tailed] == want
        sam = VENV_BIN / "sam"
        if not sam.exists():
            pytest.fail("the SAM CLI is not installed in the test venv")
        out = subprocess.run([str(sam), "logs", "--cw-log-group", g, "--start-time", "10min ago"],
                             capture_output=True, text=True, timeout=180,
                             env=dict(env, SAM_CLI_TELEMETRY="0"))
        assert out.returncode == 0, out.stderr
        printed = [m for _, m in want if m in out.stdout]
        assert len(printed) == len(want)
    finally:
        support.stop_cleanly(srv)


def test_retention_policy_deletes_old_streams(logs, lam, server):
    name = make_function(lam)
    invoke(lam, name, {"lines": ["old news"]})
    streams = logs.describe_log_streams(logGroupName=group(name))["logStreams"]
    old_files = list((server.data_dir / "logs" / name).rglob("*.log"))
    assert streams and old_files
    # A stream still written is never deleted: a configuration change makes the next
    # invocation retire the old environment (and closes its stream).
    lam.update_function_configuration(FunctionName=name, Description="bump")
    wait_for(lambda: lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"]
             == "Successful", what="the update")
    invoke(lam, name, {"lines": ["new environment"]})
    logs.put_retention_policy(logGroupName=group(name), retentionInDays=1)
    described = logs.describe_log_groups(logGroupNamePrefix=group(name))["logGroups"]
    assert described[0]["retentionInDays"] == 1
    three_days_ago = time.time() - 3 * 86400

    def gone():
        # Make the old stream three days old (again, should the retiring environment have
        # written to it meanwhile); the server's sweeps (every second here) apply the policy.
        for f in old_files:
            try:
                os.utime(f, (three_days_ago, three_days_ago))
            except FileNotFoundError:
                pass
        return not any(f.exists() for f in old_files)
    wait_for(gone, timeout=60, interval=0.5, what="the old stream to be deleted")
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group(name), logStreamName=streams[0]["logStreamName"])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Newer data is kept.
    fresh = logs.filter_log_events(logGroupName=group(name), filterPattern='"new environment"')
    assert [e["message"] for e in fresh["events"]] == ["new environment"]
    logs.delete_retention_policy(logGroupName=group(name))
    assert "retentionInDays" not in logs.describe_log_groups(
        logGroupNamePrefix=group(name))["logGroups"][0]


def test_groups_and_streams_written_through_the_api(logs):
    g = f"/kindling/test/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="app/one")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=g, logStreamName="app/one",
                        logEvents=[{"timestamp": now, "message": "hello"},
                                   {"timestamp": now + 1, "message": "world"}])
    got = logs.get_log_events(logGroupName=g, logStreamName="app/one", startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["hello", "world"]
    assert [s["logStreamName"] for s in
            logs.describe_log_streams(logGroupName=g)["logStreams"]] == ["app/one"]
    logs.delete_log_group(logGroupName=g)
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=g)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


ROTATING_CODE = """
import time
def handler(event, context):
    for i in range(event["first"], event["end"]):
        print(f"rot-{i:06d} " + "x" * 1000, flush=True)
        if event.get("pause"):
            time.sleep(event["pause"])
    return {}
"""


def test_tokens_and_live_tail_follow_a_stream_across_its_rotation(server_factory):
    # `--log-max-size 16MiB`: an environment's stream sets its file aside as `-earlier` at
    # 1 MiB (~1 000 of these lines) and starts a new one. A GetLogEvents token taken before
    # the rotation and a live tail running through it read every line once, in order; the
    # Logs API shows the two files as the one stream.
    import conftest
    from botocore.config import Config
    srv = server_factory(extra=["--log-max-size", "16MiB"])
    resp = None
    try:
        lam = conftest.client("lambda", endpoint_url=srv.url)
        logs = conftest.client("logs", endpoint_url=srv.url)
        name = make_function(lam, code=ROTATING_CODE, Timeout=60)
        invoke(lam, name, {"first": 0, "end": 600})
        stream = logs.describe_log_streams(logGroupName=group(name))["logStreams"][0]["logStreamName"]

        def rot_lines(events):
            return [e["message"].split(" ")[0] for e in events if e["message"].startswith("rot-")]

        # Up to the end of the stream: the token waits for its next lines.
        token, seen = None, []
        while True:
            kwargs = {"nextToken": token} if token else {"startFromHead": True}
            page = logs.get_log_events(logGroupName=group(name), logStreamName=stream, **kwargs)
            seen += rot_lines(page["events"])
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        assert seen == [f"rot-{i:06d}" for i in range(600)]

        tail = boto3_tail(srv.url, Config)
        resp = tail.start_live_tail(logGroupIdentifiers=[f"arn:aws:logs:{support.REGION}:"
                                                         f"{support.ACCOUNT}:log-group:{group(name)}"],
                                    logEventFilterPattern="rot")
        events: list = []
        done = threading.Event()

        def follow():
            try:
                for e in resp["responseStream"]:
                    if "sessionUpdate" in e:
                        assert not e["sessionUpdate"]["sessionMetadata"]["sampled"]
                        events.extend(e["sessionUpdate"]["sessionResults"])
                        if any(r["message"].startswith("rot-001799") for r in events):
                            break
            except Exception as e:  # noqa: BLE001 - reported below
                events.append({"message": f"error {e!r}"})
            done.set()

        threading.Thread(target=follow, daemon=True).start()
        time.sleep(0.6)  # the session's first poll has taken its offsets
        # ~1.2 MiB more, slowly enough for live tail's updates (500 events each at most).
        invoke(lam, name, {"first": 600, "end": 1800, "pause": 0.002})
        files = sorted(p.name for p in (srv.data_dir / "logs" / name).rglob("*.log"))
        assert any(f.endswith("-earlier.log") for f in files), f"no rotation: {files}"
        want = [f"rot-{i:06d}" for i in range(600, 1800)]

        # The token taken before the rotation goes on in the file now called -earlier, then
        # in the new one.
        seen = []
        while True:
            page = logs.get_log_events(logGroupName=group(name), logStreamName=stream,
                                       nextToken=token)
            seen += rot_lines(page["events"])
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        assert seen == want

        assert done.wait(30), f"live tail saw {len(events)} events"
        assert rot_lines(events) == want
        assert {e["logStreamName"] for e in events} == {stream}

        # Still one stream: the set-aside file's lines, then the new file's, under its name,
        # each once with an id of its own (the aws CLI pages FilterLogEvents by itself).
        streams = logs.describe_log_streams(logGroupName=group(name))["logStreams"]
        assert [s["logStreamName"] for s in streams] == [stream]
        found = json.loads(aws("--endpoint-url", srv.url, "logs", "filter-log-events",
                               "--log-group-name", group(name), "--filter-pattern", "rot",
                               "--page-size", "400").stdout)["events"]
        assert rot_lines(found) == [f"rot-{i:06d}" for i in range(1800)]
        assert {e["logStreamName"] for e in found} == {stream}
        assert len({e["eventId"] for e in found}) == 1800
        with pytest.raises(ClientError) as err:
            logs.get_log_events(logGroupName=group(name), logStreamName=f"{stream}-earlier")
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as err:
            logs.get_log_events(logGroupName=group(name), logStreamName=stream,
                                nextToken="f/" + "0" * 56)
        assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    finally:
        if resp is not None:
            resp["responseStream"].close()  # a session left open holds up the server's stop
        support.stop_cleanly(srv)


def boto3_tail(url, config_cls):
    import boto3
    return boto3.client("logs", endpoint_url=url,
                        config=config_cls(inject_host_prefix=False, read_timeout=30,
                                          retries={"total_max_attempts": 1}))
