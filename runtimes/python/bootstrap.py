"""Kindling's Python runtime bootstrap.

Runs inside one execution environment: loads the user's handler, then loops
forever over the AWS Lambda Runtime API (version 2018-06-01), calling the
handler once per invocation. Standard library only; Python 3.8 or newer.

Launch command (Kindling must use exactly this):

    <python3> -I -S -u /path/to/runtimes/python/bootstrap.py [HANDLER]

    <python3>  a real interpreter binary (e.g. /usr/bin/python3.11), never a
               pyenv shim or a wrapper script.
    -I         isolated mode: ignore PYTHON* variables from the host, no user
               site-packages, no script directory on sys.path. PYTHONPATH is
               then applied by this file itself (see sys.path below).
    -S         do not run `site`: no host site-packages, `.pth` files or
               sitecustomize leak into the function, and start-up is ~3 ms
               faster. Side effect: the interactive helpers `exit`, `quit`,
               `help` are not builtins (sys.exit works as usual).
    -u         unbuffered stdout/stderr, so log lines reach Kindling at once.
    HANDLER    optional; overrides _HANDLER (useful for container images).

    Working directory: LAMBDA_TASK_ROOT (as on AWS, where it is /var/task).

    Kindling runs this file precompiled: each interpreter compiles it once
    (py_compile, dfile = this file's path) and runs the .pyc in its place. An
    interpreter running a .py keeps the file's syntax tree allocated for as long
    as its top-level code runs, which here is forever (~1.6 MB per idle
    environment), and compiles it at every start (~15 ms of CPU). A .pyc only
    works with the interpreter version that wrote it.

Environment read:
    AWS_LAMBDA_RUNTIME_API      host:port of the Runtime API (required)
    _HANDLER                    "module.function"; module may be "dir/file" or
                                "pkg.sub" (argv[1] wins when given)
    LAMBDA_TASK_ROOT            function code directory (default: cwd)
    PYTHONPATH                  extra import directories (honoured although -I)
    AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
    AWS_LAMBDA_LOG_STREAM_NAME  copied into each context object
    AWS_LAMBDA_LOG_LEVEL        root logger level (TRACE means DEBUG)
    KINDLING_IDENTITY_FD        pre-initialized start: wait at this descriptor for
                                the function's environment (see receive_identity)
Environment written: _X_AMZN_TRACE_ID (per invocation, from the trace header).

sys.path, in order: LAMBDA_TASK_ROOT, /opt/python/lib/pythonX.Y/site-packages,
/opt/python, PYTHONPATH entries, then the interpreter's standard library.

Behaviour follows AWS's Python runtime (awslambdaric): the same error
payloads {"errorMessage", "errorType", "requestId", "stackTrace"}, the same
Runtime.* error types and messages, the same context object, the same log
line formats. Differences, on purpose:
  * Every /error and /init/error POST carries Lambda-Runtime-Function-Error-Type
    set to the payload's errorType (AWS omits it on invocation errors).
  * Decimal results are encoded as JSON numbers via int/float.
  * Because of -S the interpreter's own site-packages are not importable (AWS
    ships boto3 there); Kindling can offer such libraries through PYTHONPATH.
Log output goes to stdout, like AWS's: the root logger's lines and each
error record ("[ERROR] Type: message" plus traceback, one \r-joined line).
AWS_LAMBDA_LOG_FORMAT=JSON turns both into Lambda's JSON records (one line
each); print() output stays as it is, as on AWS.

Start-up is kept short by importing only C-level modules (_socket, _json, time)
plus os and sys; `logging` is configured only when user code imports it, and
`traceback` is imported only to format an error.
"""

import os
import sys
import time

import _socket

RUNTIME_API_VERSION = "2018-06-01"
USER_AGENT = "kindling-python-runtime/1 (python %d.%d.%d)" % sys.version_info[:3]
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
TRACE_ENV = "_X_AMZN_TRACE_ID"

MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
ERROR_LINE_SEPARATOR = "\r"  # keeps a multi-line error one CloudWatch-style record
ERROR_INDENT = "\u00a0"  # leading spaces of traceback lines become NO-BREAK SPACE

# This file's name as recorded in its code objects (also right when run from a .pyc).
_THIS_FILE = (lambda: None).__code__.co_filename

# Request id of the invocation in progress; read by the logging filter.
_current_request_id = ""
_current_tenant_id = None


# --------------------------------------------------------------------------
# JSON without `import json`
# --------------------------------------------------------------------------


