"""The Telemetry API delivers: an external extension from a layer subscribes (as telemetry
extensions do) and forwards every batch it receives to a collector run by the test. Batching
as asked; a slow or dead subscriber never slows the function down."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import support
from obs_support import invoke, wait_for

EXTENSION = r'''#!/usr/bin/python3
import json, os, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
SINK = os.environ["TELEMETRY_SINK"]
DELAY = float(os.environ.get("SUBSCRIBER_DELAY", "0"))
DEST_PORT = os.environ.get("SUBSCRIBER_PORT")

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(DELAY)
        self.send_response(200)
        self.end_headers()
        urllib.request.urlopen(urllib.request.Request(SINK, data=body, method="POST"))

    def log_message(self, *args):
        pass

server = HTTPServer(("0.0.0.0", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = DEST_PORT or server.server_address[1]

req = urllib.request.Request(API + "/2020-01-01/extension/register", method="POST",
    data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "forwarder"})
ext_id = urllib.request.urlopen(req).headers["Lambda-Extension-Identifier"]
sub = {"schemaVersion": "2022-12-13", "types": ["platform", "function"],
       "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
       "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:%s" % port}}
urllib.request.urlopen(urllib.request.Request(API + "/2022-07-01/telemetry", method="PUT",
    data=json.dumps(sub).encode(), headers={"Lambda-Extension-Identifier": ext_id}))
while True:
    ev = json.load(urllib.request.urlopen(urllib.request.Request(
        API + "/2020-01-01/extension/event/next",
        headers={"Lambda-Extension-Identifier": ext_id})))
    if ev["eventType"] == "SHUTDOWN":
        time.sleep(0.2)
        sys.exit(0)
'''

FUNCTION = """
def handler(event, context):
    for i in range(event.get("lines", 1)):
        print(f"fn line {i} {context.aws_request_id}")
    return {"ok": True}
"""


class Collector:
    """The test's end of the forwarder: every batch the extension received."""

    def __init__(self):
        self.batches: list[list[dict]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.batches.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def items(self) -> list[dict]:
        return [i for b in list(self.batches) for i in b]

    def of_type(self, t: str) -> list[dict]:
        return [i for i in self.items() if i["type"] == t]


@pytest.fixture(scope="module")
def layer(lam):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("extensions/forwarder", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        zf.writestr(info, EXTENSION)
    return lam.publish_layer_version(LayerName=support.unique("forwarder"),
                                     Content={"ZipFile": buf.getvalue()})["LayerVersionArn"]


def function_with(lam, layer, env: dict) -> str:
    name = support.unique("telemetry")
    support.create_function(lam, name, zip_bytes=support.make_zip({"lambda_function.py": FUNCTION}),
                            Layers=[layer], Environment={"Variables": env}, Timeout=30)
    return name


def test_subscriber_receives_platform_and_function_events(lam, layer):
    collector = Collector()
    name = function_with(lam, layer, {"TELEMETRY_SINK": collector.url})
    first = invoke(lam, name, {"lines": 3})
    second = invoke(lam, name, {"lines": 1500})
    ids = [first["ResponseMetadata"]["RequestId"], second["ResponseMetadata"]["RequestId"]]
    wait_for(lambda: len(collector.of_type("platform.report")) == 2, timeout=30,
             what="two platform.report events")
    types = [i["type"] for i in collector.items()]
    assert types[0] == "platform.initStart", types[:5]
    for t in ("platform.telemetrySubscription", "platform.initRuntimeDone",
              "platform.initReport", "platform.start", "platform.runtimeDone"):
        assert t in types, t
    subscription = collector.of_type("platform.telemetrySubscription")[0]["record"]
    assert subscription["name"] == "forwarder" and subscription["state"] == "Subscribed"
    assert [s["record"]["requestId"] for s in collector.of_type("platform.start")] == ids
    reports = collector.of_type("platform.report")
    assert [r["record"]["requestId"] for r in reports] == ids
    m0, m1 = reports[0]["record"]["metrics"], reports[1]["record"]["metrics"]
    for m in (m0, m1):
        assert m["durationMs"] > 0 and m["billedDurationMs"] >= 1 and m["memorySizeMB"] == 128
        assert m["maxMemoryUsedMB"] > 0
    assert m0["initDurationMs"] > 0 and "initDurationMs" not in m1
    assert reports[0]["record"]["status"] == "success"
    done = collector.of_type("platform.runtimeDone")
    assert [d["record"]["requestId"] for d in done] == ids
    assert all(d["record"]["status"] == "success" for d in done)
    function_lines = [i["record"] for i in collector.of_type("function")]
    assert f"fn line 2 {ids[0]}" in function_lines
    assert sum(1 for line in function_lines if line.endswith(ids[1])) == 1500
    for i in collector.items():
        assert i["time"].endswith("Z") and len(i["time"]) == 24
    # Batches honour maxItems (1000): 1500 lines needed at least two POSTs.
    assert max(len(b) for b in collector.batches) <= 1000
    assert sum(1 for b in collector.batches
               if any(i["type"] == "function" and i["record"].endswith(ids[1]) for i in b)) >= 2


def test_a_slow_subscriber_does_not_slow_the_function(lam, layer):
    collector = Collector()
    name = function_with(lam, layer, {"TELEMETRY_SINK": collector.url, "SUBSCRIBER_DELAY": "2"})
    invoke(lam, name, {})  # cold start
    started = time.monotonic()
    for _ in range(5):
        t0 = time.monotonic()
        resp = invoke(lam, name, {"lines": 200})
        assert "FunctionError" not in resp
        assert time.monotonic() - t0 < 1.5, "an invocation waited for the subscriber"
    assert time.monotonic() - started < 6
    # Deliveries run late (each POST takes 2 s; an idle environment is frozen, its extension
    # with it): the subscriber gets the reports while the environment works, or is told what
    # was dropped.
    def caught_up():
        invoke(lam, name, {})
        return (len(collector.of_type("platform.report")) >= 6
                or collector.of_type("platform.logsDropped"))
    wait_for(caught_up, timeout=90, interval=0.5, what="the reports, or a logsDropped notice")
    for dropped in collector.of_type("platform.logsDropped"):
        assert dropped["record"]["droppedRecords"] > 0


def test_a_dead_subscriber_does_not_slow_the_function(lam, layer):
    collector = Collector()
    # The extension subscribes to a port nobody listens on.
    name = function_with(lam, layer, {"TELEMETRY_SINK": collector.url, "SUBSCRIBER_PORT": "1"})
    invoke(lam, name, {})
    t0 = time.monotonic()
    for _ in range(5):
        resp = invoke(lam, name, {"lines": 100})
        assert "FunctionError" not in resp
    assert time.monotonic() - t0 < 5
    assert collector.items() == []
