"""Ruby runtime specifics: keyword arguments, Module::Class handlers, AWS's error classes and
critical errors, the Logger format, raw and overridden marshalling, $LOAD_PATH and GEM_PATH with
layers and vendored gems. Shared behaviour is in test_bootstraps.py.
"""

import os
import re
import subprocess
import textwrap

import pytest

from harness import RUBY

# The gem directory name AWS's layout uses for the runtime (ruby3.2 -> 3.2.0), and the
# interpreter's own, which Kindling also searches.
RUNTIME_ABI = "3.2.0"
EXECUTION_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_ruby3.2"}
INTERPRETER_ABI = subprocess.run([RUBY, "-e", "print RbConfig::CONFIG['ruby_version']"], capture_output=True, text=True, check=True).stdout


def fake_gem(gem_dir, name, source):
    """A gem installed in `gem_dir` the way `gem install` / bundler lays it out."""
    base = os.path.join(gem_dir, "gems", "%s-1.0.0" % name, "lib")
    os.makedirs(base)
    with open(os.path.join(base, name + ".rb"), "w") as handle:
        handle.write(textwrap.dedent(source))
    os.makedirs(os.path.join(gem_dir, "specifications"), exist_ok=True)
    with open(os.path.join(gem_dir, "specifications", "%s-1.0.0.gemspec" % name), "w") as handle:
        handle.write(
            textwrap.dedent(
                """\
                Gem::Specification.new do |s|
                  s.name = "%s"
                  s.version = "1.0.0"
                  s.summary = "a test gem"
                  s.authors = ["kindling"]
                  s.files = ["lib/%s.rb"]
                  s.require_paths = ["lib"]
                end
                """
                % (name, name)
            )
        )


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler, files",
    [
        ("app.Handler.process", {"app.rb": "class Handler\n  def self.process(event:, context:)\n    [event, context.function_name]\n  end\nend\n"}),
        (
            "lib/deep/app.Outer::Inner.call",
            {
                "lib/deep/app.rb": """
                    module Outer
                      class Inner
                        def self.call(event:, context:)
                          [event, context.function_name]
                        end
                      end
                    end
                """
            },
        ),
        ("app.handler", {"app.rb": "def handler(event:, **_rest)\n  [event, 'test-fn']\nend\n"}),
    ],
    ids=["class-method", "module-class-in-subdir", "keyword-splat"],
)
def test_handler_forms(api, start_runtime, handler, files):
    start_runtime("ruby", handler, files)

    assert api.invoke({"n": 1}).json() == [{"n": 1}, "test-fn"]


def test_handler_is_called_with_keyword_arguments(api, start_runtime):
    files = {"app.rb": "def handler(event:)\n  event\nend\n"}
    process = start_runtime("ruby", "app.handler", files)

    result = api.invoke({})

    assert result.json() == {
        "errorMessage": "unknown keyword: :context",
        "errorType": "Function<ArgumentError>",
        "stackTrace": result.json()["stackTrace"],
    }
    assert re.search(r"app\.rb:1:in `handler'$", result.json()["stackTrace"][0])
    assert process.running


def test_missing_class_and_class_method_are_critical(api, start_runtime):
    files = {"app.rb": "class Handler\nend\n"}
    process = start_runtime("ruby", "app.Handler.process", files)

    result = api.invoke({})

    assert result.json()["errorType"] == "Function<NoMethodError>"
    assert result.json()["errorMessage"] == "undefined method `process' for Handler:Class"
    assert process.wait_exit() == 255


def test_missing_constant_is_critical(api, start_runtime):
    process = start_runtime("ruby", "app.Nope.process", {"app.rb": "X = 1\n"})

    result = api.invoke({})

    assert (result.json()["errorType"], result.json()["errorMessage"]) == ("Function<NameError>", "uninitialized constant Nope")
    assert result.headers["lambda-runtime-function-error-type"] == "Function<NameError>"
    assert process.wait_exit() == 255


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

