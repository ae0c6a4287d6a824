# frozen_string_literal: true

# Kindling's Ruby runtime bootstrap.
#
# Runs inside one execution environment: loads the user's handler file, then
# loops forever over the AWS Lambda Runtime API (version 2018-06-01), calling
# the handler once per invocation with `event:` and `context:` keyword
# arguments. Standard library only (json, socket, logger); Ruby 3.0 or newer.
#
# Launch command (Kindling must use exactly this):
#
#     <ruby> --disable-gems /path/to/runtimes/ruby/bootstrap.rb [HANDLER]
#
#     <ruby>     a real interpreter binary (no rbenv/rvm shim).
#     --disable-gems  RubyGems is loaded by this file on first need instead
#                (see LazyRubyGems): ~35 ms less per cold start. Without the
#                flag everything works the same, only slower.
#     HANDLER    optional; overrides _HANDLER (useful for container images).
#     Working directory: LAMBDA_TASK_ROOT (as on AWS, where it is /var/task).
#
# Environment read:
#     AWS_LAMBDA_RUNTIME_API      host:port of the Runtime API (required)
#     _HANDLER                    "file.method" or "file.Module::Class.method"
#                                 (file relative to the task root, without .rb)
#     LAMBDA_TASK_ROOT            function code directory (default: cwd)
#     RUBYLIB                     if unset, $LOAD_PATH gets /opt/ruby/lib (layers)
#     GEM_PATH                    if unset, set to AWS's layout:
#                                 <task root>/vendor/bundle/ruby/<abi>:/opt/ruby/gems/<abi>
#                                 followed by the interpreter's default gem path
#     AWS_EXECUTION_ENV           AWS_Lambda_rubyX.Y gives <abi> X.Y.0
#     AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
#     AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
#     AWS_LAMBDA_LOG_STREAM_NAME  copied into each context object
# Environment written: _X_AMZN_TRACE_ID (per invocation, from the trace header).
#
# $LOAD_PATH starts with the task root, then the RUBYLIB entries (or
# /opt/ruby/lib), then the interpreter's own directories.
#
# Behaviour follows AWS's Ruby runtime (aws_lambda_ric): the same handler
# strings, LambdaContext, AwsLambda::Marshaller (overridable), error payloads
# {"errorMessage", "errorType": "Function<Class>" | "Init<Class>", "stackTrace"}
# with Lambda-Runtime-Function-Error-Type set to the errorType for the classes
# AWS lists (ArgumentError, NoMethodError, NameError, LoadError, ...) and
# "Function<UserException>" otherwise, the same log lines ("Error raised from
# handler method" plus the pretty-printed error) and Logger format for loggers
# writing to $stdout/$stderr. A StandardError from the handler fails the
# invocation; NoMethodError, NameError and non-StandardError exceptions
# (ScriptError, SystemExit, ...) fail it and end the runtime (exit 255); an
# init error ends it with exit code 252. Differences, on purpose:
#   * A missing handler method is reported by the first invocation, as on
#     AWS, but its NoMethodError names `main` as the receiver (AWS's names
#     its internal handler object).
#   * A Logger line ends with a newline (AWS frames records instead).
#   * Error messages are the plain message on every Ruby version (3.1 adds
#     did_you_mean and error_highlight text to `message`; 3.2+ do not).
#   * An event whose body is not valid JSON, or a malformed client context or
#     identity header, fails that invocation ("Runtime<JSON::ParserError>")
#     instead of crashing the runtime.
#   * _X_AMZN_TRACE_ID is removed when an event has no trace header.

require 'json'
require 'socket'
require 'logger'

$stdout.sync = true # log lines reach Kindling at once
$_global_aws_request_id = nil # read by the Logger format, as on AWS

