"""Java runtime specifics: POJO binding, handler signatures, stream handlers, the Context proxy,
logging, JVM flags and JAVA_TOOL_OPTIONS, class path layouts (lib/*.jar, /opt/java/lib), the CDS
archive, and the JSON codec itself. Shared behaviour is in test_bootstraps.py.
"""

import json
import math
import os
import random
import shutil
import subprocess

import pytest

from harness import FUNCTION_NAME, JavaRuntime, create_cds_archive, java_heap_kb, launch_command
from java_fixtures import GREETER_JAR, JAVA_APP, JAVA_CORE_JAR, JAVA_FUNCTIONS, JAVA_FUTURE_APP

APP = {"": JAVA_APP}


def start_java(start_runtime, handler, files=APP, **options):
    return start_runtime("java", handler, files, **options)


# ---------------------------------------------------------------------------
# Events and results
# ---------------------------------------------------------------------------


def test_pojo_event_and_result(api, start_runtime):
    start_java(start_runtime, "example.OrderHandler")
    order = {
        "orderId": "o-1",
        "quantity": 2,
        "items": [{"sku": "A", "count": 3}, {"sku": "B", "count": 1}],
        "status": "PAID",
        "price": "2.50",
        "tags": {"note": "leave at door"},
        "gift": True,
        "unknownProperty": {"ignored": True},
    }

    result = api.invoke(order)

    # Properties in field order (then getter-only ones), JavaBeans names, nulls left out.
    assert result.kind == "response"
    assert result.body == (
        b'{"orderId":"o-1","units":6,"total":15.00,"skus":["A","B"],"status":"PAID","gift":true,'
        b'"note":"leave at door","URL":"https://example.com/orders/o-1"}'
    )


def test_pojo_binding_is_lenient_like_lambdas_serializer(api, start_runtime):
    start_java(start_runtime, "example.OrderHandler")

    coerced = api.invoke({"orderId": 7, "quantity": "7", "status": "NO_SUCH_STATUS", "createdAt": 5}).json()
    single_value_array = api.invoke([{"orderId": "in-array"}]).json()
    case_sensitive = api.invoke({"OrderId": "wrong case", "QUANTITY": 3}).json()

    assert coerced == {
        "orderId": "7",  # a number where a String is declared
        "units": 7,  # a numeric string where an int is declared
        "skus": [],
        "gift": False,
        "note": "createdAt was set through a private setter: 5",
        "URL": "https://example.com/orders/7",
    }  # an unknown enum name becomes null (left out)
    assert single_value_array["orderId"] == "in-array"
    assert case_sensitive == {"units": 0, "skus": [], "gift": False, "URL": "https://example.com/orders/null"}


def test_event_that_does_not_bind_is_a_json_parsing_error(api, start_runtime):
    process = start_java(start_runtime, "example.OrderHandler")

    wrong_type = api.invoke({"quantity": "many"})
    not_json = api.invoke(raw_body=b"{not json")

    for result in (wrong_type, not_json):
        assert result.json() == {
            "errorMessage": "An error occurred during JSON parsing",
            "errorType": "java.lang.RuntimeException",
            "stackTrace": [],
        }
        assert result.headers["lambda-runtime-function-error-type"] == "Runtime.UserException"
    log = process.wait_output("Caused by")
    assert (
        "Caused by: java.io.UncheckedIOException: java.io.IOException: Cannot deserialize value of type `int` from String"
        ' "many": not a valid number (through reference chain: example.Order["quantity"])' in log
    )
    assert process.running


def test_result_that_cannot_be_serialized(api, start_runtime):
    process = start_java(start_runtime, "example.Methods::cycle")

    result = api.invoke({})

    assert result.json() == {
        "errorMessage": "An error occurred during JSON serialization of response",
        "errorType": "java.lang.RuntimeException",
        "stackTrace": [],
    }
    assert "Direct self-reference leading to cycle" in process.wait_output("self-reference")


def test_request_stream_handler(api, start_runtime):
    start_java(start_runtime, "example.StreamUpper")

    result = api.invoke({"key": "value"}, request_id="req-stream")

    assert result.json() == {"upper": {"KEY": "VALUE"}, "request": "req-stream"}
    assert result.headers["content-type"] == "application/json"


