"""End-to-end tests of Kindling's runtime bootstraps (Python, Node.js, Java, Ruby).

Every test starts the real bootstrap process with Kindling's command line
and environment, drives it through the fake Runtime API in harness.py, and
asserts on exactly what the runtime posted back (and printed). The tests in
this module run for every runtime where the behaviour is shared; the Java and
Ruby specifics live in test_java.py and test_ruby.py.

    python3 -m pytest runtimes/tests -q
"""

import json
import re
import threading
import time

import pytest

from harness import FUNCTION_ARN, FUNCTION_NAME
from java_fixtures import JAVA_APP

ALL = ["python", "node", "java", "ruby"]
NBSP = "\u00a0"

# The same small functions in every language, keyed by runtime: (handler, files).
ECHO = {
    "python": ("app.handler", {"app.py": "def handler(event, context):\n    return event\n"}),
    "node": ("index.handler", {"index.js": "exports.handler = async (event) => event;\n"}),
    "java": ("example.Echo", {"": JAVA_APP}),
    "ruby": ("app.handler", {"app.rb": "def handler(event:, context:)\n  event\nend\n"}),
}

COUNTER = {
    "python": (
        "app.handler",
        {
            "app.py": """
                import os
                calls = 0

                def handler(event, context):
                    global calls
                    calls += 1
                    return {"calls": calls, "pid": os.getpid()}
            """
        },
    ),
    "node": (
        "index.handler",
        {
            "index.js": """
                let calls = 0;
                exports.handler = async () => {
                  calls += 1;
                  return { calls, pid: process.pid };
                };
            """
        },
    ),
    "java": ("example.Counter", {"": JAVA_APP}),
    "ruby": (
        "app.handler",
        {
            "app.rb": """
                $calls = 0

                def handler(event:, context:)
                  $calls += 1
                  { calls: $calls, pid: Process.pid }
                end
            """
        },
    ),
}

FAILING = {
    "python": (
        "app.handler",
        {
            "app.py": """
                def validate(event):
                    raise ValueError("bad input: %s" % event["n"])

                def handler(event, context):
                    validate(event)
            """
        },
    ),
    "node": (
        "index.handler",
        {
            "index.js": """
                function validate(event) {
                  throw new TypeError(`bad input: ${event.n}`);
                }
                exports.handler = async (event) => validate(event);
            """
        },
    ),
    "java": ("example.Failing", {"": JAVA_APP}),
    "ruby": (
        "app.handler",
        {
            "app.rb": """
                def validate(event)
                  raise ArgumentError, "bad input: #{event['n']}"
                end

                def handler(event:, context:)
                  validate(event)
                end
            """
        },
    ),
}

ENVIRONMENT = {
    "python": (
        "app.handler",
        {
            "app.py": """
                import os

                def handler(event, context):
                    names = ["AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "LAMBDA_TASK_ROOT",
                             "AWS_REGION", "_X_AMZN_TRACE_ID", "CUSTOM_SETTING"]
                    return {
                        "env": {name: os.environ.get(name) for name in names},
                        "context": {
                            "aws_request_id": context.aws_request_id,
                            "function_name": context.function_name,
                            "function_version": context.function_version,
                            "invoked_function_arn": context.invoked_function_arn,
                            "memory_limit_in_mb": context.memory_limit_in_mb,
                            "log_group_name": context.log_group_name,
                            "log_stream_name": context.log_stream_name,
                        },
                    }
            """
        },
    ),
    "node": (
        "index.handler",
        {
            "index.js": """
                exports.handler = async (event, context) => {
                  const names = ["AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "LAMBDA_TASK_ROOT",
                                 "AWS_REGION", "_X_AMZN_TRACE_ID", "CUSTOM_SETTING"];
                  const env = {};
                  for (const name of names) env[name] = process.env[name] ?? null;
                  return {
                    env,
                    context: {
                      aws_request_id: context.awsRequestId,
                      function_name: context.functionName,
                      function_version: context.functionVersion,
                      invoked_function_arn: context.invokedFunctionArn,
                      memory_limit_in_mb: context.memoryLimitInMB,
                      log_group_name: context.logGroupName,
                      log_stream_name: context.logStreamName,
                    },
                  };
                };
            """
        },
    ),
    "java": ("example.Environment", {"": JAVA_APP}),
    "ruby": (
        "app.handler",
        {
            "app.rb": """
                NAMES = %w[AWS_LAMBDA_FUNCTION_NAME _HANDLER LAMBDA_TASK_ROOT AWS_REGION _X_AMZN_TRACE_ID CUSTOM_SETTING].freeze

                def handler(event:, context:)
                  {
                    env: NAMES.to_h { |name| [name, ENV[name]] },
                    context: {
                      aws_request_id: context.aws_request_id,
                      function_name: context.function_name,
                      function_version: context.function_version,
                      invoked_function_arn: context.invoked_function_arn,
                      memory_limit_in_mb: context.memory_limit_in_mb,
                      log_group_name: context.log_group_name,
                      log_stream_name: context.log_stream_name,
                    },
                  }
                end
            """
        },
    ),
}

