"""REST APIs (API Gateway v1): built call by call and imported from OpenAPI 3 / Swagger 2,
driven by boto3 and the aws CLI; invocations through `requests` (payload 1.0 events, binary
media types, gateway errors)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

import agsupport as s
from agsupport import apigw, apigw_raw, apigwv2, apigwv2_raw  # noqa: F401  (fixtures)


def uri(fn: str) -> str:
    return (f"arn:aws:apigateway:{s.REGION}:lambda:path/2015-03-31/functions/"
            f"{s.function_arn(fn)}/invocations")


@pytest.fixture(scope="module")
def echo_fn(lam):
    name = s.python_function(lam, s.ECHO, Timeout=10)
    s.allow_apigateway(lam, name)
    return name


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def test_built_call_by_call(apigw, echo_fn, endpoint):
    api = apigw.create_rest_api(name=s.unique("rest"), binaryMediaTypes=["image/png"])
    api_id, root = api["id"], api["rootResourceId"]
    assert apigw.get_rest_api(restApiId=api_id)["name"] == api["name"]
    pets = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="pets")
    assert pets["path"] == "/pets"
    pet = apigw.create_resource(restApiId=api_id, parentId=pets["id"], pathPart="{petId}")
    assert pet["path"] == "/pets/{petId}"
    for res, method in ((pets, "GET"), (pet, "GET"), (pet, "PUT")):
        apigw.put_method(restApiId=api_id, resourceId=res["id"], httpMethod=method,
                         authorizationType="NONE")
        apigw.put_integration(restApiId=api_id, resourceId=res["id"], httpMethod=method,
                              type="AWS_PROXY", integrationHttpMethod="POST", uri=uri(echo_fn))
    m = apigw.get_method(restApiId=api_id, resourceId=pet["id"], httpMethod="GET")
    assert m["methodIntegration"]["uri"] == uri(echo_fn)
    assert apigw.get_integration(restApiId=api_id, resourceId=pet["id"],
                                 httpMethod="PUT")["type"] == "AWS_PROXY"
    dep = apigw.create_deployment(restApiId=api_id, stageName="prod",
                                  variables={"flavour": "mint"})
    stage = apigw.get_stage(restApiId=api_id, stageName="prod")
    assert stage["deploymentId"] == dep["id"] and stage["variables"] == {"flavour": "mint"}
    assert [st["stageName"] for st in apigw.get_stages(restApiId=api_id)["item"]] == ["prod"]

    base = f"{endpoint}/restapis/{api_id}/prod/_user_request_"
    r = s.get(f"{base}/pets/7?a=1&a=2", headers={"X-Multi": "one"})
    assert r.status_code == 200, r.text
    e = r.json()
    assert "version" not in e
    assert e["resource"] == "/pets/{petId}"
    assert e["path"] == "/pets/7"
    assert e["httpMethod"] == "GET"
    assert e["pathParameters"] == {"petId": "7"}
    assert e["stageVariables"] == {"flavour": "mint"}
    assert e["queryStringParameters"] == {"a": "2"}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert e["requestContext"]["path"] == "/prod/pets/7"
    assert e["requestContext"]["stage"] == "prod"
    assert e["requestContext"]["resourcePath"] == "/pets/{petId}"
    assert e["body"] is None and e["isBase64Encoded"] is False
    # Binary media types decide base64.
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    r = s.get(f"{base}/pets/7", method="PUT", data=png, headers={"Content-Type": "image/png"})
    e = r.json()
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == png
    r = s.get(f"{base}/pets/7", method="PUT", data="text", headers={"Content-Type": "text/plain"})
    assert r.json()["body"] == "text" and r.json()["isBase64Encoded"] is False
    # Unknown paths and methods.
    for method, path in (("GET", "/nope"), ("DELETE", "/pets/7"), ("GET", "/")):
        r = s.get(base + path, method=method)
        assert (r.status_code, r.json()) == (403, {"message": "Missing Authentication Token"}), path
    # Changes are served only once deployed.
    toys = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="toys")
    apigw.put_method(restApiId=api_id, resourceId=toys["id"], httpMethod="ANY",
                     authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=toys["id"], httpMethod="ANY",
                          type="AWS_PROXY", integrationHttpMethod="POST", uri=uri(echo_fn))
    assert s.get(f"{base}/toys").status_code == 403
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    assert s.get(f"{base}/toys", method="PATCH").json()["resource"] == "/toys"
    apigw.delete_resource(restApiId=api_id, resourceId=pets["id"])
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert paths == {"/", "/toys"}
    apigw.delete_rest_api(restApiId=api_id)
    with pytest.raises(ClientError) as err:
        apigw.get_rest_api(restApiId=api_id)
    assert code(err.value) == "NotFoundException"


OPENAPI = {
    "openapi": "3.0.1",
    "info": {"title": "oas3", "version": "2"},
    "paths": {
        "/hello": {"get": {"x-amazon-apigateway-integration": {
            "type": "aws_proxy", "httpMethod": "POST", "uri": None,
            "timeoutInMillis": 1000}}},
        "/hello/{name}": {"post": {"x-amazon-apigateway-integration": {
            "type": "AWS_PROXY", "httpMethod": "POST", "uri": None}}},
    },
}


def oas(fn: str) -> dict:
    doc = json.loads(json.dumps(OPENAPI))
    for item in doc["paths"].values():
        for op in item.values():
            op["x-amazon-apigateway-integration"]["uri"] = uri(fn)
    return doc


def test_import_put_and_gateway_errors(apigw, echo_fn, endpoint):
    api = apigw.import_rest_api(body=json.dumps(oas(echo_fn)).encode(), failOnWarnings=True)
    assert api["name"] == "oas3" and api["version"] == "2"
    api_id = api["id"]
    apigw.create_deployment(restApiId=api_id, stageName="v1")
    base = f"{endpoint}/restapis/{api_id}/v1/_user_request_"
    assert s.get(f"{base}/hello").status_code == 200
    r = s.get(f"{base}/hello/bob", method="POST", data="malformed")
    assert (r.status_code, r.json()) == (502, {"message": "Internal server error"})
    r = s.get(f"{base}/hello/bob", method="POST", data="raise")
    assert (r.status_code, r.json()) == (502, {"message": "Internal server error"})
    # /hello's integration times out after 1 s (the 29 s limit, shortened).
    r = s.get(f"{base}/hello", data="sleep")
    assert (r.status_code, r.json()) == (504, {"message": "Endpoint request timed out"})
    # Merge adds a path; overwrite replaces the definition.
    extra = {"openapi": "3.0.1", "info": {"title": "oas3"}, "paths": {"/more": {"get": {
        "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri(echo_fn)}}}}}
    apigw.put_rest_api(restApiId=api_id, mode="merge", body=json.dumps(extra).encode())
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert {"/hello", "/hello/{name}", "/more"} <= paths
    apigw.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(extra).encode())
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert paths == {"/", "/more"}
    # The stage still serves its deployment until the next one.
    assert s.get(f"{base}/hello").status_code == 200
    apigw.create_deployment(restApiId=api_id, stageName="v1")
    assert s.get(f"{base}/hello").status_code == 403
    assert s.get(f"{base}/more").status_code == 200


@pytest.mark.parametrize("body,needle", [
    (b"not: [valid", "Unable to parse"),
    (b"{\"info\": {\"title\": \"x\"}}", "neither"),
    (b"openapi: 3.0.0\ninfo: {title: x}\npaths:\n  nopath: {}\n", "Invalid path nopath"),
    (b"swagger: '2.0'\ninfo: {title: x}\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n        uri: arn:aws:lambda:us-east-1:000000000000:nope\n",
     "Invalid integration URI"),
    (b"swagger: '2.0'\npaths: {}\n", "info.title"),
])
def test_invalid_openapi_is_a_bad_request(apigw, body, needle):
    with pytest.raises(ClientError) as e:
        apigw.import_rest_api(body=body)
    assert code(e.value) == "BadRequestException"
    assert needle in e.value.response["Error"]["Message"]


def test_control_plane_errors(apigw, apigw_raw, echo_fn):
    api = apigw.create_rest_api(name=s.unique("errs"))
    api_id, root = api["id"], api["rootResourceId"]
    apigw.create_resource(restApiId=api_id, parentId=root, pathPart="a")
    cases = [
        (lambda: apigw.create_resource(restApiId=api_id, parentId=root, pathPart="a"), "ConflictException"),
        (lambda: apigw.create_resource(restApiId=api_id, parentId=root, pathPart="a b"), "BadRequestException"),
        (lambda: apigw.create_resource(restApiId=api_id, parentId="nope12", pathPart="b"), "NotFoundException"),
        (lambda: apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="FETCH",
                                  authorizationType="NONE"), "BadRequestException"),
        (lambda: apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET",
                                       type="AWS_PROXY", uri=uri(echo_fn)), "NotFoundException"),
        (lambda: apigw.create_deployment(restApiId=api_id, stageName="x"), "BadRequestException"),
        (lambda: apigw.get_rest_api(restApiId="nope"), "NotFoundException"),
        (lambda: apigw.get_stage(restApiId=api_id, stageName="nope"), "NotFoundException"),
        (lambda: apigw.delete_resource(restApiId=api_id, resourceId=root), "BadRequestException"),
    ]
    for call, want in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e.value) == want, e.value.response


def test_missing_permission(apigw, lam, endpoint, server):
    name = s.python_function(lam, s.ECHO)
    doc = oas(name)
    api = apigw.import_rest_api(body=json.dumps(doc).encode())
    apigw.create_deployment(restApiId=api["id"], stageName="s")
    url = f"{endpoint}/restapis/{api['id']}/s/_user_request_/hello"
    r = s.get(url)
    assert (r.status_code, r.json()) == (500, {"message": "Internal server error"})
    s.wait_log(server, f"Invalid permissions on Lambda function {name}")
    # SAM's form of the source ARN: any stage, method and path of this API.
    s.allow_apigateway(lam, name, source_arn=f"arn:aws:execute-api:{s.REGION}:{s.ACCOUNT}:{api['id']}/*/GET/hello")
    assert s.get(url).status_code == 200


def test_aws_cli(echo_fn, endpoint, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    aws = [sys.executable, "-m", "awscli"]
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(oas(echo_fn)))
    out = subprocess.run(aws + ["apigateway", "import-rest-api", "--body", f"fileb://{spec}"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)
    listed = subprocess.run(aws + ["apigateway", "get-rest-apis"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert api["id"] in [a["id"] for a in json.loads(listed.stdout)["items"]]
    out = subprocess.run(aws + ["apigateway", "create-deployment", "--rest-api-id", api["id"],
                                "--stage-name", "cli"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    r = s.get(f"{endpoint}/restapis/{api['id']}/cli/_user_request_/hello")
    assert r.status_code == 200 and r.json()["requestContext"]["stage"] == "cli"