def test_stream_method_gets_the_raw_bytes(api, start_runtime):
    start_java(start_runtime, "example.Methods::reverse")

    assert api.invoke(raw_body=b'"abc"').body == b'"cba"'


@pytest.mark.parametrize(
    "handler, event, expected",
    [
        ("example.Methods::greet", "ana", "hello ana from " + FUNCTION_NAME),
        ("example.Methods::square", 7, 49),
        ("example.Methods::noArgs", {"ignored": True}, "no args"),
        ("example.Methods::pick", {}, "with context"),  # the overload ending in Context wins
        ("example.Methods::count", [{"sku": "a", "count": 2}, {"sku": "b", "count": 3}], 5),
        ("example.Methods::typed", {"a": 1, "b": "2"}, {"sum": 3, "first_class": "Integer"}),
        ("example.Methods::doubles", [1, 2.5], [1.0, 2.5]),
        ("example.Methods::raw", {"value": 1}, "java.lang.Integer"),
        ("example.Methods::raw", {"value": 12345678901}, "java.lang.Long"),
        ("example.Methods::raw", {"value": 10**30}, "java.math.BigInteger"),
        ("example.Methods::raw", {"value": 2.5}, "java.lang.Double"),
        ("example.Methods::raw", [], "java.util.ArrayList"),
        ("example.Methods::raw", {}, "null"),
        ("example.GenericBase$ItemsHandler", [{"sku": "A", "count": 3}, {"sku": "B", "count": 1}], "Ax3 Bx1"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("example.") else None,
)
def test_handler_signatures(api, start_runtime, handler, event, expected):
    start_java(start_runtime, handler)

    result = api.invoke(event)

    assert result.kind == "response", result
    assert result.json() == expected


def test_void_method_answers_null(api, start_runtime):
    start_java(start_runtime, "example.Methods::nothing")

    assert api.invoke({"a": 1}).body == b"null"


def test_aws_event_classes_bind_their_json_names(api, start_runtime):
    process = start_java(start_runtime, "example.Events::sqs")
    sqs = {
        "Records": [
            {
                "messageId": "m-1",
                "body": "hello",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "attributes": {"ApproximateReceiveCount": "1"},
                "awsRegion": "us-east-1",
            }
        ]
    }

    assert api.invoke(sqs).json() == ["m-1|hello|arn:aws:sqs:us-east-1:123456789012:q|1"]
    assert process.running


def test_aws_scheduled_event_and_case_sensitive_user_pojos(api, start_runtime):
    start_java(start_runtime, "example.Events::scheduled")
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"],
        "detail": {},
    }

    assert api.invoke(event).json() == {
        "detailType": "Scheduled Event",
        "source": "aws.events",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"],
    }


def test_user_pojo_properties_are_case_sensitive(api, start_runtime):
    start_java(start_runtime, "example.Events::person")

    assert api.invoke({"Name": "Ana"}).json() == "null"
    assert api.invoke({"name": "Ana"}).json() == "Ana"


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_error_log_lines(api, start_runtime):
    process = start_java(start_runtime, "example.Failing")

    api.invoke({"n": 42})

    log = process.wait_output("Failing.java:7)\n")
    assert log.startswith(
        "bad input: 42: java.lang.IllegalArgumentException\n"
        "java.lang.IllegalArgumentException: bad input: 42\n"
        "\tat example.Failing.validate(Failing.java:9)\n"
        "\tat example.Failing.handleRequest(Failing.java:14)\n"
        "\tat example.Failing.handleRequest(Failing.java:7)\n"
    )


def test_method_handler_errors_keep_the_reflection_frames_as_on_aws(api, start_runtime):
    start_java(start_runtime, "example.Failing::viaMethod")

    trace = api.invoke({"n": 1}).json()["stackTrace"]

    assert trace[:2] == ["example.Failing.validate(Failing.java:9)", "example.Failing.viaMethod(Failing.java:20)"]
    assert len(trace) > 2
    assert all(frame.startswith(("java.base/jdk.internal.reflect.", "java.base/java.lang.reflect.Method.")) for frame in trace[2:])


def test_cause_is_logged_not_posted(api, start_runtime):
    process = start_java(start_runtime, "example.Failing::chained")

    payload = api.invoke({"n": 1}).json()

    assert list(payload) == ["errorMessage", "errorType", "stackTrace"]
    assert (payload["errorType"], payload["errorMessage"]) == ("java.lang.IllegalStateException", "wrapped")
    assert "Caused by: java.lang.IllegalArgumentException: bad input: 1\n" in process.wait_output("Caused by")


def test_virtual_machine_error_ends_the_runtime(api, start_runtime):
    process = start_java(start_runtime, "example.Failing::fatal")

    result = api.invoke({"n": 1})

    assert (result.json()["errorType"], result.json()["errorMessage"]) == ("java.lang.OutOfMemoryError", "simulated: 1")
    assert process.wait_exit() == 1


@pytest.mark.parametrize(
    "handler, expected",
    [
        ("example.NotAHandler", {"errorMessage": "Class does not implement an appropriate handler interface: example.NotAHandler"}),
        (
            "example.NoDefaultConstructor::handle",
            {"errorMessage": "Class example.NoDefaultConstructor has no public zero-argument constructor", "errorType": "java.lang.Exception"},
        ),
        ("example.Echo::handleRequest::", {"errorMessage": "Invalid handler: `example.Echo::handleRequest::'"}),
    ],
)
def test_unusable_handlers_are_reported_by_each_invocation(api, start_runtime, handler, expected):
    process = start_java(start_runtime, handler)

    results = [api.invoke({}), api.invoke({})]

    assert [result.json() for result in results] == [expected, expected]
    assert all(result.headers["lambda-runtime-function-error-type"] == "Runtime.BadFunctionCode" for result in results)
    assert api.init_errors == [] and process.running


def test_malformed_client_context_fails_only_that_invocation(api, start_runtime):
    process = start_java(start_runtime, "example.ClientContextHandler")

    result = api.invoke({}, client_context="{not json")

    assert result.json()["errorType"] == "java.lang.IllegalArgumentException"
    assert result.json()["errorMessage"].startswith("Cannot parse Lambda-Runtime-Client-Context as JSON: ")
    assert api.invoke({}).json()["client_context"] is None
    assert process.running


def test_throwing_constructor_is_an_init_error(api, start_runtime):
    process = start_java(start_runtime, "example.BadConstructor")

    posted = api.wait_init_error()

    assert posted.json() == {"errorMessage": "no database", "errorType": "java.lang.IllegalStateException"}
    assert posted.headers["lambda-runtime-function-error-type"] == "Runtime.BadFunctionCode"
    assert process.wait_exit() == 1
    assert api.next_calls == []
    assert process.stdout.startswith("no database: java.lang.IllegalStateException\njava.lang.IllegalStateException: no database\n")


# ---------------------------------------------------------------------------
# Context, logging, class loading
# ---------------------------------------------------------------------------


def test_context_proxy_object_methods(api, start_runtime):
    start_java(start_runtime, "example.Methods::describeContext")

    described = api.invoke({}, request_id="req-ctx").json()

    assert described == "LambdaContext(awsRequestId=req-ctx, functionName=%s)|true|true|true|proxy=true" % FUNCTION_NAME


def test_client_context_maps_are_string_maps(api, start_runtime):
    start_java(start_runtime, "example.ClientContextHandler")
    client_context = {"client": {"installation_id": "i-1", "app_title": "T", "app_package_name": "p"},
                      "custom": {"n": 1}, "env": {"platform": "Android"}}
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}

    result = api.invoke({}, client_context=json.dumps(client_context), cognito_identity=json.dumps(identity), tenant_id="t").json()

    assert result == {
        "client_context": {"installation_id": "i-1", "app_title": "T", "app_package_name": "p",
                           "custom": {"n": "1"}, "env": {"platform": "Android"}},  # Map<String, String>
        "identity": ["id-1", "pool-1"],
        "tenant_id": "t",
    }


