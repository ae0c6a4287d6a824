"""A function's Telemetry/Logs API subscription cannot make Kindling connect for it outside its
sandbox, and reaches the subscriber inside it.

Kindling delivers telemetry from its own process. Before destinations were held to the
environment's loopback, a subscription to any `host:port` made Kindling connect there and send
the function's own log lines: under `namespaces-no-network` that reached the host's loopback
(and any address Kindling can reach) from an environment that has no network at all. Now
such an environment's destinations are reached inside its own network namespace."""

from __future__ import annotations

import time
import uuid

import boto3
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


# A subscriber inside the environment, on the same port number as the host's listener: it
# keeps every byte it is sent (HTTP requests get a 200 each; TCP gets JSON lines).
RECEIVER = r'''
import socket, threading

RECEIVED = {"HTTP": [], "TCP": []}

def _serve(conn):
    first = conn.recv(65536)
    kind = "HTTP" if first.startswith(b"POST") else "TCP"
    buf, data = b"", first
    while data:
        RECEIVED[kind].append(data)
        buf += data
        while kind == "HTTP":
            head, sep, rest = buf.partition(b"\r\n\r\n")
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length:")]
            if not sep or not length or len(rest) < length[0]:
                break
            buf = rest[length[0]:]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        data = conn.recv(65536)

def _accept(server):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()

_server = socket.socket()
_server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
_server.bind(("127.0.0.1", int(__import__("os").environ["PROBE_PORT"])))
_server.listen(16)
threading.Thread(target=_accept, args=(_server,), daemon=True).start()
'''

SEEN = r'''

def _seen(token):
    mark = ("telemetry-probe-" + token).encode()
    return {kind: mark in b"".join(chunks) for kind, chunks in RECEIVED.items()}
'''


def test_no_network_telemetry_reaches_the_environment_not_the_host(server_factory):
    """Under `namespaces-no-network` the destination is the environment's own loopback:
    Kindling connects inside the environment's network namespace, where the function's
    subscriber receives its lines, and never to the host's loopback on the same port."""
    listener = k.Listener()
    try:
        srv = server_factory.start("tele-nonet", isolation="namespaces-no-network")
        name = k.unique("tele")
        source = RECEIVER + SUBSCRIBE.replace(
            "def attack(event, context):",
            SEEN + "\ndef attack(event, context):\n"
            "    if event.get(\"op\") == \"seen\":\n"
            "        return _seen(event[\"token\"])")
        k.deploy(srv, name, k.function_source(source),
                 environment={"PROBE_PORT": str(listener.port)})
        token = uuid.uuid4().hex
        subs = k.ok(srv, name, {"token": token})["subscriptions"]
        for key, answer in subs.items():
            if not key.startswith("register"):
                assert answer[0] == 200, subs
        seen = {}

        def delivered():
            seen.update(k.ok(srv, name, {"op": "seen", "token": token}))
            return seen["HTTP"] and seen["TCP"]

        k.wait_until(delivered, 15, 0.2,
                     what="the function's line at its in-sandbox subscribers (HTTP and TCP)")
        with listener.lock:
            conns = [dict(c) for c in listener.conns]
        assert not conns, (f"Kindling connected {len(conns)} time(s) to the host's "
                           f"127.0.0.1:{listener.port} for a no-network function "
                           f"(subscriptions: {subs}); first bytes: "
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
            'f"http://example.invalid:{_PORT}/t", f"http://[::1]:{_PORT}/t", '
            'f"http://SANDBOX.LocalDomain:{_PORT}/t"], "HTTP")')
        assert source != SUBSCRIBE
        k.deploy(srv, name, k.function_source(source),
                 environment={"PROBE_PORT": str(listener.port)})
        token = uuid.uuid4().hex
        subs = k.ok(srv, name, {"token": token})["subscriptions"]
        for uri in ("127.0.0.2", "0x7f000001", "example.invalid", "[::1]"):
            status, text = subs[f"HTTP http://{uri}:{listener.port}/t"]
            assert status == 400 and "ValidationError" in text, (uri, status, text)
            assert "sandbox.localdomain, sandbox, localhost or 127.0.0.1" in text, text
        # No delivery dials IPv6: the message says so.
        assert "IPv6" in subs[f"HTTP http://[::1]:{listener.port}/t"][1]
        # The environment's own loopback is still a destination (shared host network here),
        # its name in any letter case.
        status, _ = subs[f"HTTP http://SANDBOX.LocalDomain:{listener.port}/t"]
        assert status == 200, subs
        k.wait_until(lambda: listener.with_data(f"telemetry-probe-{token}".encode()), 10,
                     what="the function's line at its sandbox.localdomain destination")
    finally:
        listener.close()


def test_a_destination_on_kindlings_own_api_carries_the_function_identity(server_factory):
    """With the host's network shared (`namespaces`), a subscription to Kindling's own API on
    the loopback (`http://127.0.0.1:<listen port>/2015-03-31/functions/VICTIM/invocations`)
    must not make Kindling invoke VICTIM for the function: the delivery's socket is owned by
    the environment's user, so the edge treats it as the function (which must sign with its
    own session credentials), never as an unsigned local operator."""
    srv = server_factory.start("tele-deputy")
    victim = k.unique("victim")
    k.deploy(srv, victim, k.function_source('def attack(event, context):\n    return {}\n'))
    name = k.unique("tele")
    path = f"/2015-03-31/functions/{victim}/invocations"
    source = SUBSCRIBE.replace(
        '_subscribe([f"http://127.0.0.1:{_PORT}/t", f"http://sandbox.localdomain:{_PORT}/t"], "HTTP")',
        f'_subscribe([f"http://127.0.0.1:{{_PORT}}{path}", '
        f'f"http://sandbox.localdomain:{{_PORT}}{path}"], "HTTP")')
    assert source != SUBSCRIBE
    k.deploy(srv, name, k.function_source(source), environment={"PROBE_PORT": str(srv.port)})
    token = uuid.uuid4().hex
    subs = k.ok(srv, name, {"token": token})["subscriptions"]
    assert subs[f"HTTP http://127.0.0.1:{srv.port}{path}"][0] == 200, subs
    # Deliveries go out every 25 ms: give them a few seconds of invocations to carry.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        k.ping(srv, name)
        time.sleep(0.2)
    logs = boto3.client("logs", endpoint_url=srv.endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIAISOLATIONTEST000",
                        aws_secret_access_key="isolation-test-secret")
    try:
        streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{victim}")["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        streams = []
    assert not streams, (f"Kindling invoked {victim} for another function's telemetry "
                         f"subscription: {[s['logStreamName'] for s in streams]}")
    # The victim is still invocable (the check above would see its stream): the probe is live.
    k.ping(srv, victim)
    assert logs.describe_log_streams(logGroupName=f"/aws/lambda/{victim}")["logStreams"]
