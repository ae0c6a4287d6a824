#!/usr/bin/env python3
"""Signs requests with botocore so kindling-auth can be checked against an independent signer.

Usage:
  botocore_sign.py random SEED COUNT   # random requests, one per line, for tests/botocore.rs
  botocore_sign.py vectors             # the fixed cases pasted into src/tests.rs

Every output line of `random` is eleven tab-separated fields, each hex-encoded UTF-8/bytes:
  kind (header|presigned), label, method, raw path, raw query, body,
  headers ("name\\0value\\0name\\0value..."), access key id, secret, session token ("" if none),
  region, server time as Unix seconds (decimal text).
The request is exactly what botocore signed and would put on the wire (the `host` header is the
one urllib3 would add). Exits 3 when botocore cannot be imported.
"""

import datetime
import hashlib
import random
import string
import sys
from urllib.parse import urlsplit

try:
    import botocore.auth
    import botocore.session
    from botocore.auth import SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(f"botocore is not importable: {exc}", file=sys.stderr)
    sys.exit(3)

ENDPOINT = "http://localhost:9001"
HOST = "localhost:9001"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"]


class Captured(Exception):
    """Raised from the before-send hook to stop botocore after signing."""


def freeze_clock(when):
    def frozen(remove_tzinfo=True):
        return when if remove_tzinfo else when.replace(tzinfo=datetime.timezone.utc)

    botocore.auth.get_current_datetime = frozen
    try:
        # With awscrt installed (the SAM CLI brings it) clients sign through botocore's CRT
        # signers, which read the clock through their own import.
        from botocore.crt import auth as crt_auth

        crt_auth.get_current_datetime = frozen
    except ImportError:
        pass


def hx(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return value.hex()


def headers_blob(pairs):
    return "\0".join(f"{n}\0{v}" for n, v in pairs)


def emit(kind, label, method, url, headers, body, creds, region, now):
    parts = urlsplit(url)
    fields = [
        kind,
        label,
        method,
        parts.path,
        parts.query,
        body or b"",
        headers_blob(headers),
        creds.access_key,
        creds.secret_key,
        creds.token or "",
        region,
        str(now),
    ]
    print("\t".join(hx(f) for f in fields))


def rand_text(rng, alphabet=None, lo=1, hi=12):
    if alphabet is None:
        alphabet = string.ascii_letters + string.digits + "-_.~!*'()+ /:=&%$@,;?é☃"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def rand_name(rng):
    return rand_text(rng, string.ascii_letters + string.digits + "-_", 1, 20)


def rand_creds(rng):
    akid = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    secret = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    token = None
    if rng.random() < 0.3:
        token = "".join(rng.choice(string.ascii_letters + string.digits + "+/=") for _ in range(80))
    return Credentials(akid, secret, token)


def rand_time(rng):
    return datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 60 * 365 * 86400))