def test_context_methods_the_runtime_does_not_know(api, start_runtime):
    # A later aws-lambda-java-core may add methods: they fail clearly, the others keep working.
    start_java(start_runtime, "example.future.AccountHandler::handle", {"": JAVA_FUTURE_APP})

    assert api.invoke({}).json() == FUNCTION_NAME + "|getAccountId is not provided by this Lambda runtime|true"


@pytest.mark.parametrize(
    "class_name, visible",
    [
        ("example.Echo", True),
        ("com.amazonaws.services.lambda.runtime.Context", True),
        ("kindling.runtime.Bootstrap", False),  # the runtime's classes stay out of the function's sight
        ("java.sql.Connection", True),  # platform modules are there
    ],
)
def test_function_class_loader_sees_the_function_and_the_jdk_only(api, start_runtime, class_name, visible):
    start_java(start_runtime, "example.Methods::visible")

    assert api.invoke(class_name).json() is visible


@pytest.mark.parametrize("level", [None, "INFO"])
def test_lambda_logger_and_stdout(api, start_runtime, level):
    env = {"AWS_LAMBDA_LOG_LEVEL": level} if level else {}
    process = start_java(start_runtime, "example.Logging::handle", env=env)

    same_logger = api.invoke({}).json()

    stdout = process.wait_output("stdout h\u00e9llo\n")
    expected = ["plain line", "bytes line"]
    if level is None:
        expected.append("[DEBUG] debug hidden")
    expected += ["[WARN] warn shown", "via LambdaRuntime", "stdout h\u00e9llo"]
    assert stdout.splitlines() == expected
    assert "stderr line" in process.wait_stderr("stderr line")
    # The context's logger is the one LambdaRuntime.getLogger() returns, even in static initializers.
    assert same_logger is True