module KindlingRuntime
  API_VERSION = '2018-06-01'
  USER_AGENT = "kindling-ruby-runtime/1 (ruby #{RUBY_VERSION})"
  ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type'
  TRACE_ENV = '_X_AMZN_TRACE_ID'
  THIS_FILE = File.expand_path(__FILE__)

  INIT_ERROR_EXIT = 252 # exit(-4) on AWS
  CRITICAL_ERROR_EXIT = 255 # exit(-1)
  RUNTIME_ERROR_EXIT = 254 # exit(-2)

  # The Runtime API is unreachable or answered in a way we cannot continue from.
  class ApiError < StandardError; end

  # A reused keep-alive connection died before any response byte arrived.
  class StaleConnection < StandardError; end

  # One keep-alive HTTP/1.1 connection, blocking and without timeouts: GET
  # /next is a long poll that may block for hours. TCP_NODELAY is set. A
  # request that fails on a reused connection before any response byte
  # arrived is sent once more on a fresh connection.
  class HttpConnection
    Response = Struct.new(:status, :headers, :body)

    def initialize(host, port)
      @host = host
      @port = port
      @host_header = host.include?(':') ? "[#{host}]:#{port}" : "#{host}:#{port}"
      @socket = nil
      @received = false
    end

    def request(method, path, headers = {}, body = nil)
      reused = !@socket.nil?
      begin
        connect unless reused
        return exchange(method, path, headers, body)
      rescue StaleConnection, SystemCallError, IOError => e
        close
        raise ApiError, "#{method} #{path} failed: #{e.message}" if !reused || @received
      end
      begin
        connect
        exchange(method, path, headers, body)
      rescue StaleConnection, SystemCallError, IOError => e
        close
        raise ApiError, "#{method} #{path} failed: #{e.message}"
      end
    end

    def close
      @socket&.close
    rescue IOError, SystemCallError
      nil
    ensure
      @socket = nil
    end

    private

    def connect
      @socket = TCPSocket.new(@host, @port)
      @socket.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      @socket.binmode
    rescue SystemCallError, SocketError => e
      @socket = nil
      raise ApiError, "cannot connect to the Runtime API at #{@host_header}: #{e.message}"
    end

    def exchange(method, path, headers, body)
      @received = false
      head = +"#{method} #{path} HTTP/1.1\r\nHost: #{@host_header}\r\nUser-Agent: #{USER_AGENT}\r\n"
      head << "Content-Length: #{body.bytesize}\r\n" if body
      headers.each { |name, value| head << "#{name}: #{value}\r\n" }
      head << "\r\n"
      head.force_encoding(Encoding::BINARY)
      if body
        @socket.write(head, body.b)
      else
        @socket.write(head)
      end
      read_response(method)
    end

    def read_response(method)
      status = nil
      version = nil
      headers = nil
      loop do
        line = read_line
        version, code = line.split(' ', 3)
        raise ApiError, "malformed HTTP status line: #{line[0, 100].inspect}" unless version&.start_with?('HTTP/') && code =~ /\A\d{3}\z/

        status = code.to_i
        headers = read_headers
        break unless status >= 100 && status < 200
      end
      body, framed = read_body(method, status, headers)
      connection = headers['connection'].to_s.downcase
      close if !framed || connection == 'close' || (version == 'HTTP/1.0' && connection != 'keep-alive')
      Response.new(status, headers, body)
    end

    def read_line
      line = @socket.gets("\r\n")
      if line.nil?
        raise StaleConnection, 'connection closed by the Runtime API' unless @received

        raise IOError, 'connection closed in the middle of a response'
      end
      @received = true
      line.chomp("\r\n").chomp("\n")
    end

    def read_headers
      headers = {}
      loop do
        line = read_line
        return headers if line.empty?

        name, value = line.split(':', 2)
        next if value.nil?

        key = name.strip.downcase
        value = value.strip.force_encoding(Encoding::UTF_8)
        headers[key] = headers.key?(key) ? "#{headers[key]}, #{value}" : value
      end
    end

    def read_body(method, status, headers)
      return ['', true] if method == 'HEAD' || status == 204 || status == 304
      return [read_chunked, true] if headers['transfer-encoding'].to_s.downcase.include?('chunked')

      length = headers['content-length']
      return [read_exact(Integer(length, 10)), true] if length

      [@socket.read || '', false]
    end

    def read_chunked
      body = String.new(encoding: Encoding::BINARY)
      loop do
        size = Integer(read_line.split(';', 2).first.strip, 16)
        if size.zero?
          loop { break if read_line.empty? } # trailer fields
          return body
        end
        body << read_exact(size)
        raise ApiError, 'malformed chunked body' unless read_line.empty?
      end
    end

    def read_exact(size)
      data = @socket.read(size) || ''
      raise IOError, 'connection closed in the middle of a response body' if data.bytesize < size

      data
    end
  end

  # What GET /next returned: the request id, headers and raw body. Answers
  # [] (header lookup, any case) and #body like the Net::HTTPResponse AWS's
  # runtime hands to AwsLambda::Marshaller.marshall_request.
  class InvocationRequest
    attr_reader :request_id, :body

    def initialize(headers, body)
      @headers = headers
      @body = body.force_encoding(Encoding::UTF_8)
      @request_id = headers['lambda-runtime-aws-request-id']
    end

    def [](name)
      @headers[name.to_s.downcase]
    end
  end

  # The four Runtime API calls.
  class RuntimeApiClient
    def initialize(address)
      match = /\A\[?([^\]]+?)\]?:(\d+)\z/.match(address.to_s)
      raise ApiError, "AWS_LAMBDA_RUNTIME_API must be host:port, got #{address.inspect}" unless match

      @connection = HttpConnection.new(match[1], Integer(match[2], 10))
      @base = "/#{API_VERSION}/runtime"
    end

    def next_invocation
      response = @connection.request('GET', "#{@base}/invocation/next")
      raise ApiError, describe('GET /invocation/next', response) unless response.status == 200

      request = InvocationRequest.new(response.headers, response.body)
      raise ApiError, 'GET /invocation/next answered without Lambda-Runtime-Aws-Request-Id' if request.request_id.to_s.empty?

      request
    end

    def post_response(request_id, body, content_type)
      post("#{@base}/invocation/#{request_id}/response", { 'Content-Type' => content_type }, body)
    end

    def post_error(request_id, error)
      post("#{@base}/invocation/#{request_id}/error", error_headers(error), JSON.generate(error.to_lambda_response))
    end

    def post_init_error(error)
      post("#{@base}/init/error", error_headers(error), JSON.generate(error.to_lambda_response))
    end

    private

    def error_headers(error)
      { 'Content-Type' => 'application/json', ERROR_TYPE_HEADER => header_safe(error.runtime_error_type) }
    end

    def header_safe(value)
      safe = value.to_s.gsub(/[\x00-\x1f\x7f]/, '')
      safe.empty? ? 'Unhandled' : safe
    end

    def post(path, headers, body)
      response = @connection.request('POST', path, headers, body.to_s)
      raise ApiError, describe("POST #{path}", response) if response.status >= 500
      return if response.status == 202 || response.status == 200

      # 4xx (too large, stale request id): this invocation is lost; go on.
      warn "kindling ruby runtime: #{describe("POST #{path}", response)}"
    end

    def describe(what, response)
      "#{what} answered HTTP #{response.status}: #{response.body.to_s[0, 1000].force_encoding(Encoding::UTF_8).scrub}"
    end
  end

  # An error as AWS's Ruby runtime reports it (LambdaErrors::LambdaError).
  class LambdaError < StandardError
    STANDARD_ERRORS = %w[ArgumentError NoMethodError Exception StandardError NameError LoadError SystemExit
                         SystemStackError].freeze

    attr_reader :original

    def initialize(original, classification = 'Function')
      @original = original
      @error_class = original.class.to_s
      @error_type = "#{classification}<#{original.class}>"
      @error_message = KindlingRuntime.plain_message(original)
      @stack_trace = KindlingRuntime.user_backtrace(original)
      super(@error_message)
    end

    # The Lambda-Runtime-Function-Error-Type header value.
    def runtime_error_type
      STANDARD_ERRORS.include?(@error_class) ? @error_type : 'Function<UserException>'
    end

    def to_lambda_response
      { errorMessage: @error_message, errorType: @error_type, stackTrace: @stack_trace }
    end
  end

  # The exception's own message: Ruby 3.1 appends did_you_mean suggestions and
  # error_highlight snippets to #message; 3.2+ keep them in #detailed_message.
  def self.plain_message(error)
    if !error.respond_to?(:detailed_message) && error.respond_to?(:original_message)
      error.original_message
    else
      error.message
    end
  rescue StandardError
    error.class.to_s
  end

  # Backtrace lines up to the first frame of this bootstrap (at most 100).
  def self.user_backtrace(error)
    lines = []
    (error.backtrace_locations || []).first(100).each do |location|
      path = location.absolute_path || location.path
      break if path == THIS_FILE

      lines << location.to_s
    end
    lines
  end

  def self.log_error(message, error)
    $stdout.puts(message)
    $stdout.puts(JSON.pretty_generate(error.to_lambda_response))
  end

  # The handler string and how to call it.
  class Handler
    attr_reader :file_name, :method_name, :class_name

    def initialize(handler)
      parts = handler.to_s.split('.')
      case parts.size
      when 2
        @file_name, @method_name = parts
      when 3
        @file_name, @class_name, @method_name = parts
      else
        raise ArgumentError, "Invalid handler #{parts}, must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD " \
                             'where FILENAME corresponds with an existing Ruby source file FILENAME.rb, CLASS is an ' \
                             'optional module/class namespace and METHOD is a callable method. If using CLASS, ' \
                             'METHOD must be a class-level method.'
      end
    end

    # Loads the handler file: the task root's FILE.rb when it exists, else a
    # plain require (which names the file in its LoadError, as on AWS).
    def load_file(task_root)
      local = File.join(task_root, "#{@file_name}.rb")
      require(File.file?(local) ? local : @file_name)
    end

    def call(event, context)
      if @class_name
        Object.const_get(@class_name).send(@method_name, event: event, context: context)
      else
        TOPLEVEL_BINDING.receiver.send(@method_name, event: event, context: context)
      end
    end
  end

  # Makes Logger.new($stdout) (and $stderr, nil) write AWS's line format:
  # "I, [2024-01-31T12:00:00.123456 #8]  INFO <request id> -- : message".
  class LogFormatter < Logger::Formatter
    FORMAT = "%<sev>s, [%<datetime>s #%<process>d] %<severity>5s %<request_id>s -- %<progname>s: %<msg>s\n"

    def call(severity, time, progname, msg)
      format(FORMAT, sev: severity[0], datetime: format_datetime(time), process: Process.pid, severity: severity,
                     request_id: $_global_aws_request_id, progname: progname, msg: msg2str(msg)).encode('UTF-8')
    end
  end

  module LoggerPatch
    def initialize(logdev, *args, **options)
      if logdev.nil? || logdev == $stdout || logdev == $stderr
        logdev = $stdout if logdev.nil?
        options[:formatter] ||= LogFormatter.new
      end
      super(logdev, *args, **options)
    end
  end

  # The invocation loop, as AWS's LambdaRunner.
  class Runner
    def initialize(api, handler_string, task_root)
      @api = api
      @handler_string = handler_string
      @task_root = task_root
    end

    def run
      begin
        @handler = Handler.new(@handler_string)
        @handler.load_file(@task_root)
      rescue Exception => e # rubocop:disable Lint/RescueException -- LoadError, SyntaxError, anything at load
        error = LambdaError.new(e, 'Init')
        KindlingRuntime.log_error("Init error when loading handler #{@handler_string}", error)
        @api.post_init_error(error)
        return INIT_ERROR_EXIT
      end
      loop do
        exit_code = handle(@api.next_invocation)
        return exit_code if exit_code
      end
    end

    private

    # Runs one invocation; returns an exit code when the runtime must stop.
    def handle(request)
      $_global_aws_request_id = request.request_id
      trace_id = request['Lambda-Runtime-Trace-Id']
      if trace_id.to_s.empty?
        ENV.delete(TRACE_ENV)
      else
        ENV[TRACE_ENV] = trace_id
      end
      begin
        event = AwsLambda::Marshaller.marshall_request(request)
        context = LambdaContext.new(request)
      rescue StandardError => e
        @api.post_error(request.request_id, LambdaError.new(e, 'Runtime'))
        return nil
      end
      begin
        response = @handler.call(event, context)
        body, content_type = AwsLambda::Marshaller.marshall_response(response)
      rescue NoMethodError, NameError => e
        return critical(request, e)
      rescue StandardError => e
        error = LambdaError.new(e)
        KindlingRuntime.log_error('Error raised from handler method', error)
        @api.post_error(request.request_id, error)
        return nil
      rescue Exception => e # rubocop:disable Lint/RescueException -- as AWS: critical, ends the runtime
        return critical(request, e)
      end
      content_type ||= 'application/json'
      body = body.read if content_type == 'application/unknown' && body.respond_to?(:read)
      @api.post_response(request.request_id, body.to_s, content_type)
      nil
    end

    def critical(request, exception)
      error = LambdaError.new(exception)
      KindlingRuntime.log_error('Critical exception from handler', error)
      @api.post_error(request.request_id, error)
      CRITICAL_ERROR_EXIT
    end
  end

  # RubyGems, loaded on first need when the interpreter was started with
  # --disable-gems: loading it at boot costs ~35 ms of a ~55 ms cold start, and
  # most functions never need it. It loads on the first `require` that fails
  # without it (a gem from vendor/bundle or a layer, a bundled gem), the first
  # reference to `Gem`, or the first call of `gem`; the failed require is then
  # retried through RubyGems. (did_you_mean and error_highlight, which Ruby
  # loads with RubyGems at boot, are not loaded; on Ruby 3.2+ they only affect
  # detailed_message, never Exception#message.)
  module LazyRubyGems
    PLAIN_REQUIRE = Kernel.instance_method(:require)

    # Defines Kernel#require and #gem wrappers that load RubyGems on first need.
    # They live in Kernel itself (not a prepended module) so that RubyGems, when
    # it loads, aliases the require wrapper as gem_original_require and then
    # replaces both with its own methods, exactly as it would at boot.
    def self.install
      return if defined?(::Gem) # started with RubyGems: nothing to do

      Object.autoload(:Gem, 'rubygems')
      KindlingRuntime.quietly { define_hooks }
    end

    def self.define_hooks
      Kernel.module_eval do
        def require(path)
          KindlingRuntime::LazyRubyGems::PLAIN_REQUIRE.bind_call(self, path)
        rescue LoadError
          raise unless KindlingRuntime::LazyRubyGems.load

          require(path) # RubyGems' require now
        end

        def gem(*args, **options)
          raise NoMethodError, "undefined method `gem' (RubyGems failed to load)" unless KindlingRuntime::LazyRubyGems.load

          gem(*args, **options) # RubyGems' gem now
        end

        private :require, :gem
      end
    end

    # Loads RubyGems once; true if this call loaded it.
    def self.load
      return false if @attempted || !Object.autoload?(:Gem)

      @attempted = true
      # RubyGems replaces the hooks; no "method redefined" warnings under -w.
      KindlingRuntime.quietly { PLAIN_REQUIRE.bind_call(Object.new, 'rubygems') }
      true
    end
  end

  def self.quietly
    verbose = $VERBOSE
    $VERBOSE = nil
    yield
  ensure
    $VERBOSE = verbose
  end

  # The ABI directory name of this interpreter's gems (RbConfig's ruby_version,
  # "3.1.0" for Ruby 3.1.x, without loading rbconfig).
  INTERPRETER_ABI = RUBY_VERSION.sub(/\.\d+\z/, '.0')

  # The ABI directory name gems are installed under (vendor/bundle/ruby/<abi>):
  # the runtime's (ruby3.2 -> 3.2.0) when Kindling names it, else this interpreter's.
  def self.gem_abi
    match = /ruby(\d+)\.(\d+)/.match(ENV['AWS_EXECUTION_ENV'].to_s)
    match ? "#{match[1]}.#{match[2]}.0" : INTERPRETER_ABI
  end

  # $LOAD_PATH and GEM_PATH as on AWS: task root first, layers next.
  def self.configure_paths(task_root)
    rubylib = ENV['RUBYLIB'].to_s.split(File::PATH_SEPARATOR).reject(&:empty?).map { |dir| File.expand_path(dir) }
    preferred = [task_root] + (rubylib.empty? ? ['/opt/ruby/lib'] : rubylib)
    rest = $LOAD_PATH.reject { |dir| preferred.include?(dir) || dir == File.dirname(THIS_FILE) }
    $LOAD_PATH.replace(preferred.uniq + rest)
    return unless ENV['GEM_PATH'].nil?

    abis = [gem_abi, INTERPRETER_ABI].uniq
    dirs = abis.map { |abi| File.join(task_root, 'vendor', 'bundle', 'ruby', abi) } + abis.map { |abi| "/opt/ruby/gems/#{abi}" }
    # A trailing separator makes RubyGems append its default path.
    ENV['GEM_PATH'] = dirs.join(File::PATH_SEPARATOR) + File::PATH_SEPARATOR
    Gem.clear_paths unless Object.autoload?(:Gem) # RubyGems already loaded: re-read GEM_PATH
  end

  def self.main(argv)
    # Lambda's LANG=en_US.UTF-8 gives UTF-8; a host without that locale would give US-ASCII.
    Encoding.default_external = Encoding::UTF_8 if [Encoding::US_ASCII, Encoding::ASCII_8BIT].include?(Encoding.default_external)
    address = ENV['AWS_LAMBDA_RUNTIME_API']
    if address.to_s.empty?
      warn 'kindling ruby runtime: AWS_LAMBDA_RUNTIME_API is not set'
      return 2
    end
    handler = argv.first || ENV['_HANDLER']
    argv.clear # user code sees no arguments, as on AWS
    task_root = File.expand_path(ENV['LAMBDA_TASK_ROOT'].to_s.empty? ? Dir.pwd : ENV['LAMBDA_TASK_ROOT'])
    LazyRubyGems.install
    configure_paths(task_root)
    Logger.prepend(LoggerPatch)
    Runner.new(RuntimeApiClient.new(address), handler, task_root).run
  rescue ApiError => e
    warn "kindling ruby runtime: #{e.message}"
    1
  end