REMAINING_TIME = {
    "python": (
        "app.handler",
        {
            "app.py": """
                import time

                def handler(event, context):
                    first = context.get_remaining_time_in_millis()
                    time.sleep(0.2)
                    return [first, context.get_remaining_time_in_millis()]
            """
        },
    ),
    "node": (
        "index.handler",
        {
            "index.js": """
                exports.handler = async (event, context) => {
                  const first = context.getRemainingTimeInMillis();
                  await new Promise((resolve) => setTimeout(resolve, 200));
                  return [first, context.getRemainingTimeInMillis()];
                };
            """
        },
    ),
    "java": ("example.RemainingTime", {"": JAVA_APP}),
    "ruby": (
        "app.handler",
        {
            "app.rb": """
                def handler(event:, context:)
                  first = context.get_remaining_time_in_millis
                  sleep 0.2
                  [first, context.get_remaining_time_in_millis]
                end
            """
        },
    ),
}

CLIENT_CONTEXT = {
    "python": (
        "app.handler",
        {
            "app.py": """
                def handler(event, context):
                    cc = context.client_context
                    return {
                        "client_context": None if cc is None else {
                            "installation_id": cc.client.installation_id,
                            "app_title": cc.client.app_title,
                            "app_package_name": cc.client.app_package_name,
                            "custom": cc.custom,
                            "env": cc.env,
                        },
                        "identity": [context.identity.cognito_identity_id,
                                     context.identity.cognito_identity_pool_id],
                        "tenant_id": context.tenant_id,
                    }
            """
        },
    ),
    "node": (
        "index.handler",
        {
            "index.js": """
                exports.handler = async (event, context) => {
                  const cc = context.clientContext;
                  return {
                    client_context: cc === undefined ? null : {
                      installation_id: cc.client.installation_id,
                      app_title: cc.client.app_title,
                      app_package_name: cc.client.app_package_name,
                      custom: cc.custom,
                      env: cc.env,
                    },
                    identity: context.identity === undefined ? [null, null]
                      : [context.identity.cognitoIdentityId, context.identity.cognitoIdentityPoolId],
                    tenant_id: context.tenantId ?? null,
                  };
                };
            """
        },
    ),
    "java": ("example.ClientContextHandler", {"": JAVA_APP}),
    "ruby": (
        "app.handler",
        {
            "app.rb": """
                # On AWS's Ruby runtime client_context and identity are the parsed JSON hashes.
                def handler(event:, context:)
                  cc = context.client_context
                  identity = context.identity || {}
                  {
                    client_context: cc && {
                      installation_id: cc['client']['installation_id'],
                      app_title: cc['client']['app_title'],
                      app_package_name: cc['client']['app_package_name'],
                      custom: cc['custom'],
                      env: cc['env'],
                    },
                    identity: [identity['cognitoIdentityId'], identity['cognitoIdentityPoolId']],
                    tenant_id: context.tenant_id,
                  }
                end
            """
        },
    ),
}

# What each runtime sends as Lambda-Runtime-Function-Error-Type for an exception from the
# handler: Kindling's Python and Node runtimes send the errorType; AWS's Java runtime sends
# Runtime.UserException; AWS's Ruby runtime the errorType for the classes it lists (see
# test_ruby.py for the others).
HANDLER_ERROR_HEADER = {"python": None, "node": None, "java": "Runtime.UserException", "ruby": None}

# Exit status after an init error.
INIT_ERROR_EXIT = {"python": 1, "node": 129, "java": 1, "ruby": 252}


def expect_init_error(api, process, expected_exit=None, header=None):
    """The posted init error (asserting the process then exits non-zero, before any /next).

    The Lambda-Runtime-Function-Error-Type header must be `header`, or the errorType if None.
    """
    posted = api.wait_init_error()
    code = process.wait_exit()
    assert code != 0
    if expected_exit is not None:
        assert code == expected_exit
    assert api.next_calls == []
    payload = posted.json()
    assert posted.headers["lambda-runtime-function-error-type"] == (header or payload["errorType"])
    return payload


def log_records(stdout):
    """Log records are newline-terminated; a record may hold \\r-separated lines."""
    return stdout.split("\n")[:-1]


# ---------------------------------------------------------------------------
# Every runtime
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ALL)
def test_echo_returns_the_event(api, start_runtime, runtime):
    handler, files = ECHO[runtime]
    start_runtime(runtime, handler, files)
    event = {"greeting": "h\u00e9llo w\u00f6rld", "numbers": [1, 2.5, None, True], "nested": {"k": []}}

    result = api.invoke(event)

    assert result.kind == "response"
    assert result.json() == event
    assert result.headers["content-type"] == "application/json"
    api.wait_next_calls(2)  # and the runtime asks for the next event