RAISING = {
    "app.rb": """
        class PaymentDeclined < StandardError; end

        def handler(event:, context:)
          case event['kind']
          when 'custom' then raise PaymentDeclined, 'card declined'
          when 'script' then raise NotImplementedError, 'later'
          when 'exit' then exit 3
          when 'nil' then nil.upcase
          when 'nan' then Float::NAN
          else 'fine'
          end
        end
    """
}


def test_error_classes_aws_does_not_list_get_a_generic_header(api, start_runtime):
    process = start_runtime("ruby", "app.handler", RAISING)

    result = api.invoke({"kind": "custom"})

    assert result.json()["errorType"] == "Function<PaymentDeclined>"
    assert result.json()["errorMessage"] == "card declined"
    assert result.headers["lambda-runtime-function-error-type"] == "Function<UserException>"
    assert api.invoke({"kind": "other"}).json() == "fine"
    assert process.running


def test_unserializable_result_fails_the_invocation(api, start_runtime):
    process = start_runtime("ruby", "app.handler", RAISING)

    result = api.invoke({"kind": "nan"})

    assert result.json()["errorType"] == "Function<JSON::GeneratorError>"
    assert process.running


@pytest.mark.parametrize(
    "kind, error_type, message, header",
    [
        ("script", "Function<NotImplementedError>", "later", "Function<UserException>"),
        ("exit", "Function<SystemExit>", "exit", "Function<SystemExit>"),
        ("nil", "Function<NoMethodError>", "undefined method `upcase' for nil:NilClass", "Function<NoMethodError>"),
    ],
)
def test_critical_errors_end_the_runtime(api, start_runtime, kind, error_type, message, header):
    process = start_runtime("ruby", "app.handler", RAISING)

    result = api.invoke({"kind": kind})

    # The message is the plain one on every Ruby (no did_you_mean or error_highlight text).
    assert (result.json()["errorType"], result.json()["errorMessage"]) == (error_type, message)
    assert result.headers["lambda-runtime-function-error-type"] == header
    assert process.wait_exit() == 255
    assert process.stdout.startswith("Critical exception from handler\n{\n")


def test_error_log_lines(api, start_runtime):
    process = start_runtime("ruby", "app.handler", RAISING)

    api.invoke({"kind": "custom"})

    log = process.wait_output("]\n}\n")
    head, document = log.split("\n", 1)
    assert head == "Error raised from handler method"
    assert document.startswith('{\n  "errorMessage": "card declined",\n  "errorType": "Function<PaymentDeclined>",\n  "stackTrace": [\n')


def test_invalid_json_event_fails_only_that_invocation(api, start_runtime):
    process = start_runtime("ruby", "app.handler", {"app.rb": "def handler(event:, context:)\n  event\nend\n"})

    result = api.invoke(raw_body=b"{not json")

    assert result.json()["errorType"] == "Runtime<JSON::ParserError>"
    assert api.invoke({"ok": 1}).json() == {"ok": 1}
    assert process.running


# ---------------------------------------------------------------------------
# Events, results, logging
# ---------------------------------------------------------------------------


def test_non_json_events_and_io_results_are_raw(api, start_runtime):
    files = {
        "app.rb": """
            require 'stringio'

            def handler(event:, context:)
              StringIO.new("#{event.class}:#{event}\\x00")
            end
        """
    }
    start_runtime("ruby", "app.handler", files)

    result = api.invoke(raw_body=b"plain text", content_type="text/plain")

    assert result.body == b"String:plain text\x00"
    assert result.headers["content-type"] == "application/unknown"


def test_marshaller_can_be_overridden(api, start_runtime):
    files = {
        "app.rb": """
            module AwsLambda
              class Marshaller
                def self.marshall_response(response)
                  [response.to_s.upcase, 'text/plain']
                end
              end
            end

            def handler(event:, context:)
              "shout #{event['word']}"
            end
        """
    }
    start_runtime("ruby", "app.handler", files)

    result = api.invoke({"word": "hi"})

    assert (result.body, result.headers["content-type"]) == (b"SHOUT HI", "text/plain")