class _JsonDecoderSettings:
    """The attributes _json.make_scanner reads; the same defaults json.loads uses."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": float("-inf"),
        "Infinity": float("inf"),
        "NaN": float("nan"),
    }.__getitem__


class JsonCodec:
    """json.loads / json.dumps (default arguments) built on CPython's `_json`.

    `import json` costs ~8 ms because json.decoder imports `re`, which imports
    `enum`. With default arguments the json module only forwards to these C
    functions, so results are identical. Any failure, and any interpreter
    without a compatible `_json`, falls back to the json module itself, which
    also produces the canonical error messages.
    """

    _WHITESPACE = " \t\n\r"

    def __init__(self):
        self._accelerator = self._load_accelerator()

    def _load_accelerator(self):
        try:
            import _json

            scanner = _json.make_scanner(_JsonDecoderSettings())
            probe = {"a": [1, 2.5, None, True, "\u00e9"]}
            expected = '{"a": [1, 2.5, null, true, "\\u00e9"]}'
            if self._encode_with(_json, probe) != expected or scanner(expected, 0)[0] != probe:
                return None
            return _json, scanner
        except Exception:
            return None

    @staticmethod
    def _encode_with(accelerator, value):
        encoder = accelerator.make_encoder(
            {}, _json_default, accelerator.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
        return "".join(encoder(value, 0))

    def loads(self, data):
        if self._accelerator is not None:
            try:
                text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
                start = len(text) - len(text.lstrip(self._WHITESPACE))
                value, end = self._accelerator[1](text, start)
                if not text[end:].strip(self._WHITESPACE):
                    return value
            except Exception:  # the C scanner's own errors need json.decoder loaded
                pass
        import json

        return json.loads(data)

    def dumps(self, value):
        if self._accelerator is not None:
            return self._encode_with(self._accelerator[0], value)
        import json

        return json.dumps(value, default=_json_default)


def _json_default(value):
    """Encode what the json module cannot: Decimal (as AWS does); else fail like json."""
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


JSON = JsonCodec()


# --------------------------------------------------------------------------
# Minimal HTTP/1.1 client for the Runtime API
# --------------------------------------------------------------------------


class RuntimeApiError(Exception):
    """The Runtime API is unreachable or answered in a way we cannot continue from."""


class _StaleConnection(Exception):
    """A reused keep-alive connection died before any response byte arrived."""


class HttpResponse:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> str value
        self.body = body


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; blocking, with no timeout.

    The Runtime API's /next is a long poll that may block for hours, so the
    socket never times out. TCP_NODELAY is set: requests are small and must
    not wait for delayed ACKs. A request that fails on a reused connection
    before any response byte arrives is retried once on a fresh connection.
    """

    _CHUNK = 65536

    def __init__(self, host, port):
        self._host = host
        self._port = port
        self._host_header = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
        self._sock = None
        self._buffer = bytearray()
        self._received = False

    def request(self, method, path, headers=(), body=b""):
        reused = self._sock is not None
        if not reused:
            self._connect()
        try:
            return self._exchange(method, path, headers, body)
        except (OSError, _StaleConnection) as exc:
            self.close()
            if not reused or self._received:
                raise RuntimeApiError("%s %s failed: %s" % (method, path, exc)) from exc
        self._connect()
        try:
            return self._exchange(method, path, headers, body)
        except (OSError, _StaleConnection) as exc:
            self.close()
            raise RuntimeApiError("%s %s failed: %s" % (method, path, exc)) from exc

    def close(self):
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buffer = bytearray()

    def _connect(self):
        # An ASCII host is passed as bytes: a str would be IDNA-encoded, which
        # imports `encodings.idna` and with it `re` (~7 ms).
        host = self._host.encode("ascii") if self._host.isascii() else self._host
        try:
            family, kind, proto, _, address = _socket.getaddrinfo(host, self._port, 0, _socket.SOCK_STREAM)[0]
            sock = _socket.socket(family, kind, proto)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.connect(address)
        except OSError as exc:
            raise RuntimeApiError("cannot connect to Runtime API at %s: %s" % (self._host_header, exc)) from exc
        self._sock = sock
        self._buffer = bytearray()

    def _exchange(self, method, path, headers, body):
        self._received = False
        self._send(method, path, headers, body)
        return self._read_response(method)

    def _send(self, method, path, headers, body):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + self._host_header, "User-Agent: " + USER_AGENT]
        if body or method != "GET":
            lines.append("Content-Length: %d" % len(body))
        lines.extend("%s: %s" % pair for pair in headers)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        if len(body) <= self._CHUNK:
            self._sock.sendall(head + body)
        else:
            self._sock.sendall(head)
            self._sock.sendall(body)

    def _read_response(self, method):
        while True:
            version, status = self._read_status_line()
            headers = self._read_headers()
            if not 100 <= status < 200:
                break
        body, framed = self._read_body(method, status, headers)
        connection = headers.get("connection", "").lower()
        if not framed or connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
            self.close()
        return HttpResponse(status, headers, body)

    def _read_status_line(self):
        line = self._read_line()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise RuntimeApiError("malformed HTTP status line: %r" % line[:100])
        return parts[0].decode("ascii"), int(parts[1])

    def _read_headers(self):
        headers = {}
        while True:
            line = self._read_line()
            if not line:
                return headers
            name, _, value = line.partition(b":")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("utf-8", "surrogateescape")
            headers[key] = headers[key] + ", " + text if key in headers else text

    def _read_body(self, method, status, headers):
        """Return (body, framed); framed is False when the body ran until EOF."""
        if method == "HEAD" or status in (204, 304):
            return b"", True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(), True
        length = headers.get("content-length")
        if length is not None:
            return self._read_exact(int(length)), True
        return self._read_until_eof(), False

    def _read_chunked(self):
        parts = []
        while True:
            size_line = self._read_line().split(b";", 1)[0].strip()
            size = int(size_line, 16)
            if size == 0:
                while self._read_line():  # trailer fields, then the final blank line
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            if self._read_line():
                raise RuntimeApiError("malformed chunked body")

    def _read_line(self):
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            self._fill()

    def _read_exact(self, size):
        if len(self._buffer) >= size:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data
        result = bytearray(size)
        have = len(self._buffer)
        result[:have] = self._buffer
        self._buffer = bytearray()
        view = memoryview(result)
        while have < size:
            count = self._sock.recv_into(view[have:])
            if count == 0:
                raise RuntimeApiError("connection closed in the middle of a response body")
            have += count
        return bytes(result)

    def _read_until_eof(self):
        while True:
            data = self._sock.recv(self._CHUNK)
            if not data:
                body = bytes(self._buffer)
                self._buffer = bytearray()
                return body
            self._buffer += data

    def _fill(self):
        data = self._sock.recv(self._CHUNK)
        if not data:
            if not self._received:
                raise _StaleConnection("connection closed by the Runtime API")
            raise RuntimeApiError("connection closed in the middle of a response")
        self._received = True
        self._buffer += data


