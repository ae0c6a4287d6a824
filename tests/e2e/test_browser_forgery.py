"""A web page the operator's browser shows must not drive a local-mode Kindling.

Locally Kindling takes unsigned requests from anyone who reaches the loopback, and a browser is
such a client on behalf of every site it shows: `fetch(url, {method: "POST", mode: "no-cors"})`
is sent without a CORS preflight, so any page could create a function and invoke it (running
its code as Kindling's user: `uid=0(root)` in the reproduction), and an `<img src>` could send a
query-protocol GET. Requests carrying the headers browsers add for another site (`Origin`,
`Sec-Fetch-Site`), or a DNS-rebound name, are refused; the CLI, SDKs, curl and the console
(same origin) are not affected.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import zipfile


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "import os\ndef handler(e, c):\n    return os.popen('id').read()\n")
    return buf.getvalue()


def _send(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    host, port = server.url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        body = res.read()
        # The refusal's code: in the body (query, JSON 1.1) or x-amzn-ErrorType (REST).
        return res.status, body + (res.getheader("x-amzn-ErrorType") or "").encode()
    finally:
        conn.close()


CROSS_SITE = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example",
              "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}


def test_pages_of_other_sites_cannot_create_or_invoke_functions(server, lam):
    create = json.dumps({
        "FunctionName": "browser-forged", "Runtime": "python3.12", "Handler": "index.handler",
        "Role": "arn:aws:iam::000000000000:role/r",
        "Code": {"ZipFile": base64.b64encode(_zip()).decode()},
    }).encode()
    for headers in [CROSS_SITE, {"Content-Type": "text/plain", "Origin": "null"},
                    {"Content-Type": "text/plain", "Origin": "https://evil.example"}]:
        status, body = _send(server, "POST", "/2015-03-31/functions", create, headers)
        assert status == 403 and b"AccessDeniedException" in body, (headers, status, body)
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "browser-forged" not in names
    status, body = _send(server, "POST", "/2015-03-31/functions/any/invocations", b"{}", CROSS_SITE)
    assert status == 403, body
    # <img src="http://127.0.0.1:9001/?Action=DeleteQueue&...">
    status, body = _send(server, "GET", "/?Action=ListQueues&Version=2012-11-05",
                         headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert status == 403 and b"<Code>AccessDeniedException</Code>" in body, body
    # DNS rebinding: the page's own name resolved to 127.0.0.1, its requests same-origin.
    status, body = _send(server, "POST", "/2015-03-31/functions", create, {
        "Host": "rebind.evil.example:9001", "Origin": "http://rebind.evil.example:9001",
        "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"})
    assert status == 403, body


def test_clients_and_the_console_are_not_affected(server, lam):
    hostport = server.url.split("://")[1]
    status, _ = _send(server, "GET", "/2015-03-31/functions/")
    assert status == 200
    status, _ = _send(server, "GET", "/2015-03-31/functions/", headers={
        "Origin": f"http://{hostport}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200
    # A link to the console from another site opens it.
    status, body = _send(server, "GET", "/_kindling/console/", headers={
        "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert status == 200 and b"<title>Kindling console</title>" in body