def test_dependency_jars_in_lib(api, start_runtime, task_root):
    files = {"": JAVA_FUNCTIONS, "lib/aws-lambda-java-core.jar": JAVA_CORE_JAR, "lib/greeter.jar": GREETER_JAR}
    start_java(start_runtime, "example.LibUser::handle", files)

    assert api.invoke("ana").json() == "hi ana via %s/lib/greeter.jar" % task_root


def test_layer_jars_in_opt_java_lib(api, start_runtime, opt_dir, java_build):
    os.makedirs(os.path.join(opt_dir, "java", "lib"))
    shutil.copyfile(java_build.greeter_jar, os.path.join(opt_dir, "java", "lib", "greeter.jar"))
    start_java(start_runtime, "example.LibUser::handle", {"": JAVA_FUNCTIONS}, opt_dir=opt_dir)

    assert api.invoke("bo").json() == "hi bo via %s/java/lib/greeter.jar" % opt_dir


def test_missing_dependency_is_a_class_loading_error(api, start_runtime):
    # Without lib/greeter.jar the handler class links, but its method fails when it runs.
    start_java(start_runtime, "example.LibUser::handle", {"": JAVA_FUNCTIONS})

    payload = api.invoke("x").json()

    assert (payload["errorType"], payload["errorMessage"]) == ("java.lang.NoClassDefFoundError", "example/lib/Greeter")


# ---------------------------------------------------------------------------
# JVM flags
# ---------------------------------------------------------------------------


