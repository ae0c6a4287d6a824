"""APIs live in the store: after a restart on the same data dir, both API kinds are still
listed and served as deployed."""

from __future__ import annotations

import json

import boto3
from botocore.config import Config

import agsupport as s
import support


def clients(url: str):
    cfg = Config(retries={"max_attempts": 1}, read_timeout=120)
    return (boto3.client(n, endpoint_url=url, config=cfg)
            for n in ("lambda", "apigatewayv2", "apigateway"))


def test_apis_survive_a_restart(server_factory, tmp_path):
    data = tmp_path / "data"
    srv = server_factory(data_dir=data)
    lam, v2, v1 = clients(srv.url)
    name = s.python_function(lam, s.ECHO)
    s.allow_apigateway(lam, name)
    http_api = v2.create_api(Name="durable", ProtocolType="HTTP", Target=s.function_arn(name))
    uri = (f"arn:aws:apigateway:{s.REGION}:lambda:path/2015-03-31/functions/"
           f"{s.function_arn(name)}/invocations")
    doc = {"openapi": "3.0.1", "info": {"title": "durable-rest"}, "paths": {"/r": {"get": {
        "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri}}}}}
    rest = v1.import_rest_api(body=json.dumps(doc).encode())
    v1.create_deployment(restApiId=rest["id"], stageName="live")
    support.stop_cleanly(srv)

    again = server_factory(data_dir=data)
    lam, v2, v1 = clients(again.url)
    assert v2.get_api(ApiId=http_api["ApiId"])["Name"] == "durable"
    assert [st["StageName"] for st in v2.get_stages(ApiId=http_api["ApiId"])["Items"]] == ["$default"]
    r = s.get(f"{again.url}/execute-api/{http_api['ApiId']}/after")
    assert r.status_code == 200 and r.json()["rawPath"] == "/after"
    assert v1.get_rest_api(restApiId=rest["id"])["name"] == "durable-rest"
    r = s.get(f"{again.url}/restapis/{rest['id']}/live/_user_request_/r")
    assert r.status_code == 200 and r.json()["resource"] == "/r"
    support.stop_cleanly(again)