end

# The context argument, with the attributes AWS's Ruby runtime provides.
class LambdaContext
  attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name, :function_name,
              :memory_limit_in_mb, :function_version, :identity, :tenant_id, :client_context, :deadline_ms

  def initialize(request)
    @clock_diff = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) -
                  Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
    @deadline_ms = request['Lambda-Runtime-Deadline-Ms'].to_i
    @aws_request_id = request['Lambda-Runtime-Aws-Request-Id']
    @invoked_function_arn = request['Lambda-Runtime-Invoked-Function-Arn']
    @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
    @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
    @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
    @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    identity = request['Lambda-Runtime-Cognito-Identity']
    @identity = JSON.parse(identity) unless identity.to_s.empty?
    tenant_id = request['Lambda-Runtime-Aws-Tenant-Id']
    @tenant_id = tenant_id unless tenant_id.to_s.empty?
    client_context = request['Lambda-Runtime-Client-Context']
    @client_context = JSON.parse(client_context) unless client_context.to_s.empty?
  end

  def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName -- AWS's name
    now = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) + @clock_diff
    remaining = @deadline_ms - now
    remaining.positive? ? remaining : 0
  end
end

module AwsLambda
  # Event and result (de)serialization; users may redefine these, as on AWS.
  class Marshaller
    class << self
      # JSON events are parsed; other content types are passed as the raw body.
      def marshall_request(raw_request)
        if raw_request['Content-Type'] == 'application/json'
          JSON.parse(raw_request.body)
        else
          raw_request.body
        end
      end

      # The result's JSON; an IO or StringIO is sent raw as application/unknown.
      def marshall_response(method_response)
        if method_response.is_a?(IO) || (defined?(::StringIO) && method_response.is_a?(::StringIO))
          [method_response, 'application/unknown']
        else
          method_response.to_json
        end
      end
    end
  end
end

exit(KindlingRuntime.main(ARGV)) if $PROGRAM_NAME == __FILE__