def lambda_call(rng, client):
    """One random Lambda API call through the real client (serializer + signer)."""
    name = rand_name(rng)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    qualifier = rng.choice(["$LATEST", "1", "prod", "v-2"])
    target = rng.choice([name, f"{name}:{qualifier}", arn, f"{arn}:{qualifier}"])
    op = rng.randrange(9)
    if op == 0:
        kwargs = {"MaxItems": rng.randint(1, 50)}
        if rng.random() < 0.7:
            kwargs["Marker"] = rand_text(rng)
        if rng.random() < 0.5:
            kwargs["FunctionVersion"] = "ALL"
        return "ListFunctions", client.list_functions, kwargs
    if op == 1:
        return "GetFunction", client.get_function, {"FunctionName": target}
    if op == 2:
        kwargs = {"FunctionName": target, "Payload": bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))}
        if rng.random() < 0.5:
            kwargs["InvocationType"] = rng.choice(["Event", "RequestResponse", "DryRun"])
        if rng.random() < 0.3:
            kwargs["LogType"] = "Tail"
        if rng.random() < 0.3:
            kwargs["Qualifier"] = qualifier
        return "Invoke", client.invoke, kwargs
    if op == 3:
        return "ListTags", client.list_tags, {"Resource": arn}
    if op == 4:
        keys = [rand_text(rng) for _ in range(rng.randint(1, 5))]
        return "UntagResource", client.untag_resource, {"Resource": arn, "TagKeys": keys}
    if op == 5:
        tags = {rand_text(rng): rand_text(rng, lo=0) for _ in range(rng.randint(1, 4))}
        return "TagResource", client.tag_resource, {"Resource": arn, "Tags": tags}
    if op == 6:
        kwargs = {"FunctionName": target, "StatementId": rand_name(rng)}
        if rng.random() < 0.5:
            kwargs["RevisionId"] = rand_text(rng)
        return "RemovePermission", client.remove_permission, kwargs
    if op == 7:
        kwargs = {"FunctionName": target}
        if rng.random() < 0.7:
            kwargs["Marker"] = rand_text(rng)
            kwargs["MaxItems"] = rng.randint(1, 10000)
        return "ListVersionsByFunction", client.list_versions_by_function, kwargs
    zip_bytes = bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))
    return (
        "CreateFunction",
        client.create_function,
        {
            "FunctionName": name,
            "Role": "arn:aws:iam::123456789012:role/r",
            "Runtime": "python3.12",
            "Handler": "app.handler",
            "Code": {"ZipFile": zip_bytes},
            "Description": rand_text(rng, lo=0, hi=40),
        },
    )


def client_case(rng, session):
    creds = rand_creds(rng)
    region = rng.choice(REGIONS)
    when = rand_time(rng)
    freeze_clock(when)
    client = session.create_client(
        "lambda",
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    seen = {}

    def before_send(request, **_):
        seen["request"] = request
        raise Captured()

    client.meta.events.register("before-send.lambda", before_send)
    label, call, kwargs = lambda_call(rng, client)
    try:
        call(**kwargs)
    except Captured:
        pass
    req = seen["request"]
    headers = [(n, v if isinstance(v, str) else v.decode("utf-8")) for n, v in req.headers.items()]
    # Newer botocore puts the `host` header it signed on the request itself; older ones leave it
    # to the HTTP layer.
    if not any(n.lower() == "host" for n, _ in headers):
        headers.append(("Host", HOST))
    body = req.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    now = int(when.replace(tzinfo=datetime.timezone.utc).timestamp()) + rng.randint(-299, 299)
    emit("header", label, req.method, req.url, headers, body, creds, region, now)


def raw_case(rng, presigned):
    """A hand-made request through SigV4Auth / SigV4QueryAuth: odd paths, queries and headers."""
    creds = rand_creds(rng)
    region = rng.choice(REGIONS)
    service = "lambda"
    when = rand_time(rng)
    freeze_clock(when)
    segments = [rand_text(rng) for _ in range(rng.randint(0, 4))]
    from urllib.parse import quote

    segments = [quote(s, safe="") for s in segments]
    if rng.random() < 0.15:
        # Dot segments and empty segments, which signers normalize away.
        segments.insert(rng.randint(0, len(segments)), rng.choice([".", "..", ""]))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    params = []
    for _ in range(rng.randint(0, 5)):
        key = rng.choice(["tagKeys", "Marker", "a", "A", "b~", rand_text(rng)])
        params.append((key, rand_text(rng, lo=0)))
    method = rng.choice(["GET", "POST", "PUT", "DELETE"]) if not presigned else "GET"
    body = b"" if presigned or rng.random() < 0.3 else rand_text(rng, hi=200).encode("utf-8")
    request = AWSRequest(method=method, url=ENDPOINT + path, data=body, params=params)
    request.headers["Host"] = HOST
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["X-Custom", "x-amz-meta-thing", "Content-Type", "X-Spaced"])
        value = rng.choice(["a  b   c", "  padded  ", "plain", "tab\there", "x, y", "application/json"])
        request.headers[name] = value  # HTTPHeaders appends: repeated names are kept
    if presigned:
        expires = rng.randint(1, 7 * 86400)
        SigV4QueryAuth(creds, service, region, expires=expires).add_auth(request)
        skew = rng.randint(-299, expires)
    else:
        SigV4Auth(creds, service, region).add_auth(request)
        skew = rng.randint(-299, 299)
    prepared = request.prepare()
    headers = [(n, v) for n, v in request.headers.items()]
    now = int(when.replace(tzinfo=datetime.timezone.utc).timestamp()) + skew
    emit("presigned" if presigned else "header", "raw", method, prepared.url, headers, body, creds, region, now)