@pytest.mark.parametrize("runtime", ALL)
def test_returns_json_documents_and_null(api, start_runtime, runtime):
    files = {
        "python": {
            "app.py": """
                import decimal

                def handler(event, context):
                    if event["kind"] == "proxy":
                        return {"statusCode": 201, "headers": {"X-Id": context.aws_request_id},
                                "body": '{"ok": true}', "isBase64Encoded": False}
                    if event["kind"] == "decimal":
                        return [decimal.Decimal("10"), decimal.Decimal("1.5")]
                    return None
            """
        },
        "node": {
            "index.js": """
                exports.handler = async (event, context) => {
                  if (event.kind === "proxy") {
                    return { statusCode: 201, headers: { "X-Id": context.awsRequestId },
                             body: '{"ok": true}', isBase64Encoded: false };
                  }
                  return undefined;
                };
            """
        },
        "java": {"": JAVA_APP},
        "ruby": {
            "app.rb": """
                def handler(event:, context:)
                  return nil unless event['kind'] == 'proxy'

                  { statusCode: 201, headers: { 'X-Id' => context.aws_request_id },
                    body: '{"ok": true}', isBase64Encoded: false }
                end
            """
        },
    }[runtime]
    handler = {"python": "app.handler", "node": "index.handler", "java": "example.Documents", "ruby": "app.handler"}
    start_runtime(runtime, handler[runtime], files)

    proxy = api.invoke({"kind": "proxy"}, request_id="req-proxy")
    nothing = api.invoke({"kind": "none"})

    assert proxy.json() == {
        "statusCode": 201,
        "headers": {"X-Id": "req-proxy"},
        "body": '{"ok": true}',
        "isBase64Encoded": False,
    }
    assert nothing.kind == "response" and nothing.body == b"null"
    if runtime == "python":
        assert api.invoke({"kind": "decimal"}).json() == [10, 1.5]


@pytest.mark.parametrize("runtime", ALL)
def test_unhandled_error_is_posted_with_aws_shape_and_runtime_continues(api, start_runtime, runtime):
    handler, files = FAILING[runtime]
    process = start_runtime(runtime, handler, files)

    result = api.invoke({"n": 42}, request_id="req-fail")

    assert result.kind == "error"
    payload = result.json()
    if runtime == "python":
        assert list(payload) == ["errorMessage", "errorType", "requestId", "stackTrace"]
        assert payload["errorType"] == "ValueError"
        assert payload["errorMessage"] == "bad input: 42"
        assert payload["requestId"] == "req-fail"
        assert [line.split(", in ")[1].split("\n")[0] for line in payload["stackTrace"]] == ["handler", "validate"]
        assert all("app.py" in frame and "bootstrap" not in frame for frame in payload["stackTrace"])
        assert payload["stackTrace"][1].endswith('raise ValueError("bad input: %s" % event["n"])\n')
    elif runtime == "node":
        assert list(payload) == ["errorType", "errorMessage", "trace"]
        assert payload["errorType"] == "TypeError"
        assert payload["errorMessage"] == "bad input: 42"
        assert payload["trace"][0] == "TypeError: bad input: 42"
        assert "at validate (" in payload["trace"][1] and "index.js" in payload["trace"][1]
    elif runtime == "java":
        assert list(payload) == ["errorMessage", "errorType", "stackTrace"]
        assert payload["errorType"] == "java.lang.IllegalArgumentException"
        assert payload["errorMessage"] == "bad input: 42"
        # The user's frames only: the bridge method javac adds appears, as on AWS.
        assert payload["stackTrace"] == [
            "example.Failing.validate(Failing.java:9)",
            "example.Failing.handleRequest(Failing.java:14)",
            "example.Failing.handleRequest(Failing.java:7)",
        ]
    else:
        assert list(payload) == ["errorMessage", "errorType", "stackTrace"]
        assert payload["errorType"] == "Function<ArgumentError>"
        assert payload["errorMessage"] == "bad input: 42"
        assert [re.sub(r"^.*/", "", frame) for frame in payload["stackTrace"]] == [
            "app.rb:3:in `validate'",
            "app.rb:7:in `handler'",
        ]
    assert result.headers["lambda-runtime-function-error-type"] == (HANDLER_ERROR_HEADER[runtime] or payload["errorType"])
    assert result.headers["content-type"] == "application/json"

    # The process survives and serves the next event.
    assert api.invoke({"n": 7}).json()["errorMessage"] == "bad input: 7"
    assert process.running


def test_python_error_is_logged_as_one_record(api, start_runtime):
    handler, files = FAILING["python"]
    process = start_runtime("python", handler, files)

    api.invoke({"n": 42})

    stdout = process.wait_output("[ERROR] ValueError")
    record = next(r for r in log_records(stdout) if r.startswith("[ERROR]"))
    lines = record.split("\r")
    assert lines[0] == "[ERROR] ValueError: bad input: 42"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith(NBSP * 2 + 'File "') and "app.py" in lines[2]
    assert lines[3].startswith(NBSP * 4 + "validate(event)")