def _split_host_port(address):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RuntimeApiError("AWS_LAMBDA_RUNTIME_API must be host:port, got %r" % address)
    return host.strip("[]"), int(port)


def _quote_path_segment(value):
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
    if all(ch in safe for ch in value):
        return value
    return "".join(ch if ch in safe else "".join("%%%02X" % b for b in ch.encode("utf-8")) for ch in value)


# --------------------------------------------------------------------------
# Runtime API
# --------------------------------------------------------------------------


class Invocation:
    """One event from GET /runtime/invocation/next."""

    __slots__ = (
        "request_id",
        "deadline_ms",
        "invoked_function_arn",
        "trace_id",
        "client_context",
        "cognito_identity",
        "tenant_id",
        "content_type",
        "body",
    )

    def __init__(self, headers, body):
        self.request_id = headers.get("lambda-runtime-aws-request-id", "")
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        self.deadline_ms = int(deadline) if deadline.isdigit() else 0
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.trace_id = headers.get("lambda-runtime-trace-id")
        self.client_context = headers.get("lambda-runtime-client-context")
        self.cognito_identity = headers.get("lambda-runtime-cognito-identity")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        self.content_type = headers.get("content-type")
        self.body = body


class RuntimeApiClient:
    """The four Runtime API calls a runtime makes, over one keep-alive connection."""

    def __init__(self, address):
        host, port = _split_host_port(address)
        self._http = HttpConnection(host, port)
        self._base = "/%s/runtime" % RUNTIME_API_VERSION

    def next_invocation(self):
        response = self._http.request("GET", self._base + "/invocation/next")
        if response.status != 200:
            raise RuntimeApiError(_describe_failure("GET /invocation/next", response))
        return Invocation(response.headers, response.body)

    def post_response(self, request_id, body, content_type):
        path = "%s/invocation/%s/response" % (self._base, _quote_path_segment(request_id))
        self._post(path, body, [("Content-Type", content_type)])

    def post_invocation_error(self, request_id, error):
        path = "%s/invocation/%s/error" % (self._base, _quote_path_segment(request_id))
        self._post_error(path, error)

    def post_init_error(self, error):
        self._post_error(self._base + "/init/error", error)

    def _post_error(self, path, error):
        headers = [("Content-Type", "application/json"), (ERROR_TYPE_HEADER, _header_safe(error["errorType"]))]
        self._post(path, JSON.dumps(error).encode("utf-8"), headers)

    def _post(self, path, body, headers):
        response = self._http.request("POST", path, headers, body)
        if response.status >= 500:
            raise RuntimeApiError(_describe_failure("POST " + path, response))
        if response.status >= 300:
            # The platform refused this result (e.g. too large, or the invocation
            # already timed out); it has failed the invocation itself. Carry on.
            _write_stderr("[WARNING] Runtime API refused the result: %s\n" % _describe_failure("POST " + path, response))


