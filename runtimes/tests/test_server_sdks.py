"""The AWS SDKs functions expect, pointed at Kindling: a Python function using boto3 and Node
functions using @aws-sdk/client-* (ES module and CommonJS) invoke another function and send to
an SQS queue with no endpoint or credentials in their code, in every isolation mode. The SDKs
come from `kindling runtimes install-sdks`; the function's own copy wins."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import server_support as s

# Installed once per machine (later runs find it there and download nothing).
SDK_DATA = s.REPO / "target" / "test-sdks"

PY_CALLER = '''
import json, os
import boto3

def handler(event, context):
    lam = boto3.client("lambda")
    out = lam.invoke(FunctionName=event["target"], Payload=json.dumps({"from": "python"}))
    sqs = boto3.client("sqs")
    sent = sqs.send_message(QueueUrl=event["queue"], MessageBody="hello from python")
    return {"invoked": json.loads(out["Payload"].read()), "status": out["StatusCode"],
            "message_id": sent["MessageId"], "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
            "boto3": boto3.__version__, "boto3_file": boto3.__file__}
'''

NODE_ESM_CALLER = '''
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";
import { SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";

export const handler = async (event) => {
  const lambda = new LambdaClient({});
  const out = await lambda.send(new InvokeCommand({
    FunctionName: event.target, Payload: JSON.stringify({ from: "node" }) }));
  const sqs = new SQSClient({});
  const sent = await sqs.send(new SendMessageCommand({
    QueueUrl: event.queue, MessageBody: "hello from node" }));
  return { invoked: JSON.parse(Buffer.from(out.Payload).toString()), status: out.StatusCode,
           message_id: sent.MessageId, endpoint: process.env.AWS_ENDPOINT_URL };
};
'''

NODE_CJS = '''
const { LambdaClient, ListFunctionsCommand } = require("@aws-sdk/client-lambda");
exports.handler = async () => ({ client: typeof LambdaClient, command: typeof ListFunctionsCommand });
'''

TARGET = "def handler(event, context):\n    return {'echo': event}\n"


def install_sdks() -> Path:
    """`kindling runtimes install-sdks` into SDK_DATA (downloads only the first time)."""
    proc = subprocess.run([str(s.binary()), "runtimes", "install-sdks", "--data-dir", str(SDK_DATA)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"install-sdks failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return SDK_DATA / "runtime" / "sdk"


@pytest.fixture(scope="module")
def sdk_dir():
    return install_sdks()


def test_install_sdks_again_is_offline_and_says_so(sdk_dir):
    proc = subprocess.run([str(s.binary()), "runtimes", "install-sdks", "--data-dir", str(SDK_DATA)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                                   npm_config_offline="true"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "boto3" in proc.stdout and "already installed" in proc.stdout, proc.stdout
    assert "nothing downloaded" in proc.stdout


def test_install_sdks_says_what_is_missing(tmp_path):
    proc = subprocess.run([str(s.binary()), "runtimes", "install-sdks", "--data-dir", str(tmp_path / "d"),
                           "--python", "/bin/false", "--npm", "/nonexistent/npm"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "has no pip" in proc.stderr and "npm not found" in proc.stderr, proc.stderr


def server_with_sdks(tmp_path_factory, sdk_dir: Path, *args: str):
    srv_dir = tmp_path_factory.mktemp("sdk-server")
    data = srv_dir / "data"
    shutil.copytree(sdk_dir, data / "runtime" / "sdk", symlinks=True)
    srv = s.k.KindlingServer(s.binary(), data, srv_dir / "kindling.log", ["--idle-timeout", "600", *args])
    return srv.start()


ISOLATIONS = ["namespaces", "namespaces-no-network", "process"] if os.geteuid() == 0 else ["process"]


@pytest.fixture(scope="module", params=ISOLATIONS)
def sdk_server(request, tmp_path_factory, sdk_dir):
    srv = server_with_sdks(tmp_path_factory, sdk_dir, "--isolation", request.param)
    yield srv, request.param
    running = srv.running
    srv.kill()
    assert running, srv.log_tail()


def receive_all(sqs, url: str, want: int) -> list[str]:
    got: list[str] = []

    def poll():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(m["Body"])
        return len(got) >= want

    s.wait_for(poll, timeout=30, what=f"{want} messages in {url}")
    return got


def test_functions_call_kindling_through_the_sdks(sdk_server):
    srv, isolation = sdk_server
    lam = s.client(srv.url)
    sqs = s.k.boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=s.k.REGION).client("sqs", endpoint_url=srv.url)
    queue = sqs.create_queue(QueueName=s.unique("sdkq"))["QueueUrl"]
    target = s.create(lam, "python3.12", "app.handler", s.zip_files({"app.py": TARGET}))
    event = {"target": target, "queue": queue}

    py = s.create(lam, "python3.12", "app.handler", s.zip_files({"app.py": PY_CALLER}))
    out = s.invoke(lam, py, event).ok()
    assert out["status"] == 200 and out["invoked"] == {"echo": {"from": "python"}}, out
    assert out["endpoint"].startswith("http://127.0.0.1:"), out
    assert "/sdk/python/boto3/" in out["boto3_file"], out

    node = s.create(lam, "nodejs20.x", "index.handler", s.zip_files({"index.mjs": NODE_ESM_CALLER}))
    out = s.invoke(lam, node, event).ok()
    assert out["status"] == 200 and out["invoked"] == {"echo": {"from": "node"}}, out

    cjs = s.create(lam, "nodejs20.x", "index.handler", s.zip_files({"index.js": NODE_CJS}))
    assert s.invoke(lam, cjs).ok() == {"client": "function", "command": "function"}

    assert sorted(receive_all(sqs, queue, 2)) == ["hello from node", "hello from python"], isolation


def test_the_functions_own_sdk_copy_wins(sdk_server):
    srv, _ = sdk_server
    lam = s.client(srv.url)
    own = {"app.py": "import boto3\ndef handler(e, c):\n    return [boto3.__version__, boto3.__file__]\n",
           "boto3/__init__.py": "__version__ = '0.0-own'\n"}
    name = s.create(lam, "python3.12", "app.handler", s.zip_files(own))
    version, path = s.invoke(lam, name).ok()
    assert version == "0.0-own", path
    node_own = {"index.mjs": 'import { v } from "@aws-sdk/client-lambda";\nexport const handler = async () => v;\n',
                "node_modules/@aws-sdk/client-lambda/package.json":
                    json.dumps({"name": "@aws-sdk/client-lambda", "type": "module", "exports": "./i.js"}),
                "node_modules/@aws-sdk/client-lambda/i.js": 'export const v = "own";\n'}
    name = s.create(lam, "nodejs20.x", "index.handler", s.zip_files(node_own))
    assert s.invoke(lam, name).ok() == "own"


def test_unsigned_calls_from_a_function_are_refused(sdk_server):
    """The endpoint is reachable, and requests from namespaced environments must carry the
    environment's own signature (SECURITY.md). Process mode cannot tell a function from the
    operator (SECURITY.md): there the unsigned call is served as the operator's."""
    srv, isolation = sdk_server
    lam = s.client(srv.url)
    code = '''
import os, urllib.request, urllib.error
def handler(e, c):
    url = os.environ["AWS_ENDPOINT_URL"] + "/2015-03-31/functions/"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return [r.status, r.read().decode()]
    except urllib.error.HTTPError as err:
        return [err.code, err.read().decode()]
'''
    name = s.create(lam, "python3.12", "app.handler", s.zip_files({"app.py": code}))
    status, body = s.invoke(lam, name).ok()
    if isolation == "process":
        assert status == 200 and '"Functions"' in body, (status, body)
        return
    assert status == 403 and ("Missing Authentication Token" in body or "AccessDenied" in body), (status, body)
