"""A web page the operator's browser shows must not drive a local-mode Kindling.

Locally Kindling takes unsigned requests from anyone who reaches the loopback, and a browser is
such a client on behalf of every site it shows: `fetch(url, {method: "POST", mode: "no-cors"})`
is sent without a CORS preflight, so any page could create a function and invoke it (running
its code as Kindling's user: `uid=0(root)` in the reproduction), and an `<img src>` could send a
query-protocol GET. Requests carrying the headers browsers add for another site (`Origin`,
`Sec-Fetch-Site`) are refused, and so is every request addressed to a name that is not
`localhost`, `*.localhost`, an IP address or `--allowed-host` (DNS rebinding: a page whose name
resolves to 127.0.0.1 sends same-origin requests without any of those headers). A signature in
the query proves nothing where signatures are not checked. The CLI, SDKs, curl and the console
(same origin, at 127.0.0.1) are not affected.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import zipfile
from urllib.parse import urlsplit

from kindling_e2e import wait_active


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "import os\ndef handler(e, c):\n    return os.popen('id').read()\n")
    return buf.getvalue()


def _send(server, method: str, path: str, body: bytes = b"", headers: dict | None = None,
          raw: bool = False):
    """`raw`: exactly the headers given (no Host unless given, no Accept-Encoding)."""
    host, port = server.url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if raw:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        body = res.read()
        # The refusal's code: in the body (query, JSON 1.1) or x-amzn-ErrorType (REST).
        return res.status, body + (res.getheader("x-amzn-ErrorType") or "").encode()
    finally:
        conn.close()


CROSS_SITE = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example",
              "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}


def _create(name: str = "browser-forged") -> bytes:
    return json.dumps({
        "FunctionName": name, "Runtime": "python3.12", "Handler": "index.handler",
        "Role": "arn:aws:iam::000000000000:role/r",
        "Code": {"ZipFile": base64.b64encode(_zip()).decode()},
    }).encode()


def test_pages_of_other_sites_cannot_create_or_invoke_functions(server, lam):
    create = _create()
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


def test_a_signature_in_the_query_is_no_signature(server, lam):
    """Locally no signature is checked, so a page can write `X-Amz-Signature` into any URL."""
    for query in ["X-Amz-Signature=1", "X-Amz-Credential=a&X-Amz-Signature=1",
                  "AWSAccessKeyId=a&Signature=x"]:
        status, body = _send(server, "POST", f"/2015-03-31/functions?{query}",
                             _create("browser-query-signed"), CROSS_SITE)
        assert status == 403 and b"AccessDeniedException" in body, (query, status, body)
        # <img src="/?Action=DeleteQueue&...&Signature=x">
        status, body = _send(server, "GET", f"/?Action=ListQueues&Version=2012-11-05&{query}",
                             headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
        assert status == 403 and b"<Code>AccessDeniedException</Code>" in body, (query, body)
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "browser-query-signed" not in names
    # A page's fetch() with an Authorization header needs a CORS preflight: refused, and it
    # grants nothing.
    host, port = server.url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("OPTIONS", "/2015-03-31/functions", headers={
            "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "cors", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        res = conn.getresponse()
        res.read()
        assert res.status == 403, res.status
        assert res.getheader("Access-Control-Allow-Origin") is None
    finally:
        conn.close()


def test_rebound_names_are_refused_without_browser_headers(server, lam):
    """A DNS-rebound page is same-origin: its GETs carry no Origin, and browsers send
    Sec-Fetch-* only to secure origins (http://rebind.evil.example:9001 is not one). Its Host
    is all that tells it apart, and it may add any header it likes, Authorization included."""
    port = server.url.rsplit(":", 1)[1]
    rebound = {"Host": f"rebind.evil.example:{port}", "Accept": "*/*"}
    for method, path, extra in [
        ("GET", "/2015-03-31/functions/", {}),
        ("GET", "/2015-03-31/functions/any/configuration", {}),
        ("GET", "/?Action=ReceiveMessage&QueueUrl=q&Version=2012-11-05", {}),
        ("GET", "/some-bucket/secret.txt", {}),
        ("GET", "/_kindling/console/", {}),
        ("POST", "/2015-03-31/functions",
         {"Content-Type": "application/json", "Authorization": "AWS4-HMAC-SHA256 Credential=x"}),
    ]:
        body = _create("browser-rebound") if method == "POST" else b""
        status, answer = _send(server, method, path, body, {**rebound, **extra}, raw=True)
        assert status == 403 and b"AccessDeniedException" in answer, (path, status, answer)
    assert "browser-rebound" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    # The loopback's names, any case, a trailing dot; and no Host at all (HTTP/1.0 clients).
    for headers in [{"Host": f"127.0.0.1:{port}"}, {"Host": f"LocalHost.:{port}"},
                    {"Host": f"[::1]:{port}"}, {}]:
        status, answer = _send(server, "GET", "/2015-03-31/functions/", headers=headers, raw=True)
        assert status == 200, (headers, status, answer)


def test_allowed_host_admits_its_name(server_factory):
    srv = server_factory("--allowed-host", "kindling", "--allowed-host", "*.dev.test",
                         "--s3-virtual-host", "objects.test")
    port = srv.url.rsplit(":", 1)[1]
    # Names buckets are addressed under are allowed too: the bucket is looked for.
    status, answer = _send(srv, "GET", "/key", headers={"Host": f"no-such.objects.test:{port}"},
                           raw=True)
    assert status == 404 and b"NoSuchBucket" in answer, (status, answer)
    for host in [f"kindling:{port}", "KINDLING", f"api.dev.test:{port}"]:
        status, answer = _send(srv, "GET", "/2015-03-31/functions/", headers={"Host": host},
                               raw=True)
        assert status == 200, (host, status, answer)
    for host in [f"rebind.evil.example:{port}", f"dev.test:{port}", "kindling.evil.example"]:
        status, answer = _send(srv, "GET", "/2015-03-31/functions/", headers={"Host": host},
                               raw=True)
        assert status == 403 and b"--allowed-host" in answer, (host, status, answer)


def test_aws_iam_function_urls_are_not_for_other_sites_pages(server, lam):
    """An `AuthType: AWS_IAM` URL asks for a signature that local mode does not check: a page
    of another site must not call it (a NONE URL stays public, as on AWS). Unlike the rest of
    the API a function URL answers preflights as its CORS configuration says, so even an
    `Authorization` header from another site's page proves nothing."""
    code = _zip_with("def handler(e, c):\n    return {'statusCode': 200, 'body': 'ran'}\n")
    urls = {}
    for auth in ["AWS_IAM", "NONE"]:
        name = f"browser-url-{auth.lower().replace('_', '-')}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Handler="index.handler",
                            Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": code})
        wait_active(lam, name)
        url = lam.create_function_url_config(
            FunctionName=name, AuthType=auth,
            Cors={"AllowOrigins": ["*"], "AllowHeaders": ["authorization", "content-type"],
                  "AllowMethods": ["*"]})["FunctionUrl"]
        if auth == "NONE":
            lam.add_permission(FunctionName=name, StatementId="public",
                               Action="lambda:InvokeFunctionUrl", Principal="*",
                               FunctionUrlAuthType="NONE")
        # The DNS-free path form: `/lambda-url/<id>/`.
        parts = urlsplit(url)
        urls[auth] = (parts.path if parts.path.startswith("/lambda-url/")
                      else f"/lambda-url/{parts.hostname.split('.')[0]}/")
    iam, public = urls["AWS_IAM"], urls["NONE"]
    port = server.url.rsplit(":", 1)[1]
    # The CLI, SDKs, curl (no browser headers), and pages this machine serves.
    for headers in [{}, {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}]:
        status, body = _send(server, "POST", iam, b"{}", headers)
        assert status == 200 and body.startswith(b"ran"), (headers, status, body)
    for headers in [CROSS_SITE, {"Origin": "https://evil.example"}, {"Origin": "null"},
                    {**CROSS_SITE, "Authorization": "AWS4-HMAC-SHA256 Credential=x"},
                    {"Host": f"rebind.evil.example:{port}"}]:
        for method in ["POST", "GET"]:
            status, body = _send(server, method, iam, b"{}" if method == "POST" else b"",
                                 headers)
            assert status == 403 and b"Forbidden" in body, (method, headers, status, body)
        # A public URL is any page's to call (CORS decides what the page may read).
        status, body = _send(server, "POST", public, b"{}", headers)
        assert status == 200 and body.startswith(b"ran"), (headers, status, body)


def _zip_with(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", source)
    return buf.getvalue()