def test_node_error_is_logged_as_one_line(api, start_runtime):
    handler, files = FAILING["node"]
    process = start_runtime("node", handler, files)

    api.invoke({"n": 42}, request_id="req-log")

    stdout = process.wait_output("Invoke Error")
    line = next(r for r in log_records(stdout) if "Invoke Error" in r)
    timestamp, request_id, level, message = line.split("\t", 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp)
    assert (request_id, level) == ("req-log", "ERROR")
    assert message.startswith("Invoke Error \t")
    logged = json.loads(message.split("\t", 1)[1])
    assert logged["errorType"] == "TypeError" and logged["errorMessage"] == "bad input: 42"
    assert logged["stack"][0] == "TypeError: bad input: 42"


@pytest.mark.parametrize("runtime", ALL)
def test_missing_module_is_an_import_error(api, start_runtime, runtime):
    if runtime == "java":
        # AWS's Java runtime finishes its init and reports the missing class on every invocation.
        process = start_runtime("java", "missing.Handler::handleRequest", {"": JAVA_APP})
        first = api.invoke({})
        second = api.invoke({})
        assert first.kind == second.kind == "error"
        assert first.json() == second.json() == {
            "errorMessage": "Class not found: missing.Handler",
            "errorType": "java.lang.ClassNotFoundException",
        }
        assert first.headers["lambda-runtime-function-error-type"] == "Runtime.BadFunctionCode"
        assert api.init_errors == [] and process.running
        assert "Class not found: missing.Handler: java.lang.ClassNotFoundException" in process.wait_output("Class not found")
        return
    process = start_runtime(runtime, "missing.handler", {})

    payload = expect_init_error(api, process, expected_exit=INIT_ERROR_EXIT[runtime])

    if runtime == "python":
        assert payload == {
            "errorMessage": "Unable to import module 'missing': No module named 'missing'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        }
        assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'missing'" in process.stdout
    elif runtime == "node":
        assert payload["errorType"] == "Runtime.ImportModuleError"
        assert payload["errorMessage"].startswith("Error: Cannot find module 'missing'")
        assert payload["trace"][0].startswith("Runtime.ImportModuleError: Error: Cannot find module 'missing'")
        assert "\tundefined\tERROR\tUncaught Exception \t" in process.stdout
    else:
        assert payload["errorType"] == "Init<LoadError>"
        assert payload["errorMessage"] == "cannot load such file -- missing"
        assert all("bootstrap.rb" not in frame for frame in payload["stackTrace"])
        assert "Init error when loading handler missing.handler\n{\n" in process.stdout


def test_python_missing_dependency_names_the_dependency(api, start_runtime):
    process = start_runtime("python", "app.handler", {"app.py": "import not_installed_lib\n"})

    payload = expect_init_error(api, process)

    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == "Unable to import module 'app': No module named 'not_installed_lib'"


@pytest.mark.parametrize("runtime", ALL)
def test_missing_handler_function(api, start_runtime, runtime):
    if runtime == "python":
        process = start_runtime("python", "app.nope", {"app.py": "def handler(e, c):\n    return 1\n"})
        payload = expect_init_error(api, process)
        assert payload == {
            "errorMessage": "Handler 'nope' missing on module 'app'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        }
    elif runtime == "node":
        process = start_runtime("node", "index.nope", {"index.js": "exports.handler = async () => 1;\n"})
        payload = expect_init_error(api, process)
        assert payload["errorType"] == "Runtime.HandlerNotFound"
        assert payload["errorMessage"] == "index.nope is undefined or not exported"
    elif runtime == "java":
        # Reported by each invocation; the errorType is absent, as in AWS's payload.
        process = start_runtime("java", "example.Echo::nope", {"": JAVA_APP})
        result = api.invoke({})
        assert result.json() == {
            "errorMessage": "No public method named nope with appropriate method signature found on class example.Echo"
        }
        assert result.headers["lambda-runtime-function-error-type"] == "Runtime.BadFunctionCode"
        assert api.invoke({}).kind == "error" and process.running
    else:
        # AWS's Ruby runtime only finds out when it calls the method: a critical error that
        # fails the invocation and ends the runtime.
        process = start_runtime("ruby", "app.nope", {"app.rb": "def handler(event:, context:)\n  1\nend\n"})
        result = api.invoke({})
        assert result.json() == {
            "errorMessage": "undefined method `nope' for main:Object",
            "errorType": "Function<NoMethodError>",
            "stackTrace": [],
        }
        assert result.headers["lambda-runtime-function-error-type"] == "Function<NoMethodError>"
        assert process.wait_exit() == 255
        assert "Critical exception from handler\n" in process.stdout


def test_node_handler_that_is_not_a_function(api, start_runtime):
    process = start_runtime("node", "index.handler", {"index.js": "exports.handler = 42;\n"})

    payload = expect_init_error(api, process)

    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "index.handler is not a function"


@pytest.mark.parametrize("runtime", ALL)
def test_syntax_error_in_user_code(api, start_runtime, runtime):
    if runtime == "python":
        process = start_runtime("python", "app.handler", {"app.py": "x = = 1\n"})
        payload = expect_init_error(api, process)
        assert payload["errorType"] == "Runtime.UserCodeSyntaxError"
        assert payload["errorMessage"].startswith("Syntax error in module 'app': invalid syntax")
        assert re.match(r'  File ".*app\.py" Line 1\n    x = = 1', payload["stackTrace"][0])
    elif runtime == "node":
        process = start_runtime("node", "index.handler", {"index.js": "exports.handler = (;\n"})
        payload = expect_init_error(api, process)
        assert payload["errorType"] == "Runtime.UserCodeSyntaxError"
        assert payload["errorMessage"].startswith("SyntaxError: ")
    elif runtime == "java":
        # Java's equivalent: a class file this JVM cannot read (compiled for a newer Java).
        process = start_runtime("java", "example.Future::handle", {"": JAVA_APP})
        payload = expect_init_error(api, process, expected_exit=1, header="Runtime.BadFunctionCode")
        assert list(payload) == ["errorMessage", "errorType"]
        assert payload["errorType"] == "java.lang.UnsupportedClassVersionError"
        assert payload["errorMessage"].startswith(
            "Error loading class example.Future: example/Future has been compiled by a more recent version of the Java"
            " Runtime (class file version 100.0)"
        )
    else:
        process = start_runtime("ruby", "app.handler", {"app.rb": "x = = 1\n"})
        payload = expect_init_error(api, process, expected_exit=252, header="Function<UserException>")
        assert payload["errorType"] == "Init<SyntaxError>"
        assert "syntax error" in payload["errorMessage"] and "app.rb:1" in payload["errorMessage"]


@pytest.mark.parametrize("runtime", ALL)
def test_malformed_handler_name(api, start_runtime, runtime):
    if runtime == "java":
        process = start_runtime("java", "example.Echo::", {"": JAVA_APP})
        result = api.invoke({})
        assert result.json() == {"errorMessage": "Invalid handler: `example.Echo::'"}
        assert result.headers["lambda-runtime-function-error-type"] == "Runtime.BadFunctionCode"
        assert process.running
        return
    process = start_runtime(runtime, "app", {})

    payload = expect_init_error(api, process, expected_exit=INIT_ERROR_EXIT[runtime])

    if runtime == "python":
        assert payload["errorType"] == "Runtime.MalformedHandlerName"
        assert payload["errorMessage"] == "Bad handler 'app': not enough values to unpack (expected 2, got 1)"
    elif runtime == "node":
        assert payload["errorType"] == "Runtime.MalformedHandlerName"
        assert payload["errorMessage"] == "Bad handler"
    else:
        assert payload["errorType"] == "Init<ArgumentError>"
        assert payload["errorMessage"].startswith('Invalid handler ["app"], must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD')
        assert payload["stackTrace"] == []  # raised inside the runtime itself


@pytest.mark.parametrize("runtime", ALL)
def test_exception_while_loading_module_is_an_init_error(api, start_runtime, runtime):
    if runtime == "java":
        process = start_runtime("java", "example.Boom", {"": JAVA_APP})
        payload = expect_init_error(api, process, expected_exit=1, header="Runtime.BadFunctionCode")
        # AWS's payload names the class only; the cause is in the log.
        assert payload == {"errorMessage": "Error loading class example.Boom", "errorType": "java.lang.ExceptionInInitializerError"}
        log = process.stdout
        assert log.startswith("Error loading class example.Boom: java.lang.ExceptionInInitializerError\n")
        assert "Caused by: java.lang.IllegalStateException: config missing\n" in log
        assert "\tat example.Boom.load(Boom.java:" in log and "kindling" not in log
        return
    files = {
        "python": {"app.py": "raise RuntimeError('config missing')\n"},
        "node": {"index.js": "throw new RangeError('config missing');\n"},
        "ruby": {"app.rb": "raise RangeError, 'config missing'\n"},
    }[runtime]
    process = start_runtime(runtime, "index.handler" if runtime == "node" else "app.handler", files)

    payload = expect_init_error(api, process, header="Function<UserException>" if runtime == "ruby" else None)

    expected_type = {"python": "RuntimeError", "node": "RangeError", "ruby": "Init<RangeError>"}[runtime]
    assert payload["errorType"] == expected_type
    assert payload["errorMessage"] == "config missing"
    trace = payload["trace" if runtime == "node" else "stackTrace"]
    assert any("app.py" in frame or "index.js" in frame or "app.rb" in frame for frame in trace)


@pytest.mark.parametrize("runtime", ALL)
def test_module_state_survives_between_invocations(api, start_runtime, runtime):
    handler, files = COUNTER[runtime]
    process = start_runtime(runtime, handler, files)

    first = api.invoke({}).json()
    second = api.invoke({}).json()

    assert (first["calls"], second["calls"]) == (1, 2)
    assert first["pid"] == second["pid"] == process.pid
    assert process.running


@pytest.mark.parametrize("runtime", ALL)
def test_environment_and_context_fields(api, start_runtime, task_root, runtime):
    handler, files = ENVIRONMENT[runtime]
    start_runtime(runtime, handler, files, env={"CUSTOM_SETTING": "on"})
    trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"

    traced = api.invoke({}, request_id="req-env", trace_id=trace).json()
    untraced = api.invoke({}).json()

    assert traced["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_REGION": "us-east-1",
        # A JVM cannot change its own environment: Java gets the trace id as a system property.
        "_X_AMZN_TRACE_ID": None if runtime == "java" else trace,
        "CUSTOM_SETTING": "on",
    }
    assert untraced["env"]["_X_AMZN_TRACE_ID"] is None  # cleared when an event has no trace
    assert traced["context"] == {
        "aws_request_id": "req-env",
        "function_name": FUNCTION_NAME,
        "function_version": "$LATEST",
        "invoked_function_arn": FUNCTION_ARN,
        # A string in AWS's Python, Node and Ruby runtimes; getMemoryLimitInMB() is an int.
        "memory_limit_in_mb": 256 if runtime == "java" else "256",
        "log_group_name": "/aws/lambda/" + FUNCTION_NAME,
        "log_stream_name": "2024/01/31/[$LATEST]0123456789abcdef0123456789abcdef",
    }
    if runtime == "java":
        assert (traced["trace_property"], traced["trace_context"]) == (trace, trace)
        assert (untraced["trace_property"], untraced["trace_context"]) == (None, None)
        assert traced["context_class_loader_is_function_loader"] is True


@pytest.mark.parametrize("runtime", ALL)
def test_remaining_time_follows_the_deadline(api, start_runtime, runtime):
    handler, files = REMAINING_TIME[runtime]
    start_runtime(runtime, handler, files)
    api.wait_next_calls(1)
    sent_at_ms = int(time.time() * 1000)

    first, second = api.invoke({}, deadline_ms=sent_at_ms + 5000).json()
    answered_at_ms = int(time.time() * 1000)

    assert sent_at_ms + 5000 - answered_at_ms <= first <= 5000
    assert 190 <= first - second <= 1000


@pytest.mark.parametrize("runtime", ["python", "java", "ruby"])
def test_remaining_time_is_zero_after_the_deadline(api, start_runtime, runtime):
    handler, files = REMAINING_TIME[runtime]
    start_runtime(runtime, handler, files)

    assert api.invoke({}, deadline_ms=int(time.time() * 1000) - 1000).json() == [0, 0]


@pytest.mark.parametrize("runtime", ALL)
def test_client_context_identity_and_tenant(api, start_runtime, runtime):
    handler, files = CLIENT_CONTEXT[runtime]
    start_runtime(runtime, handler, files)
    client_context = {
        "client": {
            "installation_id": "inst-1",
            "app_title": "Demo",
            "app_version_name": "1.0",
            "app_version_code": "7",
            "app_package_name": "com.example.demo",
        },
        "custom": {"flag": "x"},
        "env": {"platform": "linux"},
    }
    identity = {"cognitoIdentityId": "us-east-1:id-1", "cognitoIdentityPoolId": "us-east-1:pool-1"}

    rich = api.invoke(
        {}, client_context=json.dumps(client_context), cognito_identity=json.dumps(identity), tenant_id="tenant-7"
    ).json()
    plain = api.invoke({}).json()

    assert rich == {
        "client_context": {
            "installation_id": "inst-1",
            "app_title": "Demo",
            "app_package_name": "com.example.demo",
            "custom": {"flag": "x"},
            "env": {"platform": "linux"},
        },
        "identity": ["us-east-1:id-1", "us-east-1:pool-1"],
        "tenant_id": "tenant-7",
    }
    assert plain == {"client_context": None, "identity": [None, None], "tenant_id": None}


@pytest.mark.parametrize("runtime", ALL)
def test_next_is_a_long_poll_without_client_timeout(api, start_runtime, runtime):
    handler, files = ECHO[runtime]
    start_runtime(runtime, handler, files)
    api.wait_next_calls(1)
    request_id = "req-late"
    # The event arrives only after the runtime has been waiting for a while.
    timer = threading.Timer(1.5, lambda: api.enqueue({"late": True}, request_id=request_id))
    timer.start()
    try:
        assert api.wait_posted(request_id).json() == {"late": True}
    finally:
        timer.cancel()
    assert len(api.next_calls) >= 1


@pytest.mark.parametrize("runtime", ALL)
def test_survives_the_api_dropping_keep_alive_connections(api, start_runtime, runtime):
    handler, files = COUNTER[runtime]
    api.drop_connections_after_post = True
    process = start_runtime(runtime, handler, files)

    calls = [api.invoke({}).json()["calls"] for _ in range(3)]

    assert calls == [1, 2, 3]
    assert process.running


@pytest.mark.parametrize("runtime", ALL)
def test_reads_chunked_next_responses(api, start_runtime, runtime):
    handler, files = ECHO[runtime]
    start_runtime(runtime, handler, files)
    event = {"payload": "x" * 100_000}

    assert api.invoke(event, chunked=True).json() == event
    assert api.invoke({"after": "chunked"}).json() == {"after": "chunked"}


# ---------------------------------------------------------------------------
# Python only
# ---------------------------------------------------------------------------


def test_python_marshal_error(api, start_runtime):
    files = {"app.py": "def handler(event, context):\n    return {'tags': {'a', 'b'}}\n"}
    process = start_runtime("python", "app.handler", files)

    result = api.invoke({}, request_id="req-marshal")

    assert result.kind == "error"
    assert result.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": "req-marshal",
        "stackTrace": [],
    }
    assert result.headers["lambda-runtime-function-error-type"] == "Runtime.MarshalError"
    assert "[ERROR] Runtime.MarshalError: Unable to marshal response" in process.wait_output("MarshalError")
    assert process.running


def test_python_invalid_json_event_is_an_unmarshal_error(api, start_runtime):
    handler, files = ECHO["python"]
    start_runtime("python", handler, files)

    result = api.invoke(raw_body=b"{not json")

    assert result.json()["errorType"] == "Runtime.UnmarshalError"
    assert result.json()["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")


def test_python_non_json_event_is_passed_as_bytes(api, start_runtime):
    files = {"app.py": "def handler(event, context):\n    return [type(event).__name__, event.decode()]\n"}
    start_runtime("python", "app.handler", files)

    assert api.invoke(raw_body=b"plain text", content_type="text/plain").json() == ["bytes", "plain text"]


def test_python_bytes_result_is_sent_raw(api, start_runtime):
    files = {"app.py": "def handler(event, context):\n    return b'\\x00raw'\n"}
    start_runtime("python", "app.handler", files)

    result = api.invoke({})

    assert result.body == b"\x00raw"
    assert result.headers["content-type"] == "application/unknown"


def test_python_logging_is_configured_like_aws(api, start_runtime):
    files = {
        "app.py": """
            import logging

            logging.basicConfig(level=logging.DEBUG, format="%(message)s")  # a no-op, as on AWS
            logger = logging.getLogger()
            logger.setLevel(logging.INFO)

            def handler(event, context):
                logger.debug("hidden")
                logger.info("processing %s", event["id"])
                print("plain print")
                return len(logging.getLogger().handlers)
        """
    }
    process = start_runtime("python", "app.handler", files)

    assert api.invoke({"id": "order-1"}, request_id="req-log").json() == 1

    # The print comes after the log record: wait for it (the two may arrive in separate reads).
    stdout = process.wait_output("plain print")
    record = next(r for r in log_records(stdout) if "processing" in r)
    assert re.fullmatch(r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-log\tprocessing order-1", record)
    assert "plain print" in log_records(stdout)
    assert "hidden" not in stdout


def test_python_log_level_from_environment(api, start_runtime):
    files = {
        "app.py": """
            import logging

            def handler(event, context):
                logging.getLogger().debug("debug line")
                return logging.getLogger().level
        """
    }
    process = start_runtime("python", "app.handler", files, env={"AWS_LAMBDA_LOG_LEVEL": "TRACE"})

    assert api.invoke({}).json() == 10  # TRACE maps to DEBUG
    assert re.search(r"^\[DEBUG\]\t\S+Z\t\S+\tdebug line$", process.wait_output("debug line"), re.M)


def test_python_bootstrap_does_not_import_logging_or_json(api, start_runtime):
    files = {
        "app.py": """
            import sys

            def handler(event, context):
                return sorted(name for name in ("logging", "json", "re", "traceback") if name in sys.modules)
        """
    }
    start_runtime("python", "app.handler", files)

    assert api.invoke({}).json() == []


def test_python_sys_path_and_dotted_and_slashed_handlers(api, start_runtime, task_root, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "extra_lib.py").write_text("VALUE = 'from PYTHONPATH'\n")
    files = {
        "pkg/__init__.py": "",
        "pkg/sub/mod.py": """
            import sys
            import extra_lib

            def handler(event, context):
                return {"path": sys.path[:4], "extra": extra_lib.VALUE, "name": __name__}
        """,
    }
    start_runtime("python", "pkg/sub/mod.handler", files, env={"PYTHONPATH": str(extra)})

    result = api.invoke({}).json()

    version = "python%d.%d" % tuple(int(part) for part in result["path"][1].split("python")[-1].split("/")[0].split("."))
    assert result["path"] == [task_root, "/opt/python/lib/%s/site-packages" % version, "/opt/python", str(extra)]
    assert result["extra"] == "from PYTHONPATH"
    assert result["name"] == "pkg.sub.mod"


# ---------------------------------------------------------------------------
# Node only
# ---------------------------------------------------------------------------


CALLBACK_WITH_LATE_MUTATION = """
    exports.handler = (event, context, callback) => {
      context.callbackWaitsForEmptyEventLoop = event.wait;
      const result = { late: false };
      setTimeout(() => { result.late = true; }, 100);
      callback(null, result);
    };
"""


def test_node_callback_waits_for_the_empty_event_loop(api, start_runtime):
    start_runtime("node", "index.handler", {"index.js": CALLBACK_WITH_LATE_MUTATION})

    # With the default (true) the response is sent once the timer has run.
    assert api.invoke({"wait": True}).json() == {"late": True}
    # With false it is sent as soon as the callback is called.
    assert api.invoke({"wait": False}).json() == {"late": False}


def test_node_callback_error_and_sync_handler_without_callback(api, start_runtime):
    files = {
        "index.js": """
            exports.handler = (event, context, callback) => {
              if (event.mode === "error") return callback(new Error("callback failed"));
              if (event.mode === "string") return callback("plain string failure");
              // Neither returns a promise nor calls back: AWS answers null.
            };
        """
    }
    start_runtime("node", "index.handler", files)

    error = api.invoke({"mode": "error"})
    text = api.invoke({"mode": "string"})
    silent = api.invoke({"mode": "silent"})

    assert error.kind == "error"
    assert (error.json()["errorType"], error.json()["errorMessage"]) == ("Error", "callback failed")
    assert text.json() == {"errorType": "string", "errorMessage": "plain string failure", "trace": []}
    assert silent.kind == "response" and silent.body == b"null"


def test_node_context_succeed_and_rejected_promise(api, start_runtime):
    files = {
        "index.js": """
            exports.handler = (event, context) => {
              if (event.mode === "succeed") return context.succeed({ via: "succeed" });
              return Promise.reject(new SyntaxError("rejected"));
            };
        """
    }
    start_runtime("node", "index.handler", files)

    assert api.invoke({"mode": "succeed"}).json() == {"via": "succeed"}
    rejected = api.invoke({"mode": "reject"}).json()
    assert (rejected["errorType"], rejected["errorMessage"]) == ("SyntaxError", "rejected")


@pytest.mark.parametrize(
    "handler, files, expected",
    [
        ("index.handler", {"index.mjs": "export const handler = async (e) => ({ esm: 'mjs', e });\n"}, "mjs"),
        (
            "app.handler",
            {"package.json": '{"type": "module"}', "app.js": "export async function handler(e) { return { esm: 'js', e }; }\n"},
            "js",
        ),
        ("lib.handler", {"lib.cjs": "module.exports.handler = async (e) => ({ esm: 'cjs', e });\n"}, "cjs"),
        (
            "index.handler",
            {
                "index.js": "exports.handler = async (e) => ({ esm: 'js-first', e });\n",
                "index.mjs": "export const handler = async (e) => ({ esm: 'mjs', e });\n",
            },
            "js-first",
        ),
        (
            "src/api/routes.v1.get",
            {"src/api/routes.js": "exports.v1 = { get: async (e) => ({ esm: 'nested', e }) };\n"},
            "nested",
        ),
    ],
    ids=["mjs", "type-module-js", "cjs", "js-before-mjs", "nested-dir-and-property"],
)
def test_node_module_kinds(api, start_runtime, handler, files, expected):
    start_runtime("node", handler, files)

    assert api.invoke({"n": 1}).json() == {"esm": expected, "e": {"n": 1}}


def test_node_mjs_syntax_error(api, start_runtime):
    process = start_runtime("node", "index.handler", {"index.mjs": "export const handler = async (;\n"})

    payload = expect_init_error(api, process)

    assert payload["errorType"] == "Runtime.UserCodeSyntaxError"


def test_node_console_lines(api, start_runtime):
    files = {
        "index.js": """
            console.log("loading");
            exports.handler = async () => {
              console.log("hello %s", "world", { a: 1 });
              console.warn("two\\nlines");
              console.debug("debug is filtered");
              return "ok";
            };
        """
    }
    process = start_runtime("node", "index.handler", files, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})

    api.invoke({}, request_id="req-console")

    records = log_records(process.wait_output("two\rlines"))
    fields = [record.split("\t", 3) for record in records]
    assert [(request_id, level, message) for _, request_id, level, message in fields] == [
        ("undefined", "INFO", "loading"),
        ("req-console", "INFO", "hello world { a: 1 }"),
        ("req-console", "WARN", "two\rlines"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp) for timestamp, *_ in fields)


def test_node_uncaught_exception_fails_the_invocation_and_exits(api, start_runtime):
    files = {
        "index.js": """
            exports.handler = (event, context, callback) => {
              setTimeout(() => { throw new Error("timer blew up"); }, 10);
            };
        """
    }
    process = start_runtime("node", "index.handler", files)

    result = api.invoke({}, request_id="req-crash")

    assert result.kind == "error"
    assert (result.json()["errorType"], result.json()["errorMessage"]) == ("Error", "timer blew up")
    assert process.wait_exit() == 129


def test_node_unhandled_rejection_fails_the_invocation_and_exits(api, start_runtime):
    files = {
        "index.js": """
            exports.handler = (event, context, callback) => {
              Promise.reject(new Error("nobody caught me"));
            };
        """
    }
    process = start_runtime("node", "index.handler", files)

    result = api.invoke({})

    assert result.json()["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert result.json()["errorMessage"] == "Error: nobody caught me"
    assert process.wait_exit() == 128


def test_node_unserialisable_result(api, start_runtime):
    files = {"index.js": "exports.handler = async () => { const a = {}; a.self = a; return a; };\n"}
    process = start_runtime("node", "index.handler", files)

    result = api.invoke({})

    assert result.json()["errorType"] == "Runtime.JSONStringifyError"
    assert result.json()["errorMessage"] == "Unable to stringify response body"
    assert process.running
