"""LoggingConfig honoured: JSON platform records, the runtimes' JSON records with
AWS_LAMBDA_LOG_FORMAT/AWS_LAMBDA_LOG_LEVEL, Lambda's level filtering, Powertools Logger, and a
custom LogGroup that the logs API serves."""

from __future__ import annotations

import io
import json
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

import support
from obs_support import invoke, wait_for

PY_CODE = """
import logging
from aws_lambda_powertools import Logger

log = Logger(service="orders")
root = logging.getLogger()

@log.inject_lambda_context
def handler(event, context):
    root.info("root info %s", event["tag"])
    root.warning("root warning %s", event["tag"])
    log.debug("pt debug")
    log.info("pt info", extra={"tag": event["tag"]})
    log.warning("pt warning", extra={"tag": event["tag"]})
    print("plain print " + event["tag"])
    return {"ok": True}
"""

NODE_CODE = """
exports.handler = async (event) => {
  console.debug('node debug', event.tag);
  console.info('node info', event.tag);
  console.warn('node warn ' + event.tag);
  console.error(new TypeError('bad ' + event.tag));
  console.error('failed:', new RangeError('worse ' + event.tag));
  return { ok: true };
};
"""


def site_packages() -> Path:
    import aws_lambda_powertools
    return Path(aws_lambda_powertools.__file__).parent.parent


def powertools_zip(code: str) -> bytes:
    """The handler with Powertools (and its dependencies) vendored, as `sam build` would."""
    buf = io.BytesIO()
    sp = site_packages()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lambda_function.py", code)
        for pkg in ("aws_lambda_powertools", "jmespath"):
            for f in (sp / pkg).rglob("*.py"):
                zf.write(f, str(f.relative_to(sp)))
        zf.write(sp / "typing_extensions.py", "typing_extensions.py")
    return buf.getvalue()


def events_of(logs, group: str, pattern: str = "") -> list[str]:
    kwargs = {"logGroupName": group}
    if pattern:
        kwargs["filterPattern"] = pattern
    out = []
    while True:
        page = logs.filter_log_events(**kwargs)
        out += [e["message"] for e in page["events"]]
        if "nextToken" not in page:
            return out
        kwargs["nextToken"] = page["nextToken"]


def as_json(messages: list[str]) -> list[dict]:
    out = []
    for m in messages:
        try:
            v = json.loads(m)
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


def test_python_json_logs_with_powertools_and_levels(lam, logs):
    name = support.unique("json-py")
    support.create_function(
        lam, name, zip_bytes=powertools_zip(PY_CODE),
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"},
        Environment={"Variables": {"POWERTOOLS_LOG_LEVEL": "DEBUG"}},
    )
    cfg = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert cfg == {"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO",
                   "LogGroup": f"/aws/lambda/{name}"}
    tag = uuid.uuid4().hex[:8]
    resp = invoke(lam, name, {"tag": tag})
    assert "FunctionError" not in resp, resp["body"]
    group = f"/aws/lambda/{name}"
    messages = wait_for(lambda: [m for m in events_of(logs, group) if "platform.report" in m]
                        and events_of(logs, group), what="the invocation's records")
    records = as_json(messages)
    types = [r.get("type") for r in records if "type" in r]
    assert types[:1] == ["platform.initStart"], types
    assert "platform.start" in types and "platform.report" in types
    assert "platform.runtimeDone" not in types  # DEBUG: below SystemLogLevel INFO
    assert not any(m.startswith(("START RequestId", "END RequestId", "REPORT RequestId"))
                   for m in messages)
    start = next(r for r in records if r.get("type") == "platform.start")
    assert start["record"]["version"] == "$LATEST"
    assert start["time"].endswith("Z")
    report = next(r for r in records if r.get("type") == "platform.report")
    assert report["record"]["requestId"] == start["record"]["requestId"]
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1
    assert metrics["durationMs"] > 0 and metrics["initDurationMs"] > 0
    # Application records: WARN and above only (Lambda's filter and the runtime's level).
    app = [r for r in records if "level" in r]
    levels = {(r.get("logger"), r["level"], r.get("message")) for r in app}
    assert ("root", "WARNING", f"root warning {tag}") in levels
    assert not any(r["level"] in ("INFO", "DEBUG") for r in app), app
    pt = [r for r in app if r.get("service") == "orders"]
    assert [r["message"] for r in pt] == ["pt warning"]
    assert pt[0]["tag"] == tag and pt[0]["function_request_id"] == start["record"]["requestId"]
    root_warning = next(r for r in app if r.get("logger") == "root")
    assert root_warning["requestId"] == start["record"]["requestId"]
    assert root_warning["timestamp"].endswith("Z")
    # print() output is not a record: kept as it is.
    assert f"plain print {tag}" in messages
    # JSON filter patterns over these records.
    warnings = events_of(logs, group, '{ $.level = "WARNING" && $.service = "orders" }')
    assert [json.loads(m)["message"] for m in warnings] == ["pt warning"]
    reports = events_of(logs, group, '{ $.type = "platform.report" }')
    assert len(reports) == 1


