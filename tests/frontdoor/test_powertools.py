"""A Powertools for AWS Lambda (Python) `LambdaFunctionUrlResolver` app behind a function URL,
driven over HTTP with `requests`: routes with path parameters, query strings, JSON and binary
bodies, cookies both ways, CORS, and exceptions mapped to 4xx/5xx."""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests

from fdsupport import create_python_function, powertools_zip, public_url

APP = r'''
import base64, hashlib, json

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.shared.cookies import Cookie

app = LambdaFunctionUrlResolver()
ITEMS = {"1": {"id": "1", "name": "first"}}


@app.get("/items/<item_id>")
def get_item(item_id: str):
    if item_id not in ITEMS:
        raise NotFoundError(f"no item {item_id}")
    return ITEMS[item_id]


@app.get("/search")
def search():
    q = app.current_event.get_query_string_value(name="q", default_value="")
    tags = app.current_event.query_string_parameters.get("tag", "")
    return {"q": q, "tags": tags.split(",") if tags else []}


@app.post("/items")
def create_item():
    item = app.current_event.json_body
    if not isinstance(item, dict) or "name" not in item:
        raise BadRequestError("name is required")
    ITEMS[str(len(ITEMS) + 1)] = item
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"created": item}),
                    cookies=[Cookie(name="last", value=item["name"], path="/")])


@app.post("/upload")
def upload():
    raw = app.current_event.body or ""
    data = base64.b64decode(raw) if app.current_event.is_base64_encoded else raw.encode()
    return Response(status_code=200, content_type="application/octet-stream",
                    body=hashlib.sha256(data).digest() + data[::-1],
                    headers={"x-was-base64": str(app.current_event.is_base64_encoded).lower()})


@app.get("/whoami")
def whoami():
    return {"cookies": app.current_event.cookies, "path": app.current_event.path,
            "ip": app.current_event.request_context.http.source_ip}


@app.get("/invalid")
def invalid():
    raise ValueError("bad value")


@app.get("/crash")
def crash():
    raise RuntimeError("unhandled")


@app.exception_handler(ValueError)
def on_value_error(e: ValueError):
    return Response(status_code=422, content_type=content_types.TEXT_PLAIN, body=f"invalid: {e}")


def handler(event, context):
    return app.resolve(event, context)
'''


@pytest.fixture(scope="module")
def url(lam, tmp_path_factory):
    zip_bytes = powertools_zip(APP, tmp_path_factory.mktemp("powertools"))
    fn = create_python_function(lam, zip_bytes=zip_bytes, Timeout=30, MemorySize=256)
    return public_url(lam, fn, Cors={"AllowOrigins": ["https://web.example"],
                                     "AllowMethods": ["GET", "POST"],
                                     "AllowHeaders": ["content-type"], "AllowCredentials": True})


def test_path_parameters_and_not_found(url):
    r = requests.get(url + "items/1", timeout=120)
    assert r.status_code == 200 and r.json() == {"id": "1", "name": "first"}
    r = requests.get(url + "items/999", timeout=60)
    assert r.status_code == 404
    assert r.json() == {"statusCode": 404, "message": "no item 999"}
    r = requests.get(url + "no/such/route", timeout=60)
    assert r.status_code == 404


def test_query_strings(url):
    r = requests.get(url + "search", params=[("q", "lambda urls"), ("tag", "a"), ("tag", "b")],
                     timeout=60)
    assert r.status_code == 200
    assert r.json() == {"q": "lambda urls", "tags": ["a", "b"]}


def test_json_bodies_cookies_and_bad_requests(url):
    r = requests.post(url + "items", json={"name": "second"}, timeout=60)
    assert r.status_code == 201 and r.json() == {"created": {"name": "second"}}
    assert r.cookies.get("last") == "second"
    r = requests.post(url + "items", json={"nope": 1}, timeout=60)
    assert r.status_code == 400
    assert r.json() == {"statusCode": 400, "message": "name is required"}
    # Cookies sent by the client reach the app through the event's `cookies`.
    r = requests.get(url + "whoami", cookies={"session": "s1", "theme": "dark"}, timeout=60)
    assert r.status_code == 200
    got = r.json()
    assert sorted(got["cookies"]) == ["session=s1", "theme=dark"]
    assert got["path"] == "/whoami" and got["ip"] == "127.0.0.1"


def test_binary_bodies(url):
    blob = bytes(range(256)) * 64 + b"\xff\x00end"
    r = requests.post(url + "upload", data=blob,
                      headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-was-base64"] == "true"
    assert r.content == hashlib.sha256(blob).digest() + blob[::-1]
    r = requests.post(url + "upload", data="héllo".encode(), headers={"Content-Type": "text/plain"},
                      timeout=60)
    assert r.headers["x-was-base64"] == "false"
    assert r.content[32:] == "héllo".encode()[::-1]
    assert base64.b64encode(r.content)  # bytes came back as bytes, not base64 text


def test_exceptions_map_to_4xx_and_5xx(url):
    r = requests.get(url + "invalid", timeout=60)
    assert r.status_code == 422 and r.text == "invalid: bad value"
    r = requests.get(url + "crash", timeout=60)
    assert r.status_code == 502 and r.text == "Internal Server Error"


def test_cors(url):
    pre = requests.options(url + "items", timeout=60, headers={
        "Origin": "https://web.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://web.example"
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert "POST" in pre.headers["access-control-allow-methods"]
    r = requests.get(url + "items/1", headers={"Origin": "https://web.example"}, timeout=60)
    assert r.headers["access-control-allow-origin"] == "https://web.example"
    assert r.headers["access-control-allow-credentials"] == "true"