def test_logger_lines_carry_the_request_id(api, start_runtime, task_root):
    files = {
        "app.rb": """
            require 'logger'

            STDOUT_LOGGER = Logger.new($stdout)
            STDERR_LOGGER = Logger.new($stderr)

            def handler(event:, context:)
              STDOUT_LOGGER.info('to stdout')
              STDERR_LOGGER.warn('to stderr')
              Logger.new(File.join(ENV['LAMBDA_TASK_ROOT'], 'file.log')).info('to a file')
              puts 'plain puts'
              $calls = ($calls || 0) + 1
            end
        """
    }
    process = start_runtime("ruby", "app.handler", files)

    api.invoke({}, request_id="req-log")

    stdout = process.wait_output("plain puts\n")
    line = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} #%d\]" % process.pid
    assert re.fullmatch(r"I, \[%s  INFO req-log -- : to stdout\nplain puts\n" % line, stdout)
    assert re.fullmatch(r"W, \[%s  WARN req-log -- : to stderr\n" % line, process.wait_stderr("to stderr"))
    with open(os.path.join(task_root, "file.log")) as handle:
        # A logger writing to a file keeps Ruby's own format.
        assert re.search(r"^I, \[\S+ #%d\]  INFO -- : to a file$" % process.pid, handle.read(), re.M)


def test_context_deadline_and_arguments(api, start_runtime):
    files = {
        "app.rb": """
            def handler(event:, context:)
              [context.deadline_ms, ARGV, $_global_aws_request_id, context.class.name, Encoding.default_external.to_s]
            end
        """
    }
    start_runtime("ruby", "app.handler", files)

    assert api.invoke({}, request_id="req-ctx", deadline_ms=1893456000000).json() == [
        1893456000000,
        [],
        "req-ctx",
        "LambdaContext",
        "UTF-8",  # as on Lambda, even where the host lacks the en_US.UTF-8 locale
    ]


# ---------------------------------------------------------------------------
# $LOAD_PATH, GEM_PATH, layers, vendored gems
# ---------------------------------------------------------------------------

PATHS = {
    "app.rb": """
        def handler(event:, context:)
          loaded = event['require'].map { |name| require name; Object.const_get(name.capitalize).where }
          {
            load_path: $LOAD_PATH.first(2),
            gem_path: ENV['GEM_PATH'],
            loaded: loaded,
          }
        end
    """
}


def test_default_paths_follow_aws_layout(api, start_runtime, task_root):
    fake_gem(os.path.join(task_root, "vendor", "bundle", "ruby", RUNTIME_ABI), "vend", "module Vend\n  def self.where = __FILE__\nend\n")
    start_runtime("ruby", "app.handler", PATHS, env=EXECUTION_ENV)

    result = api.invoke({"require": ["vend"]}).json()

    assert result["load_path"] == [task_root, "/opt/ruby/lib"]
    abis = [RUNTIME_ABI] + ([INTERPRETER_ABI] if INTERPRETER_ABI != RUNTIME_ABI else [])
    expected = ["%s/vendor/bundle/ruby/%s" % (task_root, abi) for abi in abis] + ["/opt/ruby/gems/%s" % abi for abi in abis]
    assert result["gem_path"] == ":".join(expected) + ":"
    assert result["loaded"] == ["%s/vendor/bundle/ruby/%s/gems/vend-1.0.0/lib/vend.rb" % (task_root, RUNTIME_ABI)]


