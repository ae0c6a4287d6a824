"""Random requests to every service behind the one endpoint, in each service's own wire format.

For a bounded time (`KINDLING_WIRE_FUZZ_SECONDS`, default 15 s a test), requests are drawn from the
operations of botocore's service models (the shapes real SDKs send): each input built from
its shape with random values (boundary lengths and numbers, wrong enum values, unicode,
control characters, path tricks, existing and missing resources), serialized by botocore's
own serializer for the protocol (JSON, query, REST-JSON, REST-XML), sometimes damaged on
the wire (truncated, bytes flipped, non-UTF-8, wrong or no content type, a huge field),
signed with SigV4 and sent (the second test: to a server in shared mode, which verifies
signatures, with wrong keys and damaged signatures too). Every answer must be a client error,
a success or a 501 (NotImplemented: an operation Kindling does not serve, said in the
service's format), never another 5xx; carry a request id; and, for an undamaged request, be one that botocore's parser for that
protocol reads (an error with a code). At the end the server still serves every service.

`KINDLING_WIRE_FUZZ_SEED` replays a run (the seed is printed in every failure).
"""

from __future__ import annotations

import datetime
import http.client
import os
import random
import time
import urllib.parse

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ParamValidationError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer


REGION = "us-east-1"
ACCOUNT = "000000000000"

# (botocore service name, protocol to serialize with, signing name)
SERVICES = [
    ("lambda", "rest-json", "lambda"),
    ("sqs", "json", "sqs"),
    ("sqs", "query", "sqs"),
    ("sns", "query", "sns"),
    ("sts", "query", "sts"),
    ("cloudformation", "query", "cloudformation"),
    ("logs", "json", "logs"),
    ("events", "json", "events"),
    ("s3", "rest-xml", "s3"),
    ("apigateway", "rest-json", "apigateway"),
    ("apigatewayv2", "rest-json", "apigateway"),
]

# Operations that hold the connection by design (long polls, event streams) are left out:
# a hung request would only stall the loop, and their limits are tested elsewhere.
SKIP = {
    ("logs", "StartLiveTail"),
    ("lambda", "InvokeWithResponseStream"),
    ("s3", "SelectObjectContent"),
    ("lambda", "InvokeAsync"),
}

NAMES = ["fuzz", "fuzz-1", "a", "A" * 64, "A" * 65, "x" * 257, "", " ", "..", "../../etc/passwd",
         "%2e%2e%2f", "name with space", "ü-ñ-🔥", "nul\x00byte", "line\nbreak", "$LATEST", "1",
         "0", "-1", "*", "arn:aws:lambda:us-east-1:000000000000:function:fuzz",
         "arn:aws:sqs:us-east-1:000000000000:fuzzq", "arn:aws:sns:us-east-1:000000000000:fuzzt",
         "{\"a\": 1}", "<xml/>", "'; DROP TABLE functions; --", "\\", "/", "//", "?x=1#y",
         "fuzzq", "fuzzt", "fuzzb", "/aws/lambda/fuzz", "fuzzs"]
NUMBERS = [0, 1, -1, 2, 10, 60, 900, 1024, 10240, 2**31 - 1, 2**31, 2**53, 2**63 - 1, -2**63]


