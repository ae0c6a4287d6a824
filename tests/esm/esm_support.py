"""Helpers of the event source mapping suite: boto3 clients, the HTTP sink functions report
to, function packages (plain, with Powertools, with boto3), queues and mappings."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import harness
import support

RESPONSES = harness.ResponseLog()


def client(service: str, *, validate: bool = True):
    return RESPONSES.client(service, validate=validate, read_timeout=60)


def clients_for(url: str):
    """(sqs, lambda) clients of another server, configured through AWS_ENDPOINT_URL."""
    old = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        return client("sqs"), client("lambda")
    finally:
        if old is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = old


def unique(prefix: str = "esm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


wait_for = support.wait_for


class Sink:
    """An HTTP server functions POST their reports to: `POST /<key>` with a JSON body."""

    def __init__(self):
        self.reports: dict[str, list] = defaultdict(list)
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"null")
                with sink.lock:
                    sink.reports[self.path.strip("/")].append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "Sink":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()

    def get(self, key: str) -> list:
        with self.lock:
            return list(self.reports.get(key, []))


# A function that reports every batch to the sink and fails the messages whose body contains
# "poison": by raising (MODE=raise) or in a partial batch response (MODE=partial).
REPORTER = r'''
import json, os, time, urllib.request

def _post(payload):
    req = urllib.request.Request(os.environ["SINK"], data=json.dumps(payload).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()

def handler(event, context):
    started = time.time()
    time.sleep(float(os.environ.get("SLEEP", "0")))
    recs = event["Records"]
    failed = [r["messageId"] for r in recs if "poison" in r["body"]]
    _post({"ids": [r["messageId"] for r in recs], "bodies": [r["body"] for r in recs],
           "failed": failed, "arn": context.invoked_function_arn,
           "event": event if os.environ.get("FULL") else None,
           "trace": os.environ.get("_X_AMZN_TRACE_ID"),
           "start": started, "end": time.time()})
    if failed and os.environ.get("MODE") == "raise":
        raise RuntimeError("poison in batch")
    if os.environ.get("MODE") == "partial":
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    return {}
'''


def reporter_zip() -> bytes:
    return support.make_zip({"lambda_function.py": REPORTER})


def _package_files(modules: list[str], keep_botocore_data: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Pure-Python packages from this environment, as files for a function's zip."""
    files: dict[str, bytes] = {}
    for module in modules:
        mod = importlib.import_module(module)
        path = Path(mod.__file__)
        if path.name != "__init__.py":
            files[path.name] = path.read_bytes()
            continue
        root = path.parent
        for f in root.rglob("*"):
            rel = f.relative_to(root.parent)
            parts = rel.parts
            if not f.is_file() or "__pycache__" in parts:
                continue
            if (parts[:2] == ("botocore", "data") and len(parts) > 3
                    and parts[2] not in keep_botocore_data):
                continue
            files[str(rel)] = f.read_bytes()
    return files


def powertools_files() -> dict[str, bytes]:
    """aws-lambda-powertools (installed in the test environment from PyPI) and its
    dependencies, as Lambda users ship it in their zip (`pip install --target`)."""
    return _package_files(["aws_lambda_powertools", "typing_extensions", "jmespath"])


def boto3_files() -> dict[str, bytes]:
    """boto3 and botocore (data: SQS's and SNS's models and the endpoint files only)."""
    return _package_files(["boto3", "botocore", "jmespath", "dateutil", "urllib3",
                           "s3transfer", "six"], keep_botocore_data=("sqs", "sns"))


def make_queue(sqs, name: str | None = None, **attrs) -> tuple[str, str]:
    name = name or unique("q")
    attributes = {k: str(v) for k, v in attrs.items()}
    if name.endswith(".fifo"):
        attributes.setdefault("FifoQueue", "true")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def redrive(sqs, url: str, dlq_arn: str, max_receive: int):
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})})


def make_function(lam, sink: Sink, *, name: str | None = None, zip_bytes: bytes | None = None,
                  env: dict | None = None, timeout: int = 3, **kwargs) -> str:
    name = name or unique("fn")
    variables = {"SINK": f"{sink.url}/{name}", **(env or {})}
    support.create_function(lam, name, zip_bytes=zip_bytes or reporter_zip(), Timeout=timeout,
                            Environment={"Variables": variables}, **kwargs)
    return name


def wait_state(lam, uuid_: str, state: str, timeout: float = 20) -> dict:
    holder = {}

    def check():
        holder["m"] = lam.get_event_source_mapping(UUID=uuid_)
        return holder["m"]["State"] == state

    wait_for(check, timeout=timeout, what=f"mapping {uuid_} to be {state}")
    return holder["m"]


def map_queue(lam, function: str, queue_arn: str, **kwargs) -> str:
    m = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue_arn, **kwargs)
    wait_state(lam, m["UUID"], "Enabled" if kwargs.get("Enabled", True) else "Disabled")
    return m["UUID"]


def send_many(sqs, url: str, bodies: list[str], **entry_extra) -> list[str]:
    ids = []
    for i in range(0, len(bodies), 10):
        chunk = bodies[i:i + 10]
        entries = [{"Id": str(j), "MessageBody": b, **entry_extra} for j, b in enumerate(chunk)]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed"), resp
        ids.extend(e["MessageId"] for e in sorted(resp["Successful"], key=lambda e: int(e["Id"])))
    return ids


def processed_ids(sink: Sink, function: str) -> list[str]:
    """Ids of messages the function handled without failing them."""
    out = []
    for r in sink.get(function):
        failed = set(r["failed"])
        out.extend(i for i in r["ids"] if i not in failed)
    return out


def queue_counts(sqs, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs, url: str, timeout: float = 30) -> list[dict]:
    """Every message currently in a queue (received, not deleted)."""
    out: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=600, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for m in got:
            out[m["MessageId"]] = m
    return list(out.values())
