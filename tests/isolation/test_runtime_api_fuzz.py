"""A hostile function against its own Runtime, Extensions, Telemetry and Logs APIs.

The function sends random requests, as raw bytes, to `AWS_LAMBDA_RUNTIME_API` for a few
seconds while it runs: every route with random methods, request ids (never its own: that would
answer its own invocation), extension names and identifiers, headers (error types, lying or
missing lengths, chunked bodies), bodies (junk, huge, subscriptions with odd buffering and
destinations) and unknown paths. Kindling must answer every request (no dropped connection),
never with a 5xx (the Runtime API's 500 means a container failure: the runtime should exit),
keep the function's own invocation intact (it returns its report), and keep serving: a second
function invoked meanwhile answers every time, and both functions answer again afterwards.
"""

from __future__ import annotations

import json
import random
import threading
import time

import iso_support as k
from iso_support import deploy, ok, ping, unique

FUZZER = r'''
import json, os, random, socket, time, uuid

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)

def _rid(rng, own):
    pick = rng.randrange(8)
    if pick == 0:
        return str(uuid.uuid4())
    if pick == 1:
        return own[:-1] + ("0" if own[-1] != "0" else "1")
    return rng.choice(["", "..", "%2e%2e", "x" * 3000, "%00", "a/b", "%ZZ", "null", "0" * 36])

def _body(rng):
    pick = rng.randrange(7)
    if pick == 0:
        return b""
    if pick == 1:
        return os.urandom(rng.choice([1, 500, 70000]))
    if pick == 2:
        return b"x" * (6 * 1024 * 1024 + rng.choice([-10, 100, 5000]))
    if pick == 3:
        return json.dumps({"schemaVersion": rng.choice(["2022-12-13", "2021-03-18", "x", 7]),
                           "types": rng.choice([["platform"], ["function", "extension"], "all", [None], []]),
                           "buffering": {"maxItems": rng.choice([0, 1, 10000, 10**9, -1, "x"]),
                                         "maxBytes": rng.choice([0, 262144, 2**40, None]),
                                         "timeoutMs": rng.choice([0, 25, 1000, 10**9, -5])},
                           "destination": {"protocol": rng.choice(["HTTP", "TCP", "UDP", ""]),
                                           "URI": rng.choice(["http://sandbox.localdomain:1234",
                                                              "http://127.0.0.1:22", "http://10.0.0.1/",
                                                              "file:///etc/passwd", "", "http://" + "h" * 3000])}}).encode()
    if pick == 4:
        return json.dumps({"events": rng.choice([["INVOKE", "SHUTDOWN"], ["NOPE"], [], "INVOKE", None])}).encode()
    if pick == 5:
        return json.dumps({"errorMessage": "m" * rng.choice([1, 100000]), "errorType": "x",
                           "stackTrace": [1, None, {"a": []}]}).encode()
    return rng.choice([b"{", b"null", b"[]", b"\xff\xfe", b"{\"a\":" * 3000])

def _request(rng, own):
    rid = _rid(rng, own)
    method, path = rng.choice([
        ("POST", "/2018-06-01/runtime/invocation/%s/response" % rid),
        ("POST", "/2018-06-01/runtime/invocation/%s/error" % rid),
        ("POST", "/2018-06-01/runtime/init/error"),
        ("GET", "/2018-06-01/runtime/invocation/%s" % rid),
        ("POST", "/2020-01-01/extension/register"),
        ("GET", "/2020-01-01/extension/event/next"),
        ("POST", "/2020-01-01/extension/init/error"),
        ("POST", "/2020-01-01/extension/exit/error"),
        ("PUT", "/2022-07-01/telemetry"),
        ("PUT", "/2020-08-15/logs"),
        ("GET", rng.choice(["/", "/2018-06-01/", "/2018-06-01/runtime/invocation/next/x",
                            "/%s/../../etc/passwd" % rid, "/" + "p" * 9000])),
    ])
    if rng.random() < 0.2:
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"])
    headers = [("Host", API), ("Connection", "close")]
    for _ in range(rng.randrange(4)):
        headers.append(rng.choice([
            ("Lambda-Extension-Name", rng.choice(["ext", "", "x" * 300, "../x", "bootstrap"])),
            ("Lambda-Extension-Identifier", rng.choice([str(uuid.uuid4()), "", "x" * 500])),
            ("Lambda-Extension-Accept-Feature", rng.choice(["accountId", "x", ""])),
            ("Lambda-Runtime-Function-Error-Type", rng.choice(["Unhandled", "", "x" * 5000])),
            ("Lambda-Runtime-Function-XRay-Error-Cause", rng.choice(["{", "{}", "x" * 70000])),
            ("Content-Type", rng.choice(["application/json", "application/vnd.awslambda.http-integration-response", ""])),
            ("Lambda-Runtime-Function-Response-Mode", rng.choice(["streaming", "buffered", "x"])),
        ]))
    body = _body(rng)
    chunked = body and rng.random() < 0.2
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in
                        (body[i:i + 65536] for i in range(0, len(body), 65536))) + b"0\r\n\r\n"
    elif rng.random() < 0.1 and body:
        headers.append(("Content-Length", str(len(body) - 1)))  # a length shorter than the body
    else:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % h for h in headers)
    return method, path, head.encode("utf-8", "surrogateescape") + b"\r\n" + body

def _send(raw):
    with socket.create_connection((HOST, int(PORT)), timeout=20) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was read: the answer is still there
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data

def attack(event, context):
    rng = random.Random(event["seed"])
    deadline = time.monotonic() + event["seconds"]
    statuses, bad, n = {}, [], 0
    while time.monotonic() < deadline and len(bad) < 10:
        method, path, raw = _request(rng, context.aws_request_id)
        try:
            data = _send(raw)
        except OSError as e:
            bad.append("%s %s: %r" % (method, path[:80], e))
            continue
        n += 1
        line = data.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            bad.append("%s %s: no answer (%r)" % (method, path[:80], data[:200]))
            continue
        status = int(parts[1])
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            bad.append("%s %s: %r" % (method, path[:80], data[:300]))
    return {"requests": n, "statuses": statuses, "bad": bad}
'''