class Gen:
    """Random values for botocore shapes."""

    def __init__(self, rng: random.Random, known: dict[str, list[str]]):
        self.rng = rng
        self.known = known

    def string(self, shape, name: str) -> str:
        r = self.rng.random()
        enum = shape.metadata.get("enum")
        if enum and r < 0.8:
            return self.rng.choice(enum)
        for key, values in self.known.items():
            if key.lower() in name.lower() and r < 0.6:
                return self.rng.choice(values)
        lo = shape.metadata.get("min", 0)
        hi = shape.metadata.get("max")
        if r < 0.1 and hi is not None and hi < 5000:
            return "z" * (hi + self.rng.choice([0, 1]))
        if r < 0.15 and lo:
            return "z" * max(lo - 1, 0)
        if r < 0.2:
            return "".join(chr(self.rng.randrange(1, 0x2FFF)) for _ in range(self.rng.randrange(1, 40)))
        return self.rng.choice(NAMES)

    def value(self, shape, name: str = "", depth: int = 0):
        t = shape.type_name
        if t == "structure":
            out = {}
            if depth > 4:
                return out
            required = set(shape.required_members)
            for member, mshape in shape.members.items():
                if mshape.metadata.get("eventstream") or mshape.serialization.get("eventstream"):
                    continue
                p = 0.95 if member in required else 0.4
                if self.rng.random() < p:
                    out[member] = self.value(mshape, member, depth + 1)
            return out
        if t == "list":
            n = self.rng.choice([0, 1, 1, 2, 3, 3, 120]) if depth <= 4 else 0
            return [self.value(shape.member, name, depth + 1) for _ in range(n)]
        if t == "map":
            n = self.rng.choice([0, 1, 2, 3, 60]) if depth <= 4 else 0
            return {self.string(shape.key, "key") + str(i): self.value(shape.value, name, depth + 1)
                    for i in range(n)}
        if t == "string":
            return self.string(shape, name)
        if t in ("integer", "long"):
            if name == "WaitTimeSeconds":  # a long poll would only stall the loop
                return self.rng.choice([0, 1, -1, 21, 2**31])
            lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
            edges = [v for v in (lo, hi) if v is not None]
            edges += [v + d for v in edges for d in (-1, 1)]
            return self.rng.choice(NUMBERS + edges)
        if t in ("float", "double"):
            return self.rng.choice([0.0, -1.5, 1e308, 0.1, 3.0])
        if t == "boolean":
            return self.rng.random() < 0.5
        if t == "timestamp":
            return datetime.datetime.fromtimestamp(self.rng.choice([0, 1, 2**31, 1.7e9]),
                                                   tz=datetime.timezone.utc)
        if t == "blob":
            if shape.serialization.get("streaming") and self.rng.random() < 0.1:
                return os.urandom(self.rng.choice([0, 1, 300_000]))
            return os.urandom(self.rng.choice([0, 1, 16, 1000]))
        raise AssertionError(f"unknown shape type {t}")


def damage(rng: random.Random, body: bytes, headers: dict[str, str]) -> str:
    """Damages a serialized request in place; returns what was done."""
    choice = rng.randrange(7)
    if choice == 0 and body:
        headers["__body__"] = body[: rng.randrange(len(body))]
        return "truncated body"
    if choice == 1 and body:
        b = bytearray(body)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        headers["__body__"] = bytes(b)
        return "flipped bytes"
    if choice == 2:
        headers["__body__"] = body + b"\xff\xfe\xc3\x28"
        return "non-UTF-8 tail"
    if choice == 3:
        headers["Content-Type"] = rng.choice(["text/plain", "application/json", "",
                                              "application/x-www-form-urlencoded",
                                              "multipart/form-data; boundary=x"])
        return "content type changed"
    if choice == 4:
        headers.pop("Content-Type", None)
        return "content type removed"
    if choice == 5:
        headers["__body__"] = rng.choice([b"{", b"[]", b"null", b"\"x\"", b"<a>", b"Action=&&&=",
                                          b"{\"a\":" * 2000, b"Action=" + b"A" * 100_000])
        return "replaced body"
    headers["X-Amz-Target"] = rng.choice(["", ".", "AmazonSQS.", "AmazonSQS.Nope",
                                          "Logs_20140328.", "AWSEvents.DeleteEverything"])
    return "target header changed"


