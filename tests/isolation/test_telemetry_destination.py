"""A function's Telemetry/Logs API subscription cannot make Kindling connect for it outside its
sandbox.

Kindling delivers telemetry from its own process. Before destinations were held to the
environment's loopback, a subscription to any `host:port` made Kindling connect there and send
the function's own log lines: under `namespaces-no-network` that reached the host's loopback
(and any address Kindling can reach) from an environment that has no network at all."""

from __future__ import annotations

import time
import uuid

import iso_support as k

SUBSCRIBE = r'''
import json, os, threading, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]

def _call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

SUBSCRIPTIONS = {}

def _subscribe(uris, protocol):
    status, headers, _ = _call("POST", "/2020-01-01/extension/register",
                               json.dumps({"events": []}).encode(),
                               {"Lambda-Extension-Name": "probe-" + protocol})
    ext = headers.get("Lambda-Extension-Identifier")
    SUBSCRIPTIONS["register-" + protocol] = status
    for uri in uris:
        body = {"schemaVersion": "2022-07-01", "types": ["platform", "function"],
                "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
                "destination": {"protocol": protocol, "URI": uri}}
        status, _, text = _call("PUT", "/2022-07-01/telemetry", json.dumps(body).encode(),
                                {"Lambda-Extension-Identifier": ext})
        SUBSCRIPTIONS[protocol + " " + uri] = [status, text.decode(errors="replace")]
    def loop():
        while True:
            _call("GET", "/2020-01-01/extension/event/next", None,
                  {"Lambda-Extension-Identifier": ext})
    threading.Thread(target=loop, daemon=True).start()

_PORT = int(os.environ["PROBE_PORT"])
_subscribe([f"http://127.0.0.1:{_PORT}/t", f"http://sandbox.localdomain:{_PORT}/t"], "HTTP")
_subscribe([f"http://localhost:{_PORT}/t"], "TCP")

def attack(event, context):
    print("telemetry-probe-" + event["token"], flush=True)
    return {"subscriptions": SUBSCRIPTIONS}
'''


def test_no_network_telemetry_never_reaches_the_host(server_factory):
    listener = k.Listener()
    try:
        srv = server_factory.start("tele-nonet", isolation="namespaces-no-network")
        name = k.unique("tele")
        k.deploy(srv, name, k.function_source(SUBSCRIBE),
                 environment={"PROBE_PORT": str(listener.port)})
        token = uuid.uuid4().hex
        out = k.ok(srv, name, {"token": token})
        # Whatever the subscriptions answered, nothing of the function leaves the sandbox:
        # Kindling's process must not connect to the host's loopback on its behalf.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            k.ping(srv, name)
            time.sleep(0.2)
        with listener.lock:
            conns = [dict(c) for c in listener.conns]
        assert not conns, (f"Kindling connected {len(conns)} time(s) to the host's "
                           f"127.0.0.1:{listener.port} for a no-network function "
                           f"(subscriptions: {out['subscriptions']}); first bytes: "
                           f"{conns[0]['data'][:300]!r}")
    finally:
        listener.close()


def test_a_destination_outside_the_sandbox_is_refused(server_factory):
    listener = k.Listener()
    try:
        srv = server_factory.start("tele-host")
        name = k.unique("tele")
        # A destination that is not the environment's loopback: the host's address as seen
        # from elsewhere stands for any host Kindling can reach.
        source = SUBSCRIBE.replace(
            '_subscribe([f"http://127.0.0.1:{_PORT}/t", f"http://sandbox.localdomain:{_PORT}/t"], "HTTP")',
            '_subscribe([f"http://127.0.0.2:{_PORT}/t", f"http://0x7f000001:{_PORT}/t", '
            'f"http://example.invalid:{_PORT}/t", f"http://sandbox.localdomain:{_PORT}/t"], "HTTP")')
        assert source != SUBSCRIBE
        k.deploy(srv, name, k.function_source(source),
                 environment={"PROBE_PORT": str(listener.port)})
        token = uuid.uuid4().hex
        subs = k.ok(srv, name, {"token": token})["subscriptions"]
        for uri in ("127.0.0.2", "0x7f000001", "example.invalid"):
            status, text = subs[f"HTTP http://{uri}:{listener.port}/t"]
            assert status == 400 and "ValidationError" in text, (uri, status, text)
        # The environment's own loopback is still a destination (shared host network here).
        status, _ = subs[f"HTTP http://sandbox.localdomain:{listener.port}/t"]
        assert status == 200, subs
        k.wait_until(lambda: listener.with_data(f"telemetry-probe-{token}".encode()), 10,
                     what="the function's line at its sandbox.localdomain destination")
    finally:
        listener.close()