def test_lambda_jvm_flags_by_default(api, start_runtime):
    start_java(start_runtime, "example.ToolOptions::handle", env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"})

    result = api.invoke({}).json()

    assert java_heap_kb(512) == 445645  # AWS's value for 512 MB
    for flag in ("-XX:MaxHeapSize=445645k", "-XX:+UseSerialGC", "-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1", "-Xshare:auto"):
        assert flag in result["arguments"]
    assert result["property"] is None
    assert result["charset"] == "UTF-8"
    assert 400 * 2**20 < result["max_heap"] <= 445645 * 1024


def test_java_tool_options_are_honoured_and_override_the_defaults(api, start_runtime):
    options = "-Dkindling.test.flag=on -XX:TieredStopAtLevel=4 -Xmx64m -XX:+UseParallelGC"
    process = start_java(start_runtime, "example.ToolOptions::handle", env={"JAVA_TOOL_OPTIONS": options})

    result = api.invoke({}).json()

    assert result["property"] == "on"
    assert "-XX:TieredStopAtLevel=4" in result["arguments"]
    assert not any(flag.startswith(("-XX:TieredStopAtLevel=1", "-XX:MaxHeapSize", "-XX:+UseSerialGC")) for flag in result["arguments"])
    assert result["max_heap"] <= 64 * 2**20
    assert "Picked up JAVA_TOOL_OPTIONS: " + options in process.stderr


def test_cds_archive_is_used(api, start_runtime, java_build):
    assert java_build.runtime.archive and os.path.getsize(java_build.runtime.archive) > 0
    process = start_java(start_runtime, "example.Echo", env={"JAVA_TOOL_OPTIONS": "-Xlog:class+load=info"})

    assert api.invoke(1).json() == 1

    loaded = process.stdout
    assert "kindling.runtime.Bootstrap source: shared objects file (top)" in loaded
    assert "kindling.runtime.RuntimeApi$HttpConnection source: shared objects file (top)" in loaded


def test_stale_cds_archive_is_ignored_silently(api, start_runtime, java_build, tmp_path):
    copy = JavaRuntime(str(tmp_path / "kindling-java-runtime.jar"))
    shutil.copyfile(java_build.runtime.jar, copy.jar)
    copy = create_cds_archive(copy, str(tmp_path / "kindling-java-runtime.jsa"))
    os.utime(copy.jar, (1, 1))  # the jar no longer matches the archive
    process = start_java(start_runtime, "example.Echo", java_runtime=copy)

    assert api.invoke({"still": "works"}).json() == {"still": "works"}
    assert process.stdout == ""
    assert "shared archive" not in process.stderr


def test_launch_command_shape(java_build):
    command = launch_command("java", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, java_runtime=java_build.runtime, opt_dir="/layers")

    assert command == [
        java_build.runtime.java,
        "-XX:MaxHeapSize=%dk" % math.ceil(1024 * 1024 * 0.85),
        "-XX:+UseSerialGC",
        "-XX:+TieredCompilation",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        "-XX:SharedArchiveFile=" + java_build.runtime.archive,
        "-Xlog:cds*=off",
        "-Dfile.encoding=UTF-8",
        "-XX:-UsePerfData",
        "-Djava.net.preferIPv4Stack=true",
        "-XX:+ErrorFileToStderr",
        "-Dkindling.opt=/layers",
        "-cp",
        java_build.runtime.jar,
        "kindling.runtime.Bootstrap",
    ]


# ---------------------------------------------------------------------------
# The JSON codec and binder, directly
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codec(java_build):
    """check(cases) -> results, through one CodecCheck process per call."""
    classpath = os.pathsep.join([java_build.runtime.jar, java_build.unit_classes])

    def check(cases):
        lines = "".join(json.dumps(case) + "\n" for case in cases)
        output = subprocess.run(
            [java_build.runtime.java, "-cp", classpath, "kindling.runtime.CodecCheck"],
            input=lines.encode(),
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        results = [json.loads(line) for line in output.split("\n") if line]  # not splitlines: U+2028
        assert len(results) == len(cases)
        return results

    return check


def random_document(rng, depth=0):
    kinds = ["int", "big", "float", "string", "bool", "null"] + (["list", "object"] * 2 if depth < 5 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-(2**40), 2**40)
    if kind == "big":
        return rng.choice([2**63, -(2**63) - 1, 10**25, 2**31, -(2**31) - 1])
    if kind == "float":
        return rng.choice([0.0, -0.5, 1e-7, 6.02e23, 1.7976931348623157e308, 5e-324, rng.uniform(-1e6, 1e6)])
    if kind == "string":
        alphabet = "ab \"\\/\n\t\r\b\f\u0000\u001f\u007f\u00e9\u4e2d\U0001f600"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_document(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {random_document_key(rng): random_document(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def random_document_key(rng):
    return "".join(rng.choice("kK_\u00e9\"\\\n") for _ in range(rng.randint(0, 6)))


def test_json_round_trips_random_documents(codec):
    rng = random.Random(20240531)
    documents = [random_document(rng) for _ in range(300)]
    cases = []
    for document in documents:
        text = json.dumps(document, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        cases.append({"op": "roundtrip", "text": text})

    results = codec(cases)

    for document, result in zip(documents, results):
        assert result["ok"], result
        assert json.loads(result["out"]) == document


def test_json_writer_escapes_only_what_json_requires(codec):
    [result] = codec([{"op": "roundtrip", "text": json.dumps(["\u0001\n\"\\/\u00e9\U0001f600\u2028"])}])

    assert result["out"] == '["\\u0001\\n\\"\\\\/\u00e9\U0001f600\u2028"]'


def test_json_non_numeric_numbers_and_depth_limit(codec):
    results = codec(
        [
            {"op": "roundtrip", "text": "[NaN, Infinity, -Infinity, -0.0, 1E2, 1e-2]"},
            {"op": "roundtrip", "text": "[" * 1000 + "]" * 1000},
            {"op": "roundtrip", "text": "[" * 1002 + "]" * 1002},
        ]
    )

    assert json.loads(results[0]["out"]) == ["NaN", "Infinity", "-Infinity", -0.0, 100.0, 0.01]
    assert results[1]["ok"]
    assert not results[2]["ok"] and "nested deeper than 1000" in results[2]["error"]


@pytest.mark.parametrize(
    "text",
    ["", " ", "{", "[1,]", '{"a" 1}', '{"a":1,}', "tru", "nul", '"unterminated', '"bad \\x escape"', "[1] 2", "-", "1.", "1e", ".5",
     "{'a':1}", "[1 2]", '{"a":1 "b":2}', '"\\u12"', "+1"],
)
def test_json_rejects_invalid_documents(codec, text):
    [result] = codec([{"op": "roundtrip", "text": text}])

    assert not result["ok"]
    assert result["error"].startswith("ParseException: ") and " at line " in result["error"]


@pytest.mark.parametrize(
    "field, text, expected",
    [
        ("intValue", '"42"', "42"),
        ("intValue", "2.9", "2"),
        ("intValue", "null", "0"),
        ("intValue", "[5]", "5"),
        ("boxedInt", "null", "null"),
        ("longValue", "9007199254740993", "9007199254740993"),
        ("doubleValue", '"1.5"', "1.5"),
        ("boolValue", '"true"', "true"),
        ("boolValue", "1", "true"),
        ("charValue", '"x"', '"x"'),
        ("string", "12", '"12"'),
        ("string", "true", '"true"'),
        ("decimal", "1.50", "1.50"),
        ("decimal", "1e400", "1E+400"),
        ("object", '{"a":[1,2.5,"x",null]}', '{"a":[1,2.5,"x",null]}'),
        ("listOfInt", "7", "[7]"),
        ("listOfInt", '[1,"2",null]', "[1,2,null]"),
        ("listOfLists", '[["a"],[]]', '[["a"],[]]'),
        ("mapOfLong", '{"a":1,"b":"2"}', '{"a":1,"b":2}'),
        ("mapByEnum", '{"PAID":1,"BOGUS":2}', '{"PAID":1}'),
        ("intArray", "[1,2]", "[1,2]"),
        ("bytes", '"aGk="', '"aGk="'),
        ("optional", '"x"', '"x"'),
        ("optional", "null", "null"),
        ("setOfString", '["a","a"]', '["a"]'),
        ("status", '"PAID"', '"PAID"'),
        ("status", '"NOPE"', "null"),
        ("status", "1", '"PAID"'),
        ("instant", '"2024-05-01T12:00:00.123Z"', "1714564800.123000000"),
        ("instant", "1714564800.5", "1714564800.500000000"),
        ("localDate", '"2024-05-01"', "[2024,5,1]"),
        ("localDateTime", '"2024-05-01T12:30:00"', "[2024,5,1,12,30]"),
        ("localDateTime", "[2024,5,1,12,30,15,5]", "[2024,5,1,12,30,15,5]"),
        ("date", "1714564800123", "1714564800123"),
        ("date", '"2024-05-01T12:00:00Z"', "1714564800000"),
    ],
)
def test_binding_declared_types(codec, field, text, expected):
    [result] = codec([{"op": "bind", "type": field, "text": text}])

    assert result["ok"], result
    assert result["out"] == expected


@pytest.mark.parametrize(
    "field, text, message",
    [
        ("intValue", "3000000000", "Numeric value (3000000000) out of range of int"),
        ("intValue", '"abc"', "Cannot deserialize value of type `int` from String \"abc\": not a valid number"),
        ("string", "{}", "Cannot deserialize value of type `java.lang.String` from Object value"),
        ("listOfInt", '{"a":1}', "Cannot deserialize value of type `java.lang.Integer` from Object value"),
        ("bytes", '"***"', "not valid Base64"),
        ("instant", '"yesterday"', "Cannot deserialize value of type `java.time.Instant` from String value"),
    ],
)
def test_binding_errors_explain_themselves(codec, field, text, message):
    [result] = codec([{"op": "bind", "type": field, "text": text}])

    assert not result["ok"]
    assert message in result["error"]