def send(url: str, method: str, path: str, headers: dict[str, str], body: bytes):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            # Raw UTF-8 in header values, as a careless client sends it.
            conn.putheader(name, value.encode() if isinstance(value, str) else value)
        if "Content-Length" not in headers:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {kk.lower(): v for kk, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def client(server, service: str, creds: Credentials):
    """A botocore client of `service` on `server`, signing with `creds`."""
    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=server.url,
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def known_resources(server, creds: Credentials) -> dict[str, list[str]]:
    """A few resources that exist, so that random requests reach past the not-found answers."""
    sqs = client(server, "sqs", creds)
    queue_url = sqs.create_queue(QueueName="fuzzq")["QueueUrl"]
    sns = client(server, "sns", creds)
    topic = sns.create_topic(Name="fuzzt")["TopicArn"]
    s3 = client(server, "s3", creds)
    s3.create_bucket(Bucket="fuzzb")
    s3.put_object(Bucket="fuzzb", Key="k", Body=b"v")
    logs = client(server, "logs", creds)
    logs.create_log_group(logGroupName="/aws/fuzz")
    return {
        "QueueUrl": [queue_url, queue_url + "x", server.url + "/000000000000/../fuzzq"],
        "TopicArn": [topic],
        "Bucket": ["fuzzb"],
        "logGroupName": ["/aws/fuzz"],
        "FunctionName": ["fuzz", "arn:aws:lambda:us-east-1:000000000000:function:fuzz:1"],
        "QueueName": ["fuzzq"],
        "Key": ["k", "a/b/../c", "%00"],
    }


def damage_signature(rng: random.Random, headers: dict[str, str]) -> str:
    """Damages a signed request's authentication; returns what was done."""
    auth = headers.get("Authorization", "")
    choice = rng.randrange(8)
    if choice == 0:
        headers.pop("Authorization", None)
        return "unsigned"
    if choice == 1:
        headers["Authorization"] = auth[: rng.randrange(len(auth) + 1)]
        return "authorization truncated"
    if choice == 2:
        headers["Authorization"] = auth.replace("Signature=", "Signature=0", 1)
        return "signature changed"
    if choice == 3:
        headers["X-Amz-Date"] = rng.choice(["", "20200101T000000Z", "garbage", "99999999T999999Z"])
        return "date changed"
    if choice == 4:
        headers["X-Amz-Security-Token"] = rng.choice(["", "x" * 5000, "IQoJ\u00ff"])
        return "session token added"
    if choice == 5:
        headers["Authorization"] = rng.choice([
            "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=", "Basic dGVzdDp0ZXN0",
            "AWS4-HMAC-SHA256 Credential=AKIDTEAMKEY000000001/20200101/us-east-1/sqs/"
            "aws4_request, SignedHeaders=, Signature=",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g, SignedHeaders=host;host;host, "
            "Signature=" + "f" * 64,
            "AWS4-HMAC-SHA256 " + "Credential=x," * 500])
        return "authorization replaced"
    if choice == 6:
        headers["Authorization"] = auth.replace("SignedHeaders=", "SignedHeaders=x-nope;", 1)
        return "signed headers changed"
    headers["X-Amz-Content-SHA256"] = rng.choice(["UNSIGNED-PAYLOAD", "0" * 64, "x",
                                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
    return "payload hash changed"


def build(service: str, protocol: str, signing: str, op, params, url: str, rng, damaged: bool,
          creds: Credentials, sign_damaged: bool = False):
    serializer = create_serializer(protocol, include_validation=False)
    req = serializer.serialize_to_request(params, op)
    path = req["url_path"] or "/"
    query = urllib.parse.urlencode(req["query_string"], doseq=True) if req["query_string"] else ""
    body = req["body"]
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body, doseq=True)
    if isinstance(body, str):
        body = body.encode()
    body = body or b""
    if not isinstance(body, (bytes, bytearray)):
        body = bytes(body.read()) if hasattr(body, "read") else bytes(body)
    headers = {kk: str(v) for kk, v in req["headers"].items()}
    if protocol == "query" and "Content-Type" not in headers:
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    what = damage(rng, body, headers) if damaged else ""
    body = headers.pop("__body__", body)
    full = url + path + ("?" + query if query else "")
    aws = AWSRequest(method=req["method"], url=full, data=body, headers=headers)
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(creds, signing, REGION).add_auth(aws)
    prepared = aws.prepare()
    target = urllib.parse.urlsplit(prepared.url)
    out_headers = {kk: v for kk, v in prepared.headers.items()}
    out_headers["Host"] = target.netloc
    if sign_damaged:
        what = (what + ", " if what else "") + damage_signature(rng, out_headers)
    return (req["method"], target.path + ("?" + target.query if target.query else ""),
            out_headers, prepared.body or b"", what)


def fuzz(server, known, signing_keys: list[Credentials], sign_damage: float) -> None:
    """The loop of both tests: random requests for the budget, each signed with one of
    `signing_keys`, a `sign_damage` share of them with their signature damaged."""
    seed = int(os.environ.get("KINDLING_WIRE_FUZZ_SEED") or random.randrange(2**32))
    budget = float(os.environ.get("KINDLING_WIRE_FUZZ_SECONDS", "15"))
    rng = random.Random(seed)
    session = botocore.session.get_session()
    models = []
    for service, protocol, signing in SERVICES:
        model = session.get_service_model(service)
        ops = [model.operation_model(n) for n in model.operation_names if (service, n) not in SKIP]
        models.append((service, protocol, signing, ops))
    gen = Gen(rng, known)
    failures: list[str] = []
    counts = {"requests": 0, "damaged": 0, "ok": 0, "client errors": 0}
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline and len(failures) < 10:
        service, protocol, signing, ops = rng.choice(models)
        op = rng.choice(ops)
        params = gen.value(op.input_shape) if op.input_shape is not None else {}
        damaged = rng.random() < 0.3
        sign_damaged = rng.random() < sign_damage
        try:
            method, path, headers, body, what = build(service, protocol, signing, op, params,
                                                      server.url, rng, damaged,
                                                      rng.choice(signing_keys), sign_damaged)
        except (ValueError, TypeError, KeyError, AttributeError, ParamValidationError):
            continue  # botocore's serializer refused these values itself
        label = f"{service}/{protocol} {op.name}" + (f" ({what})" if what else "")
        try:
            status, rheaders, rbody = send(server.url, method, path, headers, body)
        except ValueError:
            continue  # http.client refuses to send this header (a line break or NUL in it)
        except (OSError, http.client.HTTPException) as e:
            failures.append(f"{label}: no answer ({e!r}); {method} {path[:200]}")
            if not server.running:
                break
            continue
        counts["requests"] += 1
        counts["damaged"] += damaged or sign_damaged
        counts["ok" if status < 400 else "client errors"] += 1
        excerpt = rbody[:300]
        if status >= 500 and status != 501:
            failures.append(f"{label}: HTTP {status} {excerpt!r}; {method} {path[:200]} "
                            f"body {body[:200]!r}")
            continue
        if not (rheaders.get("x-amzn-requestid") or rheaders.get("x-amz-request-id")):
            failures.append(f"{label}: HTTP {status} without a request id")
        if damaged or sign_damaged or status < 300:
            continue
        parser = create_parser(protocol)
        response = {"status_code": status, "headers": rheaders, "body": rbody}
        try:
            parsed = parser.parse(response, op.output_shape)
        except Exception as e:  # noqa: BLE001 - any parser failure is the finding
            failures.append(f"{label}: HTTP {status} unreadable to botocore ({e!r}): {excerpt!r}")
            continue
        if status >= 400 and not parsed.get("Error", {}).get("Code"):
            failures.append(f"{label}: HTTP {status} without an error code: {excerpt!r}")
    assert server.running, f"kindling died (seed {seed}):\n{server.log_tail()}"
    assert not failures, (f"seed {seed} (KINDLING_WIRE_FUZZ_SEED replays), {counts}:\n  "
                          + "\n  ".join(failures))
    assert counts["requests"] >= 200, f"only {counts} in {budget}s (seed {seed})"
    # Still serving every service, in order.
    for service, call in [("lambda", "list_functions"), ("sqs", "list_queues"),
                          ("sns", "list_topics"), ("s3", "list_buckets"),
                          ("logs", "describe_log_groups"), ("sts", "get_caller_identity")]:
        getattr(client(server, service, signing_keys[0]), call)()
    print(f"wire fuzz: seed {seed}, {counts}")


def test_every_service_answers_random_requests_in_its_own_format(server_factory):
    server = server_factory()
    creds = Credentials("test", "test")
    fuzz(server, known_resources(server, creds), [creds], sign_damage=0.0)


def test_shared_mode_answers_random_and_badly_signed_requests(server_factory, tmp_path):
    """The same against a server that verifies signatures (`--credentials`): requests signed
    with its key, with an unknown key or a wrong secret, and a third with the signature
    damaged (missing, truncated, changed, odd dates, tokens, signed headers, payload hashes)."""
    keys = tmp_path / "credentials"
    keys.write_text("AKIDFUZZKEY000000001 fuzz-secret-fuzz-secret\n")
    server = server_factory("--credentials", str(keys))
    good = Credentials("AKIDFUZZKEY000000001", "fuzz-secret-fuzz-secret")
    known = known_resources(server, good)
    fuzz(server, known, [good, good, good, Credentials("AKIDUNKNOWN000000001", "x"),
                         Credentials("AKIDFUZZKEY000000001", "wrong-secret")], sign_damage=0.3)
