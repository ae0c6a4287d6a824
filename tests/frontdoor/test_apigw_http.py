"""HTTP APIs (API Gateway v2): the control plane through boto3 and the aws CLI, invocations
through `requests` against plain handlers (event shapes, route precedence, errors, CORS,
permissions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

import agsupport as s
from agsupport import apigw, apigw_raw, apigwv2, apigwv2_raw  # noqa: F401  (fixtures)

ECHO_APP = s.ECHO


@pytest.fixture(scope="module")
def echo_fn(lam):
    name = s.python_function(lam, ECHO_APP, Timeout=10)
    s.allow_apigateway(lam, name)
    return name


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def test_quick_create_makes_route_integration_and_default_stage(apigwv2, echo_fn, endpoint):
    api = apigwv2.create_api(Name="quick", ProtocolType="HTTP", Target=s.function_arn(echo_fn))
    api_id = api["ApiId"]
    assert len(api_id) == 10 and api_id.isalnum()
    assert api["ApiEndpoint"] == f"{endpoint}/execute-api/{api_id}"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"
    routes = apigwv2.get_routes(ApiId=api_id)["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"]
    integ = apigwv2.get_integrations(ApiId=api_id)["Items"]
    assert len(integ) == 1
    assert integ[0]["IntegrationType"] == "AWS_PROXY"
    assert integ[0]["PayloadFormatVersion"] == "2.0"
    assert integ[0]["TimeoutInMillis"] == 30000
    assert routes[0]["Target"] == f"integrations/{integ[0]['IntegrationId']}"
    stages = apigwv2.get_stages(ApiId=api_id)["Items"]
    assert [(st["StageName"], st["AutoDeploy"]) for st in stages] == [("$default", True)]
    assert stages[0]["DeploymentId"]
    assert apigwv2.get_api(ApiId=api_id)["Name"] == "quick"
    # The endpoint works as returned.
    r = s.get(api["ApiEndpoint"] + "/any/path?x=1&x=2")
    assert r.status_code == 200, r.text
    event = r.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/any/path"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["requestContext"]["apiId"] == api_id
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert r.headers["apigw-requestid"]
    assert "a=1" in r.headers["set-cookie"] and "b=2" in r.headers["set-cookie"]
    apigwv2.update_api(ApiId=api_id, Name="renamed")
    assert apigwv2.get_api(ApiId=api_id)["Name"] == "renamed"
    apigwv2.delete_api(ApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigwv2.get_api(ApiId=api_id)
    assert code(e.value) == "NotFoundException"
    assert s.get(api["ApiEndpoint"] + "/x").status_code == 404


def make_api(apigwv2, fn: str, keys: list[str], *, version: str = "2.0", timeout: int = 30000,
             cors: dict | None = None) -> dict:
    extra = {"CorsConfiguration": cors} if cors else {}
    api = apigwv2.create_api(Name=s.unique("api"), ProtocolType="HTTP", **extra)
    integ = apigwv2.create_integration(
        ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=s.function_arn(fn),
        PayloadFormatVersion=version, TimeoutInMillis=timeout)
    for key in keys:
        apigwv2.create_route(ApiId=api["ApiId"], RouteKey=key,
                             Target=f"integrations/{integ['IntegrationId']}")
    apigwv2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    return api


def test_route_precedence_and_path_parameters(apigwv2, echo_fn):
    api = make_api(apigwv2, echo_fn, ["GET /pets/{id}", "GET /pets/dog", "ANY /pets/{proxy+}",
                                      "ANY /pets/{id}", "GET /", "$default"])
    base = api["ApiEndpoint"]

    def route(method: str, path: str) -> dict:
        r = s.get(base + path, method=method)
        assert r.status_code == 200, (method, path, r.status_code, r.text)
        return r.json()

    assert route("GET", "/pets/dog")["routeKey"] == "GET /pets/dog"
    e = route("GET", "/pets/7")
    assert e["routeKey"] == "GET /pets/{id}" and e["pathParameters"] == {"id": "7"}
    assert route("DELETE", "/pets/7")["routeKey"] == "ANY /pets/{id}"
    e = route("POST", "/pets/a/b%20c")
    assert e["routeKey"] == "ANY /pets/{proxy+}"
    assert e["pathParameters"] == {"proxy": "a/b c"}
    assert route("GET", "/")["routeKey"] == "GET /"
    assert route("PUT", "/elsewhere")["routeKey"] == "$default"
    # Without a $default route, an unmatched request is API Gateway's 404.
    bare = make_api(apigwv2, echo_fn, ["GET /only"])
    r = s.get(bare["ApiEndpoint"] + "/other")
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    assert s.get(bare["ApiEndpoint"] + "/only").status_code == 200


def test_host_form_and_named_stage_with_variables(apigwv2, echo_fn, server):
    api = apigwv2.create_api(Name=s.unique("api"), ProtocolType="HTTP")
    api_id = api["ApiId"]
    integ = apigwv2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                       IntegrationUri=s.function_arn(echo_fn),
                                       PayloadFormatVersion="2.0")
    apigwv2.create_route(ApiId=api_id, RouteKey="GET /hello",
                         Target=f"integrations/{integ['IntegrationId']}")
    apigwv2.create_stage(ApiId=api_id, StageName="prod", StageVariables={"color": "blue"})
    # Not deployed yet: the stage serves nothing.
    assert s.get(f"{api['ApiEndpoint']}/prod/hello").status_code == 404
    dep = apigwv2.create_deployment(ApiId=api_id, StageName="prod")
    assert dep["DeploymentStatus"] == "DEPLOYED"
    assert apigwv2.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == dep["DeploymentId"]
    assert dep["DeploymentId"] in [d["DeploymentId"] for d in apigwv2.get_deployments(ApiId=api_id)["Items"]]
    host = f"{api_id}.execute-api.localhost:{server.port}"
    r = s.get(f"{server.url}/prod/hello", headers={"Host": host})
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["rawPath"] == "/prod/hello"
    assert e["requestContext"]["stage"] == "prod"
    assert e["stageVariables"] == {"color": "blue"}
    assert e["requestContext"]["domainName"] == f"{api_id}.execute-api.localhost"
    # A route added after the deployment is not served until the next one.
    apigwv2.create_route(ApiId=api_id, RouteKey="GET /later",
                         Target=f"integrations/{integ['IntegrationId']}")
    assert s.get(f"{api['ApiEndpoint']}/prod/later").status_code == 404
    apigwv2.create_deployment(ApiId=api_id, StageName="prod")
    assert s.get(f"{api['ApiEndpoint']}/prod/later").status_code == 200


def test_payload_1_0_event(apigwv2, echo_fn):
    api = make_api(apigwv2, echo_fn, ["POST /items/{id}"], version="1.0")
    r = s.get(api["ApiEndpoint"] + "/items/42?a=1&a=2", method="POST", json={"k": 1},
              headers={"X-Multi": "one"})
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["version"] == "1.0"
    assert e["resource"] == "/items/{id}"
    assert e["httpMethod"] == "POST"
    assert e["pathParameters"] == {"id": "42"}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert e["queryStringParameters"] == {"a": "2"}
    assert json.loads(e["body"]) == {"k": 1}
    assert e["multiValueHeaders"]["x-multi"] == ["one"] or e["multiValueHeaders"].get("X-Multi") == ["one"]


def test_gateway_errors(apigwv2, lam, echo_fn, server):
    api = make_api(apigwv2, echo_fn, ["POST /x"], timeout=1000)
    url = api["ApiEndpoint"] + "/x"
    r = s.get(url, method="POST", data="malformed", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    r = s.get(url, method="POST", data="raise", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    r = s.get(url, method="POST", data="sleep", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()) == (503, {"message": "Service Unavailable"})
    s.wait_log(server, "integration timed out")


def test_missing_permission_is_refused_and_logged(apigwv2, lam, server):
    name = s.python_function(lam, ECHO_APP)
    api = make_api(apigwv2, name, ["GET /p"])
    r = s.get(api["ApiEndpoint"] + "/p")
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    s.wait_log(server, f"Invalid permissions on Lambda function {name}")
    # A permission for another API does not count; one for this API does.
    other = f"arn:aws:execute-api:{s.REGION}:{s.ACCOUNT}:zzzzzzzzzz/*/*"
    s.allow_apigateway(lam, name, source_arn=other)
    assert s.get(api["ApiEndpoint"] + "/p").status_code == 500
    mine = f"arn:aws:execute-api:{s.REGION}:{s.ACCOUNT}:{api['ApiId']}/*/GET/p"
    s.allow_apigateway(lam, name, source_arn=mine)
    assert s.get(api["ApiEndpoint"] + "/p").status_code == 200


def test_alias_integration_uses_the_alias_policy(apigwv2, lam):
    name = s.python_function(lam, ECHO_APP)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    api = make_api(apigwv2, f"{name}:live", ["GET /a"])
    # The unqualified function's permission does not cover the alias.
    s.allow_apigateway(lam, name)
    assert s.get(api["ApiEndpoint"] + "/a").status_code == 500
    s.allow_apigateway(lam, name, qualifier="live")
    r = s.get(api["ApiEndpoint"] + "/a")
    assert r.status_code == 200, r.text


def test_cors(apigwv2, echo_fn):
    cors = {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type", "x-custom"], "MaxAge": 300,
            "ExposeHeaders": ["x-request-id"]}
    api = make_api(apigwv2, echo_fn, ["GET /c"], cors=cors)
    url = api["ApiEndpoint"] + "/c"
    pre = s.get(url, method="OPTIONS", headers={"Origin": "https://app.example",
                                                 "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "GET" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-max-age"] == "300"
    r = s.get(url, headers={"Origin": "https://app.example"})
    assert r.status_code == 200
    # The API's configuration overrides the function's own CORS header.
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-expose-headers"] == "x-request-id"
    r = s.get(url, headers={"Origin": "https://evil.example"})
    assert r.headers["access-control-allow-origin"] == "https://function.example"
    cfg = apigwv2.get_api(ApiId=api["ApiId"])["CorsConfiguration"]
    assert cfg["AllowOrigins"] == ["https://app.example"] and cfg["MaxAge"] == 300


def test_control_plane_validation(apigwv2, apigwv2_raw, echo_fn):
    api = make_api(apigwv2, echo_fn, ["GET /v"])
    api_id = api["ApiId"]
    integ_id = apigwv2.get_integrations(ApiId=api_id)["Items"][0]["IntegrationId"]
    cases = [
        (lambda: apigwv2.create_route(ApiId=api_id, RouteKey="FETCH /x"), "BadRequestException"),
        (lambda: apigwv2.create_route(ApiId=api_id, RouteKey="GET /{proxy+}/x"), "BadRequestException"),
        (lambda: apigwv2.create_route(ApiId=api_id, RouteKey="GET /v"), "ConflictException"),
        (lambda: apigwv2.create_route(ApiId=api_id, RouteKey="GET /w", Target="integrations/nope123"),
         "BadRequestException"),
        (lambda: apigwv2_raw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                                IntegrationUri=s.function_arn(echo_fn),
                                                PayloadFormatVersion="2.0", TimeoutInMillis=30001),
         "BadRequestException"),
        (lambda: apigwv2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                            IntegrationUri=s.function_arn(echo_fn)),
         "BadRequestException"),
        (lambda: apigwv2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                            IntegrationUri="not-an-arn", PayloadFormatVersion="2.0"),
         "BadRequestException"),
        (lambda: apigwv2.delete_integration(ApiId=api_id, IntegrationId=integ_id), "ConflictException"),
        (lambda: apigwv2.create_stage(ApiId=api_id, StageName="$default"), "ConflictException"),
        (lambda: apigwv2.get_route(ApiId=api_id, RouteId="abcdefg"), "NotFoundException"),
        (lambda: apigwv2.get_stage(ApiId=api_id, StageName="nope"), "NotFoundException"),
        (lambda: apigwv2.create_api(Name="w", ProtocolType="WEBSOCKET"), "BadRequestException"),
        (lambda: apigwv2_raw.create_api(Name="", ProtocolType="HTTP"), "BadRequestException"),
        (lambda: apigwv2.get_api(ApiId="../../x"), "NotFoundException"),
    ]
    for call, want in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e.value) == want, e.value.response
        assert e.value.response["Error"]["Message"]
    # Paging: maxResults is a string on the wire.
    page = apigwv2.get_routes(ApiId=api_id, MaxResults="1")
    assert len(page["Items"]) == 1


def test_aws_cli(echo_fn, endpoint):
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    aws = [sys.executable, "-m", "awscli"]
    out = subprocess.run(aws + ["apigatewayv2", "create-api", "--name", "cli-api",
                                "--protocol-type", "HTTP", "--target", s.function_arn(echo_fn)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)
    listed = subprocess.run(aws + ["apigatewayv2", "get-apis"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert api["ApiId"] in [a["ApiId"] for a in json.loads(listed.stdout)["Items"]]
    assert s.get(api["ApiEndpoint"] + "/from-cli").json()["rawPath"] == "/from-cli"
    bad = subprocess.run(aws + ["apigatewayv2", "get-api", "--api-id", "nonexistent"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "NotFoundException" in bad.stderr
