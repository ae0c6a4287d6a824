"""Powertools for AWS Lambda (Python) apps behind both API kinds, driven over HTTP with
`requests`: an `APIGatewayHttpResolver` app behind an HTTP API, and an `APIGatewayRestResolver`
app behind a REST API imported from a Swagger 2 YAML document."""

from __future__ import annotations

import pytest

import agsupport as s
from agsupport import apigw, apigw_raw, apigwv2, apigwv2_raw  # noqa: F401  (fixtures)

APP = """
import base64, json
from aws_lambda_powertools.event_handler import {resolver}, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.shared.cookies import Cookie

app = {resolver}()

@app.get("/items/<item_id>")
def get_item(item_id):
    ev = app.current_event
    return {{"id": item_id, "q": ev.get_query_string_value("q", ""),
            "tags": ev.get_multi_value_query_string_values("tag") if hasattr(ev, "get_multi_value_query_string_values") else None,
            "cookies": list(ev.cookies) if hasattr(ev, "cookies") and ev.cookies else ev.get_header_value("cookie")}}

@app.post("/items")
def post_item():
    return Response(status_code=201, content_type="application/json",
                    body=json.dumps({{"created": app.current_event.json_body}}))

@app.post("/binary")
def binary():
    ev = app.current_event
    raw = base64.b64decode(ev.body) if ev.is_base64_encoded else ev.body.encode()
    return Response(status_code=200, content_type="application/octet-stream",
                    body=bytes(reversed(raw)))

@app.get("/cookie")
def cookie():
    return Response(status_code=200, content_type="text/plain", body="set",
                    cookies=[Cookie(name="session", value="abc123"), Cookie(name="theme", value="dark")])

@app.get("/missing")
def missing():
    raise NotFoundError("no such item")

@app.get("/bad")
def bad():
    raise BadRequestError("bad input")

@app.get("/boom")
def boom():
    raise ValueError("unhandled")

def handler(event, context):
    return app.resolve(event, context)
"""

BINARY = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def vendored(tmp_path_factory):
    return s.vendor(s.POWERTOOLS, tmp_path_factory.mktemp("powertools"))


def powertools_function(lam, vendored, resolver: str) -> str:
    zip_bytes = s.zip_with({"app.py": APP.format(resolver=resolver)}, vendored)
    name = s.python_function(lam, "", zip_bytes=zip_bytes, Timeout=30, MemorySize=256)
    s.allow_apigateway(lam, name)
    return name


def check_app(base: str, *, http_api: bool) -> None:
    r = s.get(f"{base}/items/42?q=hello%20world&tag=a&tag=b",
              headers={"Cookie": "session=s1; theme=light"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "42" and body["q"] == "hello world"
    if http_api:
        assert body["cookies"] == ["session=s1", "theme=light"]
    else:
        assert body["tags"] == ["a", "b"]
        assert body["cookies"] == "session=s1; theme=light"
    r = s.get(f"{base}/items", method="POST", json={"name": "widget"})
    assert (r.status_code, r.json()) == (201, {"created": {"name": "widget"}})
    r = s.get(f"{base}/binary", method="POST", data=BINARY,
              headers={"Content-Type": "application/octet-stream",
                       "Accept": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.content == bytes(reversed(BINARY))
    r = s.get(f"{base}/cookie")
    assert r.status_code == 200 and r.text == "set"
    assert r.cookies.get("session") == "abc123" and r.cookies.get("theme") == "dark"
    r = s.get(f"{base}/missing")
    assert r.status_code == 404 and r.json()["message"] == "no such item"
    r = s.get(f"{base}/bad")
    assert r.status_code == 400 and r.json()["message"] == "bad input"
    # Powertools' own 404 for a path it has no route for.
    r = s.get(f"{base}/nowhere")
    assert r.status_code == 404


def test_http_resolver_behind_http_api(apigwv2, lam, vendored):
    name = powertools_function(lam, vendored, "APIGatewayHttpResolver")
    api = apigwv2.create_api(Name=s.unique("pt-http"), ProtocolType="HTTP",
                             Target=s.function_arn(name),
                             CorsConfiguration={"AllowOrigins": ["*"], "AllowMethods": ["*"]})
    base = api["ApiEndpoint"]
    check_app(base, http_api=True)
    # An exception the app does not map is a function error: API Gateway's 500.
    r = s.get(f"{base}/boom")
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    r = s.get(f"{base}/items/1", headers={"Origin": "https://x.example"})
    assert r.headers["access-control-allow-origin"] == "*"


SWAGGER = """swagger: "2.0"
info:
  title: {title}
  version: "1.0"
x-amazon-apigateway-binary-media-types:
  - application/octet-stream
paths:
  /{{proxy+}}:
    x-amazon-apigateway-any-method:
      parameters:
        - name: proxy
          in: path
          required: true
          type: string
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        passthroughBehavior: when_no_match
        uri: arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations
"""


def test_rest_resolver_behind_imported_rest_api(apigw, lam, vendored, endpoint, server):
    name = powertools_function(lam, vendored, "APIGatewayRestResolver")
    doc = SWAGGER.format(title=s.unique("pt-rest"), region=s.REGION, arn=s.function_arn(name))
    api = apigw.import_rest_api(body=doc.encode())
    assert api["binaryMediaTypes"] == ["application/octet-stream"]
    resources = apigw.get_resources(restApiId=api["id"], embed=["methods"])["items"]
    paths = {r["path"]: r for r in resources}
    assert set(paths) == {"/", "/{proxy+}"}
    integ = paths["/{proxy+}"]["resourceMethods"]["ANY"]["methodIntegration"]
    assert integ["type"] == "AWS_PROXY" and integ["timeoutInMillis"] == 29000
    apigw.create_deployment(restApiId=api["id"], stageName="dev")
    base = f"{endpoint}/restapis/{api['id']}/dev/_user_request_"
    check_app(base, http_api=False)
    r = s.get(f"{base}/boom")
    assert (r.status_code, r.json()) == (502, {"message": "Internal server error"})
    # The host form, stage first.
    host = f"{api['id']}.execute-api.localhost:{server.port}"
    r = s.get(f"{server.url}/dev/items/7", headers={"Host": host})
    assert r.status_code == 200 and r.json()["id"] == "7"
    # The root has no method: API Gateway's 403.
    r = s.get(f"{base}/")
    assert (r.status_code, r.json()) == (403, {"message": "Missing Authentication Token"})
    # An unknown stage.
    assert s.get(f"{endpoint}/restapis/{api['id']}/nope/_user_request_/items/1").status_code == 403