def random_mode(seed, count):
    rng = random.Random(seed)
    session = botocore.session.get_session()
    for _ in range(count):
        r = rng.random()
        if r < 0.6:
            client_case(rng, session)
        else:
            raw_case(rng, presigned=r > 0.85)


def rust_str(value):
    return "r#\"" + value + "\"#"


def vector(name, method, url, body=b"", headers=(), params=None, token=None, presign_expires=None):
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    freeze_clock(datetime.datetime(2024, 1, 1, 0, 0, 0))
    request = AWSRequest(method=method, url=url, data=body, params=params or {})
    request.headers["Host"] = HOST
    for n, v in headers:
        request.headers[n] = v
    if presign_expires is None:
        signer = SigV4Auth(creds, "lambda", "us-east-1")
    else:
        signer = SigV4QueryAuth(creds, "lambda", "us-east-1", expires=presign_expires)
    captured = []
    compute = signer.canonical_request

    def capture(req):
        captured.append(compute(req))
        return captured[-1]

    signer.canonical_request = capture
    signer.add_auth(request)
    canonical = captured[0]
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    print("    Vector {")
    print(f"        name: {rust_str(name)},")
    print(f"        method: {rust_str(method)},")
    print(f"        path: {rust_str(parts.path)},")
    print(f"        query: {rust_str(parts.query)},")
    print(f"        body: {rust_str(body.decode('utf-8'))},")
    print("        headers: &[")
    for n, v in request.headers.items():
        print(f"            ({rust_str(n)}, {rust_str(v)}),")
    print("        ],")
    print(f"        canonical_request: {rust_str(canonical)},")
    print("    },")


def vectors_mode():
    print(f"// botocore {botocore.__version__}")
    vector("get_with_query", "GET", ENDPOINT + "/2015-03-31/functions/", params=[("MaxItems", "10"), ("Marker", "a b/c+d")])
    vector(
        "post_json",
        "POST",
        ENDPOINT + "/2015-03-31/functions/my-fn/invocations",
        body=b'{"hello": "world", "n": [1, 2, 3]}',
        headers=[("Content-Type", "application/json"), ("X-Amz-Invocation-Type", "RequestResponse")],
    )
    vector("path_with_colon", "GET", ENDPOINT + "/2015-03-31/functions/my-fn%3Aprod/configuration")
    vector(
        "repeated_query_keys",
        "DELETE",
        ENDPOINT + "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn",
        params=[("tagKeys", "b"), ("tagKeys", "a"), ("tagKeys", "a b")],
    )
    vector("empty_body", "GET", ENDPOINT + "/2015-03-31/functions/my-fn/policy")
    vector(
        "session_token_and_spaces",
        "PUT",
        ENDPOINT + "/2015-03-31/functions/my-fn/concurrency",
        body=b'{"ReservedConcurrentExecutions": 5}',
        headers=[("X-Spaced", "  a   b  c "), ("X-Spaced", "second")],
        token="FQoGZXIvYXdzEXAMPLETOKEN+/=",
    )
    vector(
        "date_header",
        "GET",
        ENDPOINT + "/2015-03-31/functions/my-fn/versions",
        headers=[("Date", "placeholder: botocore rewrites it")],
    )
    vector("presigned", "GET", ENDPOINT + "/2015-03-31/functions/my-fn%3A1", params=[("Qualifier", "1")], presign_expires=900)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "vectors":
        vectors_mode()
    elif len(sys.argv) == 4 and sys.argv[1] == "random":
        random_mode(int(sys.argv[2]), int(sys.argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