def _describe_failure(what, response):
    return "%s answered HTTP %d: %s" % (what, response.status, response.body[:1000].decode("utf-8", "replace"))


def _header_safe(value):
    return "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f") or "Unhandled"


# --------------------------------------------------------------------------
# Context object handed to the handler
# --------------------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, fields):
        self.cognito_identity_id = fields.get("cognitoIdentityId")
        self.cognito_identity_pool_id = fields.get("cognitoIdentityPoolId")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (name, getattr(self, name)) for name in self.__slots__)


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, fields):
        self.custom = fields.get("custom")
        self.env = fields.get("env")
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else client

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


class LambdaContext:
    """The `context` argument, with the attributes AWS's Python runtime provides."""

    def __init__(self, invocation):
        env = os.environ
        self.aws_request_id = invocation.request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # a str, as on AWS
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invocation.invoked_function_arn
        self.tenant_id = invocation.tenant_id
        self.client_context = _parse_client_context(invocation.client_context)
        self.identity = CognitoIdentity(_parse_json_header(invocation.cognito_identity, "Cognito Identity") or {})
        self._deadline_ms = invocation.deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, message):
        sys.stdout.write(str(message))

    def __repr__(self):
        fields = (
            "aws_request_id",
            "log_group_name",
            "log_stream_name",
            "function_name",
            "memory_limit_in_mb",
            "function_version",
            "invoked_function_arn",
            "client_context",
            "identity",
            "tenant_id",
        )
        return "LambdaContext([%s])" % ",".join("%s=%s" % (name, getattr(self, name)) for name in fields)


def _parse_client_context(header):
    fields = _parse_json_header(header, "Client Context")
    return ClientContext(fields) if isinstance(fields, dict) else None


def _parse_json_header(header, label):
    if not header:
        return None
    try:
        return JSON.loads(header)
    except Exception as exc:
        raise RuntimeFault(CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (label, exc)) from None


# --------------------------------------------------------------------------
# Errors: payloads and log records
# --------------------------------------------------------------------------


class RuntimeFault(Exception):
    """An error reported with a fixed Runtime.* errorType rather than a class name."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace


def error_payload(exc, request_id=""):
    """The JSON object posted to /error or /init/error for an exception."""
    if isinstance(exc, RuntimeFault):
        error_type, message, stack_trace = exc.error_type, exc.message, exc.stack_trace
    else:
        error_type, message = type(exc).__name__, _safe_str(exc)
        stack_trace = _user_stack_trace(exc.__traceback__)
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def _safe_str(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _user_stack_trace(tb):
    """Formatted frames, starting at the first frame that is not this bootstrap."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for index, frame in enumerate(frames):
        if frame[0] != _THIS_FILE:
            frames = frames[index:]
            break
    return traceback.format_list(frames)


