"""Hostile HTTP through the front doors: random requests, sent as raw bytes, to a function URL,
an HTTP API and a REST API whose integrations echo the event.

For a bounded time (`KINDLING_FRONTDOOR_FUZZ_SECONDS`, default 15 s): odd methods, paths with
percent-escapes of any byte, raw non-UTF-8 bytes, dot segments and long segments, query strings
with broken escapes, repeated and empty keys, headers with raw 8-bit values, duplicates, odd
cookies, long values, bodies of random bytes under any content type or encoding, chunked
bodies. Every answer must be an answer (never a dropped connection), never a 5xx, and a 2xx must
be the function's echo: a JSON event with the request's method. At the end a plain request
through each door still works. `KINDLING_FRONTDOOR_FUZZ_SEED` replays a run.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import time
import urllib.parse

import agsupport as s
import fdsupport as fd
from agsupport import apigw, apigwv2  # noqa: F401  (fixtures)

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "FETCH", "M" * 40]


def segment(rng: random.Random) -> bytes:
    pick = rng.randrange(20)  # raw 8-bit bytes (1 in 20: hyper refuses them, 400) are rarer
    if pick == 0:
        return b"".join(b"%%%02X" % rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    if pick == 1:
        return bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 6)))
    if pick == 2:
        return rng.choice([b"..", b".", b"", b"%2e%2e", b"%2F", b"%", b"%G0", b"%00"])
    if pick == 3:
        return b"s" * rng.choice([200, 1000, 4000])
    if pick == 4:
        return "ü-🔥-名".encode()
    if pick == 5:
        return rng.choice([b"{proxy+}", b"$default", b"_user_request_", b"prod", b"~", b";x=1"])
    return rng.choice([b"a", b"pets", b"7", b"x%20y", b"a+b", b"%41", b"%E2%82%AC"])


def query(rng: random.Random) -> bytes:
    pick = rng.randrange(14)
    if pick == 0:
        return b""
    if pick == 1:
        return b"?" + b"&".join(b"k=%d" % i for i in range(rng.choice([2, 50, 300])))
    if pick == 2:
        return b"?" + rng.choice([b"=", b"&&", b"a", b"a=", b"=b", b"%ZZ=1", b"a=%00", b"a=1&a=2&a="])
    if pick == 3:
        return b"?" + bytes(rng.randrange(0x21, 0x100) for _ in range(rng.randrange(1, 30))).replace(
            b"#", b"")
    return b"?q=" + segment(rng)


def headers(rng: random.Random) -> list[tuple[bytes, bytes]]:
    out = []
    for _ in range(rng.randrange(0, 8)):
        pick = rng.randrange(10)
        if pick == 0:
            out.append((b"Cookie", rng.choice([b"a=1; b=2", b";;;", b"=", b"a", b"a=1;a=2",
                                                b"\xff\xfe=\x80", b"c=" + b"v" * 4000])))
        elif pick == 1:
            out.append((b"X-Dup", b"1"))
            out.append((b"x-dup", b"2"))
        elif pick == 2:
            out.append((b"X-Raw", bytes(rng.randrange(0x80, 0x100) for _ in range(8))))
        elif pick == 3:
            out.append((b"Content-Type", rng.choice([b"application/json", b"text/plain",
                                                      b"image/png", b"multipart/form-data",
                                                      b"application/x-www-form-urlencoded",
                                                      b"\xff", b""])))
        elif pick == 4:
            out.append((b"Content-Encoding", rng.choice([b"gzip", b"br", b"deflate", b"x"])))
        elif pick == 5:
            out.append((b"X-Forwarded-For", rng.choice([b"", b"not-an-ip", b"1.2.3.4, ::1, x"])))
        elif pick == 6:
            out.append((b"X-Long", b"L" * rng.choice([100, 6000])))
        elif pick == 7:
            out.extend((b"X-Many-%d" % i, b"v") for i in range(rng.choice([10, 80])))
        elif pick == 8:
            out.append((b"Authorization", rng.choice([b"AWS4-HMAC-SHA256 nonsense", b"Bearer x",
                                                       b"\x80"])))
        else:
            out.append((b"Accept", rng.choice([b"*/*", b"text/event-stream", b""])))
    return out


def body(rng: random.Random) -> bytes:
    pick = rng.randrange(5)
    if pick == 0:
        return b""
    if pick == 1:
        return os.urandom(rng.choice([1, 100, 5000, 60_000]))
    if pick == 2:
        return json.dumps({"k": "v" * rng.randrange(100), "n": [1, None, True]}).encode()
    if pick == 3:
        return b"a=1&b=%ZZ&c"
    return "ü🔥\x00".encode() * rng.randrange(1, 50)


def send(port: int, raw: bytes, method: str) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def request(rng: random.Random, host: bytes, base: bytes) -> tuple[str, bytes]:
    method = rng.choice(METHODS)
    path = base + b"/" + b"/".join(segment(rng) for _ in range(rng.randrange(0, 4))) + query(rng)
    hdrs = headers(rng)
    payload = body(rng)
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: " + host, b"Connection: close"]
    lines += [name + b": " + value for name, value in hdrs]
    if payload and rng.random() < 0.2:
        lines.append(b"Transfer-Encoding: chunked")
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                          for c in (payload[i:i + 777] for i in range(0, len(payload), 777)))
        raw = b"\r\n".join(lines) + b"\r\n\r\n" + chunks + b"0\r\n\r\n"
    else:
        lines.append(b"Content-Length: %d" % len(payload))
        raw = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    return method, raw


def test_front_doors_answer_hostile_http(lam, apigw, apigwv2, endpoint):
    seed = int(os.environ.get("KINDLING_FRONTDOOR_FUZZ_SEED") or random.randrange(2**32))
    budget = float(os.environ.get("KINDLING_FRONTDOOR_FUZZ_SECONDS", "15"))
    rng = random.Random(seed)
    fn = s.python_function(lam, s.ECHO, Timeout=10)
    s.allow_apigateway(lam, fn)
    url = urllib.parse.urlsplit(fd.public_url(lam, fn))
    http_api = apigwv2.create_api(Name=s.unique("fuzz"), ProtocolType="HTTP",
                                  Target=s.function_arn(fn))
    rest = apigw.create_rest_api(name=s.unique("fuzz"))
    proxy = apigw.create_resource(restApiId=rest["id"], parentId=rest["rootResourceId"],
                                  pathPart="{proxy+}")
    apigw.put_method(restApiId=rest["id"], resourceId=proxy["id"], httpMethod="ANY",
                     authorizationType="NONE")
    apigw.put_integration(
        restApiId=rest["id"], resourceId=proxy["id"], httpMethod="ANY", type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{s.REGION}:lambda:path/2015-03-31/functions/"
            f"{s.function_arn(fn)}/invocations")
    apigw.create_deployment(restApiId=rest["id"], stageName="prod")
    port = urllib.parse.urlsplit(endpoint).port
    host = f"127.0.0.1:{port}".encode()
    doors = {
        "function URL": (url.netloc.encode(), url.path.rstrip("/").encode()),
        "HTTP API": (host, urllib.parse.urlsplit(http_api["ApiEndpoint"]).path.encode()),
        "REST API": (host, f"/restapis/{rest['id']}/prod/_user_request_".encode()),
    }
    failures: list[str] = []
    counts = {name: {} for name in doors}
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline and len(failures) < 10:
        door = rng.choice(list(doors))
        door_host, base = doors[door]
        method, raw = request(rng, door_host, base)
        head = raw.split(b"\r\n\r\n", 1)[0][:400]
        try:
            status, rheaders, data = send(port, raw, method)
        except (OSError, http.client.HTTPException) as e:
            failures.append(f"{door}: no answer ({e!r}) to {head!r}")
            continue
        counts[door][status] = counts[door].get(status, 0) + 1
        if status >= 500:
            failures.append(f"{door}: HTTP {status} {data[:300]!r} to {head!r}")
        elif 200 <= status < 300 and method != "HEAD":
            try:
                event = json.loads(data)
            except ValueError:
                failures.append(f"{door}: HTTP {status} not the echo: {data[:300]!r} to {head!r}")
                continue
            seen = (event.get("requestContext", {}).get("http", {}).get("method")
                    or event.get("httpMethod"))
            if seen != method:
                failures.append(f"{door}: the function saw method {seen!r}, sent {method!r}")
    assert not failures, (f"seed {seed} (KINDLING_FRONTDOOR_FUZZ_SEED replays), {counts}:\n  "
                          + "\n  ".join(failures))
    total = sum(sum(c.values()) for c in counts.values())
    assert total >= 100, f"only {total} requests in {budget}s: {counts}"
    for door, (door_host, base) in doors.items():
        status, _, data = send(port, b"GET " + base + b"/plain?x=1 HTTP/1.1\r\nHost: " + door_host
                               + b"\r\nConnection: close\r\n\r\n", "GET")
        assert status == 200 and json.loads(data), (door, status, data[:300])
    print(f"front-door fuzz: seed {seed}, statuses {counts}")