def test_layers_through_rubylib_and_gem_path(api, start_runtime, task_root, opt_dir):
    # What Kindling sets when the layers are not at /opt (as it sets PYTHONPATH and NODE_PATH).
    os.makedirs(os.path.join(opt_dir, "ruby", "lib"))
    with open(os.path.join(opt_dir, "ruby", "lib", "helper.rb"), "w") as handle:
        handle.write("module Helper\n  def self.where = __FILE__\nend\n")
    fake_gem(os.path.join(opt_dir, "ruby", "gems", RUNTIME_ABI), "layered", "module Layered\n  def self.where = __FILE__\nend\n")
    fake_gem(os.path.join(task_root, "vendor", "bundle", "ruby", RUNTIME_ABI), "vend", "module Vend\n  def self.where = __FILE__\nend\n")
    env = dict(
        EXECUTION_ENV,
        RUBYLIB="%s:%s/ruby/lib" % (task_root, opt_dir),
        GEM_PATH="%s/vendor/bundle/ruby/%s:%s/ruby/gems/%s:" % (task_root, RUNTIME_ABI, opt_dir, RUNTIME_ABI),
    )
    start_runtime("ruby", "app.handler", PATHS, env=env)

    result = api.invoke({"require": ["helper", "layered", "vend"]}).json()

    assert result["load_path"] == [task_root, "%s/ruby/lib" % opt_dir]
    assert result["gem_path"] == env["GEM_PATH"]  # left as Kindling set it
    assert result["loaded"] == [
        "%s/ruby/lib/helper.rb" % opt_dir,
        "%s/ruby/gems/%s/gems/layered-1.0.0/lib/layered.rb" % (opt_dir, RUNTIME_ABI),
        "%s/vendor/bundle/ruby/%s/gems/vend-1.0.0/lib/vend.rb" % (task_root, RUNTIME_ABI),
    ]


def test_handler_file_wins_over_a_library_of_the_same_name(api, start_runtime):
    # The runtime itself loads json and logger; a handler file named logger.rb must still load.
    files = {"logger.rb": "def handler(event:, context:)\n  'mine'\nend\n"}
    start_runtime("ruby", "logger.handler", files)

    assert api.invoke({}).json() == "mine"


LAZY_GEMS = {
    "app.rb": """
        def handler(event:, context:)
          before = $LOADED_FEATURES.any? { |feature| feature.end_with?('/rubygems.rb') }
          case event['use']
          when 'constant' then [before, Gem::Version.new('1.10') > Gem::Version.new('1.9')]
          when 'bundled' then require 'net/smtp'; [before, defined?(Net::SMTP) == 'constant']
          when 'gem' then gem 'vend'; require 'vend'; [before, Vend.where.end_with?('/vend-1.0.0/lib/vend.rb')]
          else [before, $LOADED_FEATURES.any? { |feature| feature.end_with?('/rubygems.rb') }]
          end
        end
    """
}


@pytest.mark.parametrize(
    "use, expected",
    [("nothing", [False, False]), ("constant", [False, True]), ("bundled", [False, True]), ("gem", [False, True])],
)
def test_rubygems_loads_on_first_need(api, start_runtime, task_root, use, expected):
    # Kindling starts Ruby with --disable-gems; the bootstrap loads RubyGems when a require
    # fails without it (here a bundled gem), on the first use of Gem, or on a call of `gem`.
    fake_gem(os.path.join(task_root, "vendor", "bundle", "ruby", RUNTIME_ABI), "vend", "module Vend\n  def self.where = __FILE__\nend\n")
    start_runtime("ruby", "app.handler", LAZY_GEMS, env=EXECUTION_ENV)

    assert api.invoke({"use": use}).json() == expected


def test_malformed_client_context_fails_only_that_invocation(api, start_runtime):
    process = start_runtime("ruby", "app.handler", {"app.rb": "def handler(event:, context:)\n  context.client_context\nend\n"})

    result = api.invoke({}, client_context="{not json")

    assert result.json()["errorType"] == "Runtime<JSON::ParserError>"
    assert api.invoke({}, client_context='{"custom":{"a":"b"}}').json() == {"custom": {"a": "b"}}
    assert process.running
