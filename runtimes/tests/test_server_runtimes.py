"""The runtime table end to end: Java and Ruby functions created and invoked through the real
server (boto3), substitutes announced in the function's log, runtimes Kindling cannot run and
deprecated ones refused at CreateFunction / UpdateFunctionConfiguration."""

import json
import shutil
import subprocess

import pytest

import server_support as s


def ruby_version() -> str:
    ruby = shutil.which("ruby")
    assert ruby, "ruby is needed (Debian: apt-get install ruby)"
    out = subprocess.run([ruby, "-e", "print RUBY_VERSION"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def node_major() -> int:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().lstrip("v").split(".")[0])


def warnings(inv) -> list[str]:
    return [line for line in s.log_lines(inv) if "Kindling WARNING" in line]


# --- Java ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def java_zip(java_build):
    return s.zip_tree(java_build.app)


@pytest.mark.parametrize("runtime", ["java17", "java21"])
def test_java_echo_context_and_substitute_warning(lam, java_zip, runtime):
    name = s.unique("java")
    created = lam.create_function(FunctionName=name, Runtime=runtime, Role=s.ROLE,
                                  Handler="example.Environment::handleRequest", Code={"ZipFile": java_zip},
                                  Timeout=60, MemorySize=512,
                                  Environment={"Variables": {"CUSTOM_SETTING": "on"}})
    s.k.wait_active(lam, name)
    substitute = int(runtime[4:]) not in s.host_jdk_majors()
    assert ("Kindling WARNING: runtime " in created["StateReason"]) == substitute, created["StateReason"]
    inv = s.invoke(lam, name, {"k": 1})
    out = inv.ok()
    assert out["env"]["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert out["env"]["_HANDLER"] == "example.Environment::handleRequest"
    assert out["env"]["CUSTOM_SETTING"] == "on"
    assert out["context"]["function_name"] == name
    assert out["context"]["memory_limit_in_mb"] == 512
    assert out["context"]["aws_request_id"] == inv.request_id
    assert out["context"]["invoked_function_arn"].endswith(f":function:{name}")
    assert out["context_class_loader_is_function_loader"] is True
    wanted = int(runtime[4:])
    found = warnings(inv)
    if wanted in s.host_jdk_majors():
        assert not found, found
    else:
        assert found and f"runtime {runtime} runs on Java" in found[0], s.log_lines(inv)
    # Warm: the same environment, no second warning.
    again = s.invoke(lam, name, {"k": 2})
    assert again.ok()["context"]["aws_request_id"] == again.request_id
    assert not warnings(again)
    assert not any("Init Duration" in line for line in s.log_lines(again) if line.startswith("REPORT"))


def test_java_pojo_request_handler_and_error_shape(lam, java_zip):
    echo = s.create(lam, "java17", "example.Echo", java_zip)
    assert s.invoke(lam, echo, {"a": [1, 2, {"b": None}]}).ok() == {"a": [1, 2, {"b": None}]}

    failing = s.create(lam, "java17", "example.Failing::handleRequest", java_zip)
    inv = s.invoke(lam, failing, {"message": "boom"})
    body = inv.error()
    assert set(body) >= {"errorMessage", "errorType", "stackTrace"}, body
    assert body["errorType"].startswith("java.lang."), body
    assert isinstance(body["stackTrace"], list)


def test_java_init_error_is_a_function_error(lam, java_zip):
    name = s.create(lam, "java17", "example.Boom", java_zip)
    inv = s.invoke(lam, name)
    body = inv.error()
    assert body == {"errorMessage": "Error loading class example.Boom",
                    "errorType": "java.lang.ExceptionInInitializerError"}, body
    assert "config missing" in (inv.log or ""), inv.log


def test_java_tool_options_reach_the_jvm(lam, java_zip):
    name = s.create(lam, "java17", "example.ToolOptions::handle", java_zip, MemorySize=256,
                    Environment={"Variables": {"JAVA_TOOL_OPTIONS": "-Dkindling.test.flag=yes -Xmx100m"}})
    out = s.invoke(lam, name).ok()
    assert out["property"] == "yes"
    # The user's -Xmx wins: Kindling leaves its own heap default out.
    assert not any(a.startswith("-XX:MaxHeapSize") for a in out["arguments"]), out["arguments"]
    assert out["max_heap"] <= 100 * 1024 * 1024
    assert "-XX:+UseSerialGC" in out["arguments"]
    # Without JAVA_TOOL_OPTIONS: 85% of the memory, as Lambda.
    plain = s.create(lam, "java17", "example.ToolOptions::handle", java_zip, MemorySize=256)
    args = s.invoke(lam, plain).ok()["arguments"]
    assert f"-XX:MaxHeapSize={-(-256 * 1024 * 85 // 100)}k" in args, args


def test_java_logger_lines_reach_the_function_log(lam, java_zip):
    name = s.create(lam, "java17", "example.Logging::handle", java_zip)
    inv = s.invoke(lam, name)
    assert inv.ok() is True
    lines = s.log_lines(inv)
    assert "plain line" in lines and "[WARN] warn shown" in lines, lines
    # Text log format without a log level: every level is written, prefixed.
    assert "[DEBUG] debug hidden" in lines and "stdout h\u00e9llo" in lines, lines


# --- Ruby ------------------------------------------------------------------------------------

RUBY_APP = '''
require "json"

def handler(event:, context:)
  { "event" => event, "function" => context.function_name, "request" => context.aws_request_id,
    "remaining" => context.get_remaining_time_in_millis > 0,
    "env" => ENV["AWS_EXECUTION_ENV"], "gem_path" => ENV["GEM_PATH"] }
end

def fail(event:, context:)
  raise ArgumentError, "bad input"
end
'''


@pytest.mark.parametrize("runtime", ["ruby3.2", "ruby3.3"])
def test_ruby_handler_context_and_warning(lam, runtime):
    name = s.create(lam, runtime, "app.handler", s.zip_files({"app.rb": RUBY_APP}))
    inv = s.invoke(lam, name, {"x": 1})
    out = inv.ok()
    assert out["event"] == {"x": 1}
    assert out["function"] == name and out["request"] == inv.request_id and out["remaining"]
    assert out["env"] == f"AWS_Lambda_{runtime}"
    assert f"/vendor/bundle/ruby/{runtime[4:]}.0" in out["gem_path"]
    found = warnings(inv)
    if ruby_version().startswith(runtime[4:] + "."):
        assert not found, found
    else:
        assert found and f"runtime {runtime} runs on Ruby {ruby_version()}" in found[0], s.log_lines(inv)


def test_ruby_error_shape(lam):
    name = s.create(lam, "ruby3.3", "app.fail", s.zip_files({"app.rb": RUBY_APP}))
    inv = s.invoke(lam, name)
    body = inv.error()
    assert body["errorType"] == "Function<ArgumentError>", body
    assert body["errorMessage"] == "bad input"
    assert any("app.rb" in frame for frame in body["stackTrace"]), body
    assert any("Error raised from handler method" in line for line in s.log_lines(inv)), s.log_lines(inv)


# --- Substitutes for Node and Python ------------------------------------------------------------


def test_nodejs22_never_runs_silently_on_another_node(lam):
    code = s.zip_files({"index.mjs": "export const handler = async (e) => ({v: process.version});\n"})
    name = s.create(lam, "nodejs22.x", "index.handler", code)
    inv = s.invoke(lam, name)
    version = inv.ok()["v"]
    if node_major() != 22:
        assert not version.startswith("v22.")
        found = warnings(inv)
        assert found and "runtime nodejs22.x runs on Node.js" in found[0], s.log_lines(inv)


def test_python314_never_runs_silently_on_another_python(lam):
    code = s.zip_files({"app.py": "import sys\ndef handler(e, c):\n    return list(sys.version_info[:2])\n"})
    name = s.create(lam, "python3.14", "app.handler", code)
    inv = s.invoke(lam, name)
    version = inv.ok()
    if version != [3, 14]:
        found = warnings(inv)
        assert found and f"runs on Python {version[0]}.{version[1]}" in found[0], s.log_lines(inv)


# --- Refusals --------------------------------------------------------------------------------

PY = s.zip_files({"app.py": "def handler(e, c):\n    return e\n"})


@pytest.mark.parametrize("runtime,needle", [
    ("python3.7", "python3.7 is no longer supported"),
    ("nodejs14.x", "nodejs14.x is no longer supported"),
    ("java8", "java8 is no longer supported"),
    ("ruby2.7", "ruby2.7 is no longer supported"),
    ("go1.x", "go1.x is no longer supported"),
    ("dotnet8", "no .NET runtime"),
])
def test_refused_at_create(lam, runtime, needle):
    code, status, message = s.api_error(
        lam.create_function, FunctionName=s.unique("refused"), Runtime=runtime, Role=s.ROLE,
        Handler="app.handler", Code={"ZipFile": PY})
    assert (code, status) == ("InvalidParameterValueException", 400), (code, status, message)
    assert needle in message, message


def test_refused_at_update_configuration(lam):
    name = s.create(lam, "python3.12", "app.handler", PY)
    for runtime, needle in [("nodejs14.x", "no longer supported"), ("dotnet8", ".NET")]:
        code, status, message = s.api_error(lam.update_function_configuration,
                                            FunctionName=name, Runtime=runtime)
        assert (code, status) == ("InvalidParameterValueException", 400), message
        assert needle in message, message
    assert lam.get_function_configuration(FunctionName=name)["Runtime"] == "python3.12"
    lam.update_function_configuration(FunctionName=name, Runtime="ruby3.3", Handler="app.handler")
    s.k.wait_active(lam, name)
    assert lam.get_function_configuration(FunctionName=name)["Runtime"] == "ruby3.3"


def test_a_runtime_the_host_lacks_is_refused_naming_what_is_missing(tmp_path_factory):
    srv = s.start_server(tmp_path_factory, "--runtime", "java17=/bin/true",
                         "--runtime", "ruby3.3=/nonexistent/ruby")
    try:
        lam = s.client(srv.url)
        code, status, message = s.api_error(
            lam.create_function, FunctionName=s.unique("nojdk"), Runtime="java17", Role=s.ROLE,
            Handler="example.Echo", Code={"ZipFile": PY})
        assert (code, status) == ("InvalidParameterValueException", 400), message
        assert "java17" in message and "JDK" in message, message
        code, status, message = s.api_error(
            lam.create_function, FunctionName=s.unique("noruby"), Runtime="ruby3.3", Role=s.ROLE,
            Handler="app.handler", Code={"ZipFile": PY})
        assert (code, status) == ("InvalidParameterValueException", 400), message
        assert "/nonexistent/ruby" in message, message
    finally:
        srv.kill()
