"""Error responses: exact exception code, HTTP status, x-amzn-ErrorType header, message, and no
side effects from a failed request."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from support import (
    MB,
    REGION,
    ROLE,
    TOO_LARGE_CODES,
    UNZIPPED_LIMIT,
    ZIPPED_LIMIT,
    b64sha256,
    create_function,
    download,
    expect_error,
    function_arn,
    make_incompressible_zip,
    make_zero_zip,
    make_zip,
    partial_arn,
    strip_meta,
    unique,
)

# ------------------------------------------------------------------------------------------
# ResourceNotFoundException
# ------------------------------------------------------------------------------------------

MISSING_CALLS = {
    "GetFunction": lambda lam, n: lam.get_function(FunctionName=n),
    "GetFunctionConfiguration": lambda lam, n: lam.get_function_configuration(FunctionName=n),
    "UpdateFunctionCode": lambda lam, n: lam.update_function_code(
        FunctionName=n, ZipFile=make_zip(marker="x")),
    "UpdateFunctionConfiguration": lambda lam, n: lam.update_function_configuration(
        FunctionName=n, Description="x"),
    "PublishVersion": lambda lam, n: lam.publish_version(FunctionName=n),
    "ListVersionsByFunction": lambda lam, n: lam.list_versions_by_function(FunctionName=n),
    "CreateAlias": lambda lam, n: lam.create_alias(FunctionName=n, Name="a", FunctionVersion="1"),
    "GetAlias": lambda lam, n: lam.get_alias(FunctionName=n, Name="a"),
    "UpdateAlias": lambda lam, n: lam.update_alias(FunctionName=n, Name="a", FunctionVersion="1"),
    "ListAliases": lambda lam, n: lam.list_aliases(FunctionName=n),
    "DeleteFunction": lambda lam, n: lam.delete_function(FunctionName=n),
    "GetPolicy": lambda lam, n: lam.get_policy(FunctionName=n),
    "AddPermission": lambda lam, n: lam.add_permission(
        FunctionName=n, StatementId="s", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"),
    "PutFunctionConcurrency": lambda lam, n: lam.put_function_concurrency(
        FunctionName=n, ReservedConcurrentExecutions=1),
    "GetFunctionConcurrency": lambda lam, n: lam.get_function_concurrency(FunctionName=n),
    "ListTags": lambda lam, n: lam.list_tags(Resource=function_arn(n)),
}


@pytest.mark.parametrize("operation", sorted(MISSING_CALLS))
def test_missing_function_is_404(lam, operation):
    name = unique("missing")
    with expect_error("ResourceNotFoundException", 404) as excinfo:
        MISSING_CALLS[operation](lam, name)
    assert isinstance(excinfo.value, lam.exceptions.ResourceNotFoundException)
    if operation not in ("GetAlias", "UpdateAlias", "ListTags"):
        assert function_arn(name) in excinfo.value.response["Error"]["Message"]


def test_not_found_message_has_resolved_arn(lam):
    name = unique("resolved")
    for ident in (name, partial_arn(name), function_arn(name)):
        with expect_error("ResourceNotFoundException", 404,
                          message_contains=f"Function not found: {function_arn(name)}"):
            lam.get_function(FunctionName=ident)


def test_unknown_qualifier_is_404_with_qualified_arn(lam):
    fn = create_function(lam)
    for qualifier in ("7", "no-such-alias"):
        with expect_error("ResourceNotFoundException", 404,
                          message_contains=function_arn(fn.name, qualifier)):
            lam.get_function_configuration(FunctionName=fn.name, Qualifier=qualifier)
        with expect_error("ResourceNotFoundException", 404,
                          message_contains=function_arn(fn.name, qualifier)):
            lam.get_function(FunctionName=f"{fn.name}:{qualifier}")
    with expect_error("ResourceNotFoundException", 404):
        lam.delete_function(FunctionName=fn.name, Qualifier="7")
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["Version"] == "$LATEST"


# ------------------------------------------------------------------------------------------
# ResourceConflictException
# ------------------------------------------------------------------------------------------


def test_duplicate_create_conflicts_and_changes_nothing(lam):
    fn = create_function(lam, Description="original")
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    with expect_error("ResourceConflictException", 409,
                      message_contains=f"Function already exist: {fn.name}") as excinfo:
        lam.create_function(FunctionName=fn.name, Runtime="nodejs20.x", Role=ROLE,
                            Handler="index.handler", Description="impostor",
                            Code={"ZipFile": make_zip(marker="impostor")})
    assert isinstance(excinfo.value, lam.exceptions.ResourceConflictException)
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name)) == before
    assert download(lam.get_function(FunctionName=fn.name)["Code"]["Location"]) == fn.zip


# ------------------------------------------------------------------------------------------
# ValidationException: model constraints (client-side validation off to reach the server)
# ------------------------------------------------------------------------------------------


def _create_params(name, **overrides):
    params = dict(FunctionName=name, Runtime="python3.12", Role=ROLE,
                  Handler="lambda_function.handler", Code={"ZipFile": make_zip(marker=name)})
    params.update(overrides)
    return params


MODEL_VIOLATIONS = {
    "memory-below-128": ({"MemorySize": 64}, "Value '64' at 'memorySize'"),
    "timeout-zero": ({"Timeout": 0}, "Value '0' at 'timeout'"),
    "role-pattern": ({"Role": "not-a-role"}, "Value 'not-a-role' at 'role'"),
    "ephemeral-below-512": ({"EphemeralStorage": {"Size": 256}},
                            "Value '256' at 'ephemeralStorage.size'"),
    "two-architectures": ({"Architectures": ["x86_64", "arm64"]}, "at 'architectures'"),
    "unknown-architecture": ({"Architectures": ["sparc"]}, "at 'architectures'"),
    "description-257": ({"Description": "d" * 257}, "at 'description'"),
    "handler-with-space": ({"Handler": "my handler"}, "Value 'my handler' at 'handler'"),
}


@pytest.mark.parametrize("case", sorted(MODEL_VIOLATIONS))
def test_create_model_violation_is_validation_exception(lam_raw, case):
    overrides, needle = MODEL_VIOLATIONS[case]
    name = unique("invalid")
    with expect_error("ValidationException", 400) as excinfo:
        lam_raw.create_function(**_create_params(name, **overrides))
    message = excinfo.value.response["Error"]["Message"]
    assert message.startswith("1 validation error detected: "), message
    assert f"{needle} failed to satisfy constraint" in message, message
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_function(FunctionName=name)


def test_unknown_runtime(lam):
    # AWS checks the runtime itself (the list changes over time) and answers with
    # InvalidParameterValueException, not a model ValidationException.
    name = unique("runtime")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "Value cobol85 at 'runtime' failed to satisfy constraint: "
            "Member must satisfy enum value set")):
        lam.create_function(**_create_params(name, Runtime="cobol85"))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)
    fn = create_function(lam)
    with expect_error("InvalidParameterValueException", 400, message_contains="at 'runtime'"):
        lam.update_function_configuration(FunctionName=fn.name, Runtime="PYTHON3.12")
    assert lam.get_function_configuration(FunctionName=fn.name)["Runtime"] == "python3.12"


def test_invalid_function_name_is_validation_exception(lam_raw):
    bad = "bad name!"
    with expect_error("ValidationException", 400) as excinfo:
        lam_raw.create_function(**_create_params(bad))
    assert excinfo.value.response["Error"]["Message"].startswith(
        f"1 validation error detected: Value '{bad}' at 'functionName' failed to satisfy "
        "constraint")


def test_two_violations_are_both_reported(lam_raw):
    name = unique("twice")
    with expect_error("ValidationException", 400) as excinfo:
        lam_raw.create_function(**_create_params(name, MemorySize=64, Timeout=0))
    message = excinfo.value.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: "), message
    assert "'memorySize'" in message and "'timeout'" in message


def test_function_name_longer_than_64_is_rejected(lam_raw):
    name = "n" * 65
    with expect_error({"ValidationException": 400, "InvalidParameterValueException": 400}):
        lam_raw.create_function(**_create_params(name))
    with expect_error({"ResourceNotFoundException": 404, "ValidationException": 400,
                       "InvalidParameterValueException": 400}):
        lam_raw.get_function(FunctionName=name)


def test_update_configuration_model_violation_changes_nothing(lam_raw):
    fn = create_function(lam_raw)
    before = strip_meta(lam_raw.get_function_configuration(FunctionName=fn.name))
    with expect_error("ValidationException", 400, message_contains="'memorySize'"):
        lam_raw.update_function_configuration(FunctionName=fn.name, MemorySize=100)
    with expect_error("ValidationException", 400, message_contains="'timeout'"):
        lam_raw.update_function_configuration(FunctionName=fn.name, Timeout=-5)
    assert strip_meta(lam_raw.get_function_configuration(FunctionName=fn.name)) == before


def test_list_functions_max_items_zero(lam_raw):
    with expect_error("ValidationException", 400, message_contains="'maxItems'"):
        lam_raw.list_functions(MaxItems=0)


def test_list_functions_unknown_function_version(lam_raw):
    with expect_error("ValidationException", 400, message_contains=(
            "Value 'invalid' at 'functionVersion' failed to satisfy constraint")):
        lam_raw.list_functions(FunctionVersion="invalid")


# ------------------------------------------------------------------------------------------
# InvalidParameterValueException: service-level limits and rules
# ------------------------------------------------------------------------------------------

# Inside the current model's bounds (Timeout <= 5400, MemorySize/EphemeralStorage <= 32768, raised
# for Managed Instances) but beyond what a standard function may use: the service refuses them.
SERVICE_LIMITS = {
    "timeout-901": ({"Timeout": 901}, "InvalidParameterValueException"),
    "memory-10241": ({"MemorySize": 10241}, "InvalidParameterValueException"),
    # Older models capped this at 10240 (ValidationException); either answer is AWS-like.
    "ephemeral-10241": ({"EphemeralStorage": {"Size": 10241}},
                        ("InvalidParameterValueException", "ValidationException")),
}


@pytest.mark.parametrize("case", sorted(SERVICE_LIMITS))
def test_service_limits_are_invalid_parameter(lam, case):
    overrides, code = SERVICE_LIMITS[case]
    name = unique("limit")
    with expect_error(code, 400):
        lam.create_function(**_create_params(name, **overrides))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


def test_limits_at_the_boundary_are_accepted(lam):
    fn = create_function(lam, Timeout=900, MemorySize=10240, EphemeralStorage={"Size": 10240})
    assert (fn.resp["Timeout"], fn.resp["MemorySize"], fn.resp["EphemeralStorage"]) == \
        (900, 10240, {"Size": 10240})
    fn = create_function(lam, Timeout=1, MemorySize=128)
    assert (fn.resp["Timeout"], fn.resp["MemorySize"]) == (1, 128)


def test_update_configuration_service_limit_changes_nothing(lam):
    fn = create_function(lam)
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_configuration(FunctionName=fn.name, Timeout=1000)
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_configuration(FunctionName=fn.name, MemorySize=20000)
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name)) == before


# (_HANDLER and _X_AMZN_TRACE_ID are reserved too, but they already fail the model's key pattern.)
RESERVED_KEYS = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV"]


@pytest.mark.parametrize("key", RESERVED_KEYS)
def test_reserved_environment_keys_on_create(lam, key):
    name = unique("reserved")
    with expect_error("InvalidParameterValueException", 400, message_contains=key):
        lam.create_function(**_create_params(name, Environment={"Variables": {key: "x",
                                                                              "OK_KEY": "y"}}))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


def test_reserved_environment_key_on_update_changes_nothing(lam):
    fn = create_function(lam, Environment={"Variables": {"MINE": "1"}})
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    with expect_error("InvalidParameterValueException", 400, message_contains="AWS_REGION"):
        lam.update_function_configuration(FunctionName=fn.name,
                                          Environment={"Variables": {"AWS_REGION": "eu-west-1"}})
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name)) == before


def test_overridable_environment_keys_are_accepted(lam):
    env = {"TZ": "Europe/Paris", "LANG": "C.UTF-8", "PYTHONPATH": "/opt/x",
           "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    fn = create_function(lam, Environment={"Variables": env})
    assert fn.resp["Environment"] == {"Variables": env}


def test_environment_over_4kb(lam):
    name = unique("bigenv")
    with expect_error("InvalidParameterValueException", 400,
                      message_contains="exceeded the 4KB limit"):
        lam.create_function(**_create_params(
            name, Environment={"Variables": {"BIG": "x" * 4000, "BIGGER": "y" * 1000}}))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)
    fn = create_function(lam, Environment={"Variables": {"FITS": "z" * 3000}})
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_configuration(
            FunctionName=fn.name, Environment={"Variables": {"BIG": "x" * 5000}})
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name)) == before


@pytest.mark.parametrize("key", ["1BAD", "X", "_HANDLER", "HAS-DASH"])
def test_environment_key_pattern(lam_raw, key):
    # Keys must match [a-zA-Z]([a-zA-Z0-9_])+ : a letter first, at least two characters.
    name = unique("badkey")
    with expect_error({"ValidationException": 400, "InvalidParameterValueException": 400}):
        lam_raw.create_function(**_create_params(name, Environment={"Variables": {key: "x"}}))
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_function(FunctionName=name)


def test_zip_that_is_not_a_zip(lam):
    name = unique("notzip")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "Could not unzip uploaded file. Please check your file, then try to upload again.")):
        lam.create_function(**_create_params(name, Code={"ZipFile": b"definitely not a zip"}))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)
    fn = create_function(lam)
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_code(FunctionName=fn.name, ZipFile=b"PK\x03\x04 truncated")
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name)) == before
    assert download(lam.get_function(FunctionName=fn.name)["Code"]["Location"]) == fn.zip


def test_runtime_and_handler_required_for_zip(lam):
    name = unique("noruntime")
    with expect_error("InvalidParameterValueException", 400):
        lam.create_function(FunctionName=name, Role=ROLE,
                            Code={"ZipFile": make_zip(marker=name)})
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


# ------------------------------------------------------------------------------------------
# Size limits
# ------------------------------------------------------------------------------------------


def _expect_413(lam, call):
    try:
        with expect_error(TOO_LARGE_CODES, 413, message_contains="Request must be smaller than"):
            call()
    except (ConnectionClosedError, EndpointConnectionError) as e:
        pytest.fail(f"server dropped the connection instead of answering 413: {e}")
    # The client keeps its keep-alive connection after the 413; the very next request on it must
    # work (a server that stops reading the body has to say `Connection: close`).
    try:
        lam.list_functions(MaxItems=1)
    except (ConnectionClosedError, EndpointConnectionError) as e:
        pytest.fail(f"the request after the 413 failed on the reused connection: {e}")


@pytest.fixture(scope="module")
def oversized_zip():
    data = make_incompressible_zip(ZIPPED_LIMIT + MB)
    assert len(data) > ZIPPED_LIMIT
    return data


@pytest.mark.slow
def test_zip_over_50mb_on_create(lam, oversized_zip):
    name = unique("huge")
    _expect_413(lam, lambda: lam.create_function(**_create_params(name,
                                                             Code={"ZipFile": oversized_zip})))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


@pytest.mark.slow
def test_zip_over_50mb_on_update(lam, oversized_zip):
    fn = create_function(lam)
    _expect_413(lam, lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=oversized_zip))
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["CodeSha256"] == b64sha256(fn.zip)


@pytest.mark.slow
def test_zip_just_under_50mb_is_accepted(lam):
    data = make_incompressible_zip(ZIPPED_LIMIT - 2 * MB)
    assert len(data) < ZIPPED_LIMIT
    fn = create_function(lam, zip_bytes=data)
    assert fn.resp["CodeSize"] == len(data)
    assert fn.resp["CodeSha256"] == b64sha256(data)
    assert download(lam.get_function(FunctionName=fn.name)["Code"]["Location"]) == data
    lam.delete_function(FunctionName=fn.name)


@pytest.fixture(scope="module")
def unzips_too_big():
    data = make_zero_zip(UNZIPPED_LIMIT + MB)
    assert len(data) < 2 * MB
    return data


@pytest.mark.slow
def test_unzipped_over_250mb_on_create(lam, unzips_too_big):
    name = unique("bomb")
    with expect_error("InvalidParameterValueException", 400,
                      message_contains="Unzipped size must be smaller than 262144000 bytes"):
        lam.create_function(**_create_params(name, Code={"ZipFile": unzips_too_big}))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


@pytest.mark.slow
def test_unzipped_over_250mb_on_update(lam, unzips_too_big):
    fn = create_function(lam)
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_code(FunctionName=fn.name, ZipFile=unzips_too_big)
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == \
        b64sha256(fn.zip)


@pytest.mark.slow
def test_function_plus_layers_over_250mb(lam):
    half = make_zero_zip(UNZIPPED_LIMIT // 2 + MB, name="layer.bin")
    layer = lam.publish_layer_version(LayerName=unique("biglayer"), Content={"ZipFile": half})
    name = unique("heavy")
    body = make_zero_zip(UNZIPPED_LIMIT // 2 + MB, name="function.bin")
    with expect_error("InvalidParameterValueException", 400):
        lam.create_function(**_create_params(name, Code={"ZipFile": body},
                                             Layers=[layer["LayerVersionArn"]]))
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


# ------------------------------------------------------------------------------------------
# Raw HTTP: malformed requests are 4xx with the Lambda error shape, never 5xx
# ------------------------------------------------------------------------------------------


def _signed(endpoint, method, path, body=b"", headers=None):
    req = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers or {})
    SigV4Auth(Credentials("test", "test"), "lambda", REGION).add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(prepared.url, data=body or None, method=method,
                                 headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(raw, timeout=30) as resp:  # noqa: S310
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_malformed_json_body(endpoint):
    status, headers, body = _signed(endpoint, "POST", "/2015-03-31/functions",
                                    b'{"FunctionName": "x", ',
                                    {"Content-Type": "application/json"})
    assert status == 400, (status, body)
    assert headers.get("x-amzn-requestid")
    assert headers.get("x-amzn-errortype")
    doc = json.loads(body)
    assert doc.get("message") or doc.get("Message")


def test_wrong_json_type(endpoint):
    name = unique("t")
    status, headers, body = _signed(
        endpoint, "POST", "/2015-03-31/functions",
        json.dumps({"FunctionName": name, "Runtime": "python3.12", "Role": ROLE,
                    "Handler": "a.b", "Timeout": "three", "Code": {"ZipFile": ""}}).encode(),
        {"Content-Type": "application/json"})
    if 200 <= status < 300:  # keep a wrongly accepted function from breaking other tests
        _signed(endpoint, "DELETE", f"/2015-03-31/functions/{name}")
    assert 400 <= status < 500, (status, body)
    assert headers.get("x-amzn-errortype")
    assert headers.get("x-amzn-requestid")


def test_unknown_path_is_not_a_server_error(endpoint):
    status, headers, _ = _signed(endpoint, "GET", "/2015-03-31/no-such-resource")
    assert 400 <= status < 500
    assert headers.get("x-amzn-requestid")


def test_request_ids_are_unique(lam):
    ids = {lam.list_functions(MaxItems=1)["ResponseMetadata"]["RequestId"] for _ in range(5)}
    assert len(ids) == 5
