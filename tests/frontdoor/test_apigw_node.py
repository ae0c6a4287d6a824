"""A Node app on the `serverless-http` adapter (npm) behind an HTTP API: the adapter turns the
payload 2.0 event into a Node request and the Node response back into a proxy result."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import agsupport as s
import support
from agsupport import apigwv2  # noqa: F401  (fixture)

APP = r"""
const serverless = require('serverless-http');

function app(req, res) {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    if (req.url.startsWith('/fail')) {
      res.statusCode = 418;
      res.setHeader('content-type', 'text/plain');
      res.end('teapot');
      return;
    }
    res.statusCode = 200;
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ method: req.method, url: req.url, body,
                             agent: req.headers['user-agent'] || null }));
  });
}

module.exports.handler = serverless(app);
"""


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory):
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required (Node 18+) for the serverless-http test")
    work = tmp_path_factory.mktemp("node")
    subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(work),
                    "serverless-http@3"], check=True, timeout=600, capture_output=True)
    return work / "node_modules"


def test_serverless_http_behind_http_api(apigwv2, lam, node_modules):
    files: dict[str, str | bytes] = {"index.js": APP}
    for path in sorted(node_modules.rglob("*")):
        if path.is_file():
            files["node_modules/" + path.relative_to(node_modules).as_posix()] = path.read_bytes()
    name = s.unique("node")
    support.create_function(lam, name, zip_bytes=s.zip_with(files), Runtime="nodejs20.x",
                            Handler="index.handler", Timeout=15)
    s.allow_apigateway(lam, name)
    api = apigwv2.create_api(Name=s.unique("node-api"), ProtocolType="HTTP",
                             Target=s.function_arn(name))
    base = api["ApiEndpoint"]
    r = s.get(f"{base}/hello/world?x=1&y=two", headers={"User-Agent": "kindling-test"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "GET"
    assert body["url"] == "/hello/world?x=1&y=two"
    assert body["agent"] == "kindling-test"
    assert r.cookies.get("a") == "1" and r.cookies.get("b") == "2"
    r = s.get(f"{base}/post", method="POST", json={"k": [1, 2]})
    assert r.status_code == 200 and r.json()["body"] == '{"k": [1, 2]}'
    r = s.get(f"{base}/fail")
    assert (r.status_code, r.text) == (418, "teapot")
