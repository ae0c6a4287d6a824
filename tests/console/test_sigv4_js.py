"""The console's SigV4 (assets/aws.js) signs exactly as botocore does — with WebCrypto and with
its JavaScript SHA-256 (used where WebCrypto is unavailable: plain http on a non-loopback host).
Runs the module in Node.js with browser globals stubbed and a fixed clock."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ASSETS = Path(__file__).resolve().parents[2] / "crates" / "console" / "assets"
KEY, SECRET, WHEN = "AKIDEXAMPLE", "secret/key+x", "20261206T080000Z"

HARNESS = r"""
const [src, withCrypto, cases] = [process.argv[2], process.argv[3] === '1', JSON.parse(process.argv[4])];
if (!withCrypto) Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
globalThis.location = { host: '127.0.0.1:9001' };
globalThis.sessionStorage = { getItem() { return null; }, setItem() {}, removeItem() {} };
const RealDate = Date;
globalThis.Date = class extends RealDate { constructor(...a) { super(...(a.length ? a : ['2026-12-06T08:00:00.000Z'])); } };
globalThis.fetch = async () => ({ json: async () => ({ region: 'us-east-1', signatureRequired: true }) });
const aws = await import(src);
await aws.init();
aws.setCredentials({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/key+x' });
const out = [];
for (const c of cases) {
  const h = { ...c.headers };
  await aws.signForTests(c.method, c.path, c.query, h, c.body, c.service);
  out.push(h.authorization);
}
console.log(JSON.stringify(out));
"""

CASES = [
    {"method": "POST", "path": "/", "query": {}, "service": "logs", "body": '{"logGroupIdentifiers":["a"]}',
     "headers": {"content-type": "application/x-amz-json-1.1", "x-amz-target": "Logs_20140328.StartLiveTail"}},
    {"method": "GET", "path": "/2015-03-31/functions/my-fn%3A1/aliases", "query": {"Marker": "a b/c", "limit": "5"},
     "service": "lambda", "body": None, "headers": {}},
    {"method": "POST", "path": "/", "query": {}, "service": "cloudformation", "body": "Action=DescribeStacks&Version=2010-05-15",
     "headers": {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}},
    {"method": "GET", "path": "/_kindling/api/invocations", "query": {"function": "ü-fn", "limit": "20"},
     "service": "lambda", "body": None, "headers": {}},
]


def botocore_signature(case) -> str:
    from urllib.parse import quote
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in case["query"].items())
    url = "http://127.0.0.1:9001" + case["path"] + ("?" + qs if qs else "")
    r = AWSRequest(method=case["method"], url=url, headers=dict(case["headers"]),
                   data=case["body"].encode() if case["body"] else None)
    r.headers["X-Amz-Date"] = WHEN
    r.context["timestamp"] = WHEN
    auth = SigV4Auth(Credentials(KEY, SECRET), case["service"], "us-east-1")
    canonical = auth.canonical_request(r)
    return auth.signature(auth.string_to_sign(r, canonical), r)


@pytest.mark.parametrize("with_crypto", [True, False], ids=["webcrypto", "javascript-sha256"])
def test_signatures_match_botocore(tmp_path, with_crypto):
    node = shutil.which("node")
    if not node:
        pytest.fail("the console suite needs Node.js to run aws.js outside the browser")
    src = tmp_path / "aws.mjs"
    src.write_text((ASSETS / "aws.js").read_text() + "\nexport const signForTests = sign;\n")
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS)
    out = subprocess.run([node, str(harness), str(src), "1" if with_crypto else "0", json.dumps(CASES)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    for case, auth in zip(CASES, got):
        assert auth.endswith("Signature=" + botocore_signature(case)), (case, auth)