def test_a_function_fuzzing_its_runtime_api_hurts_nothing(server):
    seed = random.randrange(2**32)
    fuzzer, bystander = unique("iso-rtfuzz"), unique("iso-rtbystander")
    deploy(server, fuzzer, k.function_source(FUZZER), timeout=60)
    deploy(server, bystander, k.function_source(""))
    first = ping(server, bystander)
    ping(server, fuzzer)
    result: dict = {}

    def run():
        try:
            result["r"] = k.invoke(server, fuzzer, {"seed": seed, "seconds": 8},
                                   client=server.new_client(read_timeout=60))
        except Exception as e:  # noqa: BLE001 - reported below
            result["e"] = e

    t = threading.Thread(target=run)
    t.start()
    pings = 0
    deadline = time.monotonic() + 90
    while t.is_alive() and time.monotonic() < deadline:
        p = ping(server, bystander)
        assert p["env"] == first["env"], "the bystander's environment was replaced"
        pings += 1
    t.join(timeout=90)
    assert "r" in result, f"seed {seed}: the fuzzing invocation failed: {result.get('e')!r}"
    r = result["r"]
    assert r.status == 200 and r.function_error is None, f"seed {seed}: {r.describe()}"
    out = r.payload
    print(f"runtime API fuzz: seed {seed}, {json.dumps(out)[:2000]}, bystander pings {pings}")
    assert not out["bad"], f"seed {seed}: {out}\n{server.log_tail()}"
    assert out["requests"] >= 50, out
    assert pings >= 1
    assert ok(server, fuzzer, {"op": "ping"})["pong"] is True
    assert ping(server, bystander)["env"] == first["env"]