def test_system_log_level_warn_drops_platform_records(lam, logs):
    name = support.unique("json-sys")
    support.create_function(lam, name, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"})
    invoke(lam, name, {})
    group = f"/aws/lambda/{name}"
    wait_for(lambda: logs.describe_log_streams(logGroupName=group)["logStreams"],
             what="a stream")
    time_limit_messages = events_of(logs, group)
    assert not any("platform." in m for m in time_limit_messages), time_limit_messages


def test_node_json_logs(lam, logs):
    name = support.unique("json-node")
    support.create_function(
        lam, name, zip_bytes=support.make_zip({"index.js": NODE_CODE}), Runtime="nodejs20.x",
        Handler="index.handler", LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    tag = uuid.uuid4().hex[:8]
    resp = invoke(lam, name, {"tag": tag})
    assert "FunctionError" not in resp, resp["body"]
    group = f"/aws/lambda/{name}"
    def records():
        found = [r for r in as_json(events_of(logs, group)) if "level" in r]
        return found if len(found) >= 4 else None
    found = wait_for(records, what="the node records")
    assert "DEBUG" not in {r["level"] for r in found}
    by_level = {r["level"]: r for r in found if r["level"] != "ERROR"}
    assert by_level["INFO"]["message"] == f"node info {tag}"
    assert by_level["WARN"]["message"] == f"node warn {tag}"
    errors = [r for r in found if r["level"] == "ERROR"]
    # One Error argument: the message is the error as JSON (Lambda's Node.js runtime).
    single = errors[0]["message"]
    assert single["errorType"] == "TypeError" and single["errorMessage"] == f"bad {tag}"
    assert isinstance(single["stackTrace"], list)
    # Several arguments: a formatted message, the error's fields alongside.
    several = errors[1]
    assert several["message"].startswith(f"failed: RangeError: worse {tag}")
    assert several["errorType"] == "RangeError" and several["errorMessage"] == f"worse {tag}"
    for r in found:
        assert r["requestId"] and r["timestamp"].endswith("Z")


def test_text_format_stays_text(lam, logs):
    name = support.unique("text")
    support.create_function(lam, name)
    invoke(lam, name, {})
    group = f"/aws/lambda/{name}"
    messages = wait_for(lambda: [m for m in events_of(logs, group) if m.startswith("REPORT")]
                        and events_of(logs, group), what="REPORT")
    assert any(m.startswith("START RequestId: ") for m in messages)
    assert not any(m.startswith("{") for m in messages)


def test_custom_log_group(lam, logs):
    name = support.unique("custom-group")
    group = f"/kindling/custom/{name}"
    support.create_function(lam, name, LoggingConfig={"LogFormat": "Text", "LogGroup": group})
    resp = lam.invoke(FunctionName=name, Payload=b'{"k": 1}')
    assert resp["StatusCode"] == 200
    groups = [g["logGroupName"] for g in
              logs.describe_log_groups(logGroupNamePrefix="/kindling/custom/")["logGroups"]]
    assert group in groups
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    assert any(e["message"].startswith("REPORT RequestId: ") for e in events)
    # Nothing went to the default group.
    assert not [g for g in logs.describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]]