def _json_logs():
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def log_error(error):
    """Write an error as one log record: `[ERROR] Type: message` plus the traceback, or
    with AWS_LAMBDA_LOG_FORMAT=JSON one JSON record {"timestamp","level","errorMessage",...}."""
    if _json_logs():
        import json

        record = {"timestamp": time.strftime(JSON_DATE_FORMAT, time.gmtime()), "level": "ERROR"}
        record.update(error)
        if _current_request_id:
            record.setdefault("requestId", _current_request_id)
        sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
        return
    description = "[ERROR]"
    if error["errorType"]:
        description += " " + error["errorType"]
        if error["errorMessage"]:
            description += ":"
    if error["errorMessage"]:
        description += " " + error["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        lines.extend(_indent_with_nbsp(line) for line in element.splitlines() or [""])
    sys.stdout.write(ERROR_LINE_SEPARATOR.join(lines) + "\n")
    sys.stdout.flush()


def _indent_with_nbsp(line):
    stripped = line.lstrip(" ")
    return ERROR_INDENT * (len(line) - len(stripped)) + stripped


def _write_stderr(text):
    sys.stderr.write(text)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Loading the user's handler
# --------------------------------------------------------------------------


def configure_sys_path(task_root):
    """Put the function's code and layers first, as Lambda's Python runtime does."""
    version = "python%d.%d" % sys.version_info[:2]
    preferred = [task_root, "/opt/python/lib/%s/site-packages" % version, "/opt/python"]
    preferred += [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    own_dir = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if entry not in preferred and entry not in ("", own_dir)]
    sys.path[:] = _unique(preferred) + rest


def _unique(items):
    seen = set()
    return [item for item in items if not (item in seen or seen.add(item))]


def load_handler(handler):
    """Import the module named by `handler` ("dir/module.function") and return the function."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise RuntimeFault(MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, exc)) from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        message = "Cannot use built-in module %s as a handler module" % module_name
        raise RuntimeFault(BUILT_IN_MODULE_CONFLICT, message)
    module = _import_user_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        message = "Handler '%s' missing on module '%s'" % (function_name, module_name)
        raise RuntimeFault(HANDLER_NOT_FOUND, message) from None


def _import_user_module(module_name):
    import_name = module_name.replace("/", ".")
    try:
        __import__(import_name)
        return sys.modules[import_name]
    except ImportError as exc:
        message = "Unable to import module '%s': %s" % (module_name, exc)
        raise RuntimeFault(IMPORT_MODULE_ERROR, message) from None
    except SyntaxError as exc:
        message = "Syntax error in module '%s': %s" % (module_name, exc)
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise RuntimeFault(USER_CODE_SYNTAX_ERROR, message, trace) from None


# --------------------------------------------------------------------------
# Logging: configured the moment user code imports `logging`
# --------------------------------------------------------------------------


class _LoggingImportHook:
    """sys.meta_path finder that configures the root logger right after `logging` loads.

    Importing logging costs ~13 ms, and most handlers never use it, so the
    bootstrap does not import it; but when user code does, the root logger
    must already carry Lambda's handler (so `logging.basicConfig` is a no-op,
    exactly as on AWS). The hook removes itself once logging has loaded.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "logging":
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ConfigureAfterExec(spec.loader, self)
                return spec
        return None


class _ConfigureAfterExec:
    """Wraps the logging package's loader; delegates everything else to it."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self._hook in sys.meta_path:
            sys.meta_path.remove(self._hook)
            configure_root_logger(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def install_logging_hook():
    logging = sys.modules.get("logging")
    if logging is not None:
        configure_root_logger(logging)
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


def configure_root_logger(logging):
    """Root logger as on AWS: text lines with level, UTC time and request id, to stdout."""

    class LambdaLogHandler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
                sys.stdout.flush()
            except Exception:
                self.handleError(record)

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id or ""
            record.tenant_id = _current_tenant_id
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLogHandler()
    if _json_logs():
        handler.setFormatter(_json_formatter(logging))
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = _log_level_from_env()
    if level and isinstance(logging.getLevelName(level), int):
        root.setLevel(level)
    root.addHandler(handler)


# LogRecord attributes that are not copied into JSON records as extra keys.
_RESERVED_RECORD_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
    "tenant_id", "taskName", "message", "asctime",
))


def _json_formatter(logging):
    """AWS_LAMBDA_LOG_FORMAT=JSON: Lambda's Python JSON record, one line per log call:
    {"timestamp","level","message","logger","requestId"} (+ stackTrace, errorType,
    errorMessage, location for exceptions, and the record's `extra` keys)."""
    import json
    import traceback

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            levelno = min(50, max(0, record.levelno)) // 10 * 10
            exc = record.exc_info
            msg = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
            result = {
                "timestamp": self.formatTime(record, JSON_DATE_FORMAT),
                "level": logging.getLevelName(levelno),
                "message": msg,
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc[2]) if exc else None,
                "errorType": exc[0].__name__ if exc else None,
                "errorMessage": str(exc[1]) if exc else None,
                "requestId": getattr(record, "aws_request_id", None) or None,
                "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None,
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_RECORD_FIELDS and key not in result:
                    result[key] = value
            result = {k: v for k, v in result.items() if v is not None}
            return json.dumps(result, ensure_ascii=False, default=str) + "\n"

    return JsonFormatter()


def _log_level_from_env():
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    return "DEBUG" if level == "TRACE" else level


# --------------------------------------------------------------------------
# The invocation loop
# --------------------------------------------------------------------------


def handle_invocation(api, handler, invocation):
    """Run the handler for one event and post its result or its error."""
    global _current_request_id, _current_tenant_id
    _current_request_id = invocation.request_id
    _current_tenant_id = invocation.tenant_id
    _export_trace_id(invocation.trace_id)
    try:
        context = LambdaContext(invocation)
        event = decode_event(invocation)
        body, content_type = encode_result(handler(event, context))
    except Exception as exc:
        error = error_payload(exc, invocation.request_id)
        log_error(error)
        api.post_invocation_error(invocation.request_id, error)
    else:
        api.post_response(invocation.request_id, body, content_type)


def _export_trace_id(trace_id):
    if trace_id:
        os.environ[TRACE_ENV] = trace_id
    else:
        os.environ.pop(TRACE_ENV, None)


def decode_event(invocation):
    """JSON events become Python objects; other content types are passed as bytes."""
    content_type = (invocation.content_type or "application/json").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return invocation.body
    try:
        return JSON.loads(invocation.body)
    except Exception as exc:
        raise RuntimeFault(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % exc) from None


def encode_result(result):
    """Return (body bytes, content type) for the handler's return value."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return JSON.dumps(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise RuntimeFault(MARSHAL_ERROR, "Unable to marshal response: %s" % exc) from None


def make_stdio_unbuffered():
    """Fallback for launches without -u: flush at least at every newline."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not stream.write_through:
            reconfigure(line_buffering=True)


def initialise(api, handler_name):
    """Prepare the interpreter and load the handler; on failure report it and exit."""
    configure_sys_path(os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd())
    install_logging_hook()
    try:
        return load_handler(handler_name)
    except Exception as exc:
        error = error_payload(exc)
        log_error(error)
        api.post_init_error(error)
        sys.exit(1)


def receive_identity(fd):
    """Pre-initialized start: wait at `fd` for the function this process is to run.

    Kindling started this interpreter (and imported this file) before any function was
    chosen, with a neutral environment, in an environment of its own (namespaces, cgroup,
    user, /tmp). When a function's first invocation arrives, Kindling attaches its code at
    /var/task and /opt and writes the function's complete environment here as
    NUL-separated KEY=VALUE entries, then closes the pipe. Nothing of another function was
    ever in this process: it runs exactly one function, then ends with its environment.

    Returns False when the pipe closed empty (the environment is being discarded unused).
    """
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    data = b"".join(chunks)
    if not data:
        return False
    os.environ.clear()
    for entry in data.split(b"\0"):
        if entry:
            key, _, value = entry.partition(b"=")
            os.environ[os.fsdecode(key)] = os.fsdecode(value)
    time.tzset()
    _show_environment(data)
    # The process started in the empty mount point; the code is mounted over it since.
    os.chdir(os.environ.get("LAMBDA_TASK_ROOT") or "/var/task")
    return True


def _show_environment(data):
    """Make /proc/<pid>/environ (the process's initial environment, which tools on the host
    and in the function read) show the function's environment: it is written over the
    initial one, which Kindling made large enough (and which nothing uses any longer)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
        if len(data) > end - start:
            return
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data + b"\0" * (end - start - len(data)))
    except (OSError, ValueError, IndexError):
        pass


def main(argv):
    make_stdio_unbuffered()
    identity_fd = os.environ.get("KINDLING_IDENTITY_FD")
    if identity_fd is not None and not receive_identity(int(identity_fd)):
        return 0
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _write_stderr("kindling python runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 2
    handler_name = argv[1] if len(argv) > 1 else os.environ.get("_HANDLER", "")
    try:
        api = RuntimeApiClient(address)
        handler = initialise(api, handler_name)
        while True:
            handle_invocation(api, handler, api.next_invocation())
    except RuntimeApiError as exc:
        _write_stderr("kindling python runtime: %s\n" % exc)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
