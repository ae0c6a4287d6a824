"""Test harness for Kindling's runtime bootstraps.

FakeRuntimeApi is a small in-process implementation of the Lambda Runtime
API (2018-06-01) that records everything a bootstrap posts. RuntimeProcess
starts a real bootstrap the way Kindling does (same interpreter flags, same
environment variables) and captures its output. All waits are bounded by
deadlines; nothing sleeps blindly.
"""

import atexit
import glob
import json
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIMES_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_BOOTSTRAP = os.path.join(RUNTIMES_DIR, "python", "bootstrap.py")
NODE_BOOTSTRAP = os.path.join(RUNTIMES_DIR, "node", "bootstrap.js")
RUBY_BOOTSTRAP = os.path.join(RUNTIMES_DIR, "ruby", "bootstrap.rb")
JAVA_SOURCES = os.path.join(RUNTIMES_DIR, "java", "src")
JAVA_MAIN_CLASS = "kindling.runtime.Bootstrap"

PYTHON = os.environ.get("KINDLING_TEST_PYTHON", "/usr/bin/python3")
NODE = os.environ.get("KINDLING_TEST_NODE") or shutil.which("node") or "node"
RUBY = os.environ.get("KINDLING_TEST_RUBY") or shutil.which("ruby") or "ruby"
JAVA = os.path.realpath(os.environ.get("KINDLING_TEST_JAVA") or shutil.which("java") or "java")

FUNCTION_NAME = "test-fn"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:" + FUNCTION_NAME
DEFAULT_TIMEOUT = 15.0


class JavaRuntime:
    """The compiled Java bootstrap (and, optionally, its CDS archive) for one JDK."""

    def __init__(self, jar, archive=None, java=JAVA):
        self.jar = jar
        self.archive = archive
        self.java = java


def javac_next_to(java):
    """The javac of the JDK that `java` belongs to (following symlinks), if it has one."""
    candidate = os.path.join(os.path.dirname(os.path.realpath(java)), "javac")
    return candidate if os.access(candidate, os.X_OK) else None


def build_java_runtime(out_dir, java=JAVA):
    """Compile runtimes/java/src into `out_dir`/kindling-java-runtime.jar, as Kindling does once.

    javac --release 17 keeps the classes loadable by any JDK from 17 on; -XDstringConcat=inline
    compiles string concatenation to StringBuilder calls instead of invokedynamic, whose bootstrap
    costs ~10 ms at the first use in every cold start.
    """
    javac = javac_next_to(java) or shutil.which("javac")
    if javac is None:
        raise RuntimeError("no javac found next to %s or on PATH" % java)
    classes = os.path.join(out_dir, "classes")
    sources = sorted(glob.glob(os.path.join(JAVA_SOURCES, "kindling", "runtime", "*.java")))
    subprocess.run(
        [javac, "--release", "17", "-XDstringConcat=inline", "-encoding", "UTF-8", "-nowarn", "-d", classes] + sources,
        check=True,
    )
    jar = os.path.join(out_dir, "kindling-java-runtime.jar")
    write_jar(jar, classes)
    return JavaRuntime(jar, java=java)


def write_jar(path, classes_dir, extra=None):
    """A jar (zip) of every file under `classes_dir` (plus `extra`: {name: bytes})."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, _, names in sorted(os.walk(classes_dir)):
            for name in sorted(names):
                full = os.path.join(directory, name)
                archive.write(full, os.path.relpath(full, classes_dir))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def create_cds_archive(runtime, archive):
    """Create and check the bootstrap's CDS archive, as Kindling does once per JDK and jar.

    The training run loads what a cold start loads and -XX:ArchiveClassesAtExit writes those
    classes to `archive`. The archive is only valid for this JDK build and this jar at this path
    (size and modification time included); the check starts the JVM with -Xshare:on, which fails
    instead of silently running without it.
    """
    flags = java_jvm_flags(256, "", None, include_cds=False)
    temporary = archive + ".tmp"
    training = [runtime.java, "-XX:ArchiveClassesAtExit=" + temporary, "-Xlog:cds*=off"] + flags
    subprocess.run(training + ["-cp", runtime.jar, JAVA_MAIN_CLASS, "--cds-training"], check=True, stdout=subprocess.DEVNULL)
    check = [runtime.java, "-Xshare:on", "-XX:SharedArchiveFile=" + temporary] + flags
    subprocess.run(check + ["-cp", runtime.jar, JAVA_MAIN_CLASS, "--cds-check"], check=True)
    os.replace(temporary, archive)
    return JavaRuntime(runtime.jar, archive, runtime.java)


def java_heap_kb(memory_mb):
    """Lambda's Java heap: 85% of the function's memory (-XX:MaxHeapSize=445645k at 512 MB)."""
    return math.ceil(memory_mb * 1024 * 0.85)


def java_jvm_flags(memory_mb, tool_options, archive, include_cds=True):
    """Lambda's JVM flags, minus those the user overrides in JAVA_TOOL_OPTIONS.

    The JVM reads JAVA_TOOL_OPTIONS before the command line, so a flag on the command line would
    win; Kindling therefore leaves out each default the user's JAVA_TOOL_OPTIONS sets itself.
    """
    options = tool_options or ""
    flags = []
    if not re.search(r"-Xmx|MaxHeapSize|MaxRAM", options):
        flags.append("-XX:MaxHeapSize=%dk" % java_heap_kb(memory_mb))
    if not re.search(r"-XX:[+-]Use\w*GC\b", options):
        flags.append("-XX:+UseSerialGC")
    if not re.search(r"TieredCompilation|TieredStopAtLevel", options):
        flags += ["-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1"]
    if include_cds and not re.search(r"-Xshare|SharedArchiveFile", options):
        flags.append("-Xshare:auto")
        if archive:
            # If the archive no longer matches (JDK upgraded, jar replaced), run without it, silently:
            # the JVM would otherwise print a warning into the function's log.
            flags += ["-XX:SharedArchiveFile=" + archive, "-Xlog:cds*=off"]
    if not re.search(r"file\.encoding", options):
        # UTF-8 as on Lambda (whose en_US.UTF-8 locale a host may lack); JDK 18+ default to it anyway.
        flags.append("-Dfile.encoding=UTF-8")
    # Not AWS's --add-opens=java.base/java.io=ALL-UNNAMED (for its own runtime's internals): any
    # module option turns off the CDS archive's module graph, ~8 ms per start.
    flags += ["-XX:-UsePerfData", "-Djava.net.preferIPv4Stack=true", "-XX:+ErrorFileToStderr"]
    return flags


_PYTHON_BYTECODE = []


def python_bootstrap():
    """What Kindling runs: the bootstrap compiled by the interpreter into a .pyc whose code names
    bootstrap.py as its file (crates/scheduler/src/python.rs); with KINDLING_TEST_PYTHON_SOURCE=1
    the source itself (Kindling's fallback when it cannot compile)."""
    if os.environ.get("KINDLING_TEST_PYTHON_SOURCE") == "1":
        return PYTHON_BOOTSTRAP
    if not _PYTHON_BYTECODE:
        work = tempfile.mkdtemp(prefix="kindling-pyc-")
        atexit.register(shutil.rmtree, work, True)
        target = os.path.join(work, "bootstrap.pyc")
        subprocess.run(
            [PYTHON, "-I", "-S", "-c",
             "import py_compile, sys; "
             "py_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile=sys.argv[3], doraise=True)",
             PYTHON_BOOTSTRAP, target, PYTHON_BOOTSTRAP],
            check=True, env={}, timeout=60)
        _PYTHON_BYTECODE.append(target)
    return _PYTHON_BYTECODE[0]


def launch_command(runtime, env=None, java_runtime=None, opt_dir=None):
    """The exact command line Kindling uses to start each bootstrap.

    `env` is the runtime's environment (Java reads the memory size and JAVA_TOOL_OPTIONS from it),
    `java_runtime` the compiled Java bootstrap, `opt_dir` the layer root when it is not /opt.
    """
    env = env or {}
    if runtime == "python":
        return [PYTHON, "-I", "-S", "-u", python_bootstrap()]
    if runtime == "node":
        return [NODE, NODE_BOOTSTRAP]
    if runtime == "ruby":
        return [RUBY, "--disable-gems", RUBY_BOOTSTRAP]
    if runtime == "java":
        if java_runtime is None:
            raise ValueError("the java runtime needs its compiled bootstrap (java_runtime=)")
        memory = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        command = [java_runtime.java] + java_jvm_flags(memory, env.get("JAVA_TOOL_OPTIONS"), java_runtime.archive)
        if opt_dir is not None:
            command.append("-Dkindling.opt=" + opt_dir)
        return command + ["-cp", java_runtime.jar, JAVA_MAIN_CLASS]
    raise ValueError(runtime)


def runtime_environment(api_address, handler, task_root, extra=None):
    """The environment Kindling gives a runtime process (see lambda-facts §3.6)."""
    env = {
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": RUNTIMES_DIR,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + FUNCTION_NAME,
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/31/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    env.update(extra or {})
    return env


class Posted:
    """What a bootstrap POSTed for one invocation (or for init)."""

    def __init__(self, kind, path, headers, body):
        self.kind = kind  # "response" | "error" | "init-error"
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body
        self.received_at = time.monotonic()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Posted(%s, %r, %r)" % (self.kind, self.headers, self.body[:300])


class QueuedEvent:
    def __init__(self, request_id, headers, body, chunked):
        self.request_id = request_id
        self.headers = headers
        self.body = body
        self.chunked = chunked


class _QuietServer(ThreadingHTTPServer):
    """Runtimes are killed mid-connection at the end of tests; that is not an error."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeRuntimeApi:
    """A thread-backed Runtime API server that records what the runtime sends."""

    BASE = "/2018-06-01/runtime"

    def __init__(self):
        self._events = queue.Queue()
        self._lock = threading.Condition()
        self._closed = False
        self._watched = None
        # When True, the server silently closes each connection after answering a
        # POST, as a platform may drop idle keep-alive connections.
        self.drop_connections_after_post = False
        self.posted = {}  # request id -> Posted
        self.init_errors = []
        self.next_calls = []  # monotonic time of each GET /next arrival
        self._server = _QuietServer(("127.0.0.1", 0), self._make_handler())
        # A short poll interval: close() waits for serve_forever to notice (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def address(self):
        host, port = self._server.server_address[:2]
        return "%s:%d" % (host, port)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._closed = True
        self._server.shutdown()
        self._server.server_close()

    # -- driving invocations ------------------------------------------------

    def enqueue(self, event=None, *, raw_body=None, request_id=None, deadline_ms=None,
                trace_id=None, client_context=None, cognito_identity=None, tenant_id=None,
                content_type="application/json", chunked=False):
        """Queue an event for the next GET /next; returns its request id."""
        request_id = request_id or str(uuid.uuid4())
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 30_000
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Content-Type": content_type,
        }
        optional = {
            "Lambda-Runtime-Trace-Id": trace_id,
            "Lambda-Runtime-Client-Context": client_context,
            "Lambda-Runtime-Cognito-Identity": cognito_identity,
            "Lambda-Runtime-Aws-Tenant-Id": tenant_id,
        }
        headers.update({name: value for name, value in optional.items() if value is not None})
        body = raw_body if raw_body is not None else json.dumps(event).encode()
        self._events.put(QueuedEvent(request_id, headers, body, chunked))
        return request_id

    def invoke(self, event=None, timeout=DEFAULT_TIMEOUT, **options):
        return self.wait_posted(self.enqueue(event, **options), timeout)

    def wait_posted(self, request_id, timeout=DEFAULT_TIMEOUT):
        return self._wait(lambda: self.posted.get(request_id), timeout, "a result for " + request_id)

    def wait_init_error(self, timeout=DEFAULT_TIMEOUT):
        return self._wait(lambda: self.init_errors[0] if self.init_errors else None, timeout, "an init error")

    def wait_next_calls(self, count, timeout=DEFAULT_TIMEOUT):
        self._wait(lambda: len(self.next_calls) >= count, timeout, "%d GET /next calls" % count)
        return self.next_calls[:count]

    def watch(self, process):
        """Make waits fail fast, with the runtime's output, if `process` exits."""
        self._watched = process

    def _wait(self, probe, timeout, what):
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = probe()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, self._describe_watched()))
                if self._watched is not None and not self._watched.running:
                    raise AssertionError("runtime exited while waiting for %s%s" % (what, self._describe_watched()))
                self._lock.wait(min(remaining, 0.05))

    def _describe_watched(self):
        if self._watched is None:
            return ""
        return "\n--- runtime stdout ---\n%s\n--- runtime stderr ---\n%s" % (
            self._watched.stdout, self._watched.stderr)

    def _record(self, action):
        with self._lock:
            action()
            self._lock.notify_all()

    def _next_event(self):
        while not self._closed:
            try:
                return self._events.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    # -- HTTP side ---------------------------------------------------------

    def _make_handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != api.BASE + "/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                api._record(lambda: api.next_calls.append(time.monotonic()))
                event = api._next_event()
                if event is None:  # server shutting down: just drop the connection
                    self.close_connection = True
                    return
                self._reply(200, event.body, event.headers, chunked=event.chunked)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                parts = self.path[len(api.BASE):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api._record(lambda: api.init_errors.append(Posted("init-error", self.path, headers, body)))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    posted = Posted(parts[2], self.path, headers, body)
                    api._record(lambda: api.posted.__setitem__(parts[1], posted))
                else:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                self._reply(202, b'{"status":"OK"}')
                if api.drop_connections_after_post:
                    self.close_connection = True

            def _reply(self, status, body, headers=None, chunked=False):
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    middle = len(body) // 2
                    for piece in (body[:middle], body[middle:]):
                        if piece:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.wfile.flush()

        return Handler


class RuntimeProcess:
    """A bootstrap process with its stdout/stderr collected in the background."""

    def __init__(self, command, env, cwd):
        self.started_at = time.monotonic()
        self._process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._stdout = []
        self._stderr = []
        self._readers = [
            threading.Thread(target=self._drain, args=(self._process.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._drain, args=(self._process.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.append(chunk)

    @property
    def stdout(self):
        return b"".join(self._stdout).decode("utf-8", "replace")

    @property
    def stderr(self):
        return b"".join(self._stderr).decode("utf-8", "replace")

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        try:
            code = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("runtime did not exit within %.1fs; stderr:\n%s" % (timeout, self.stderr))
        for reader in self._readers:
            reader.join(timeout)
        return code

    def wait_output(self, text, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while text not in self.stdout:
            if time.monotonic() > deadline:
                raise AssertionError("%r never appeared in stdout:\n%s" % (text, self.stdout))
            time.sleep(0.01)
        return self.stdout

    @property
    def pid(self):
        return self._process.pid

    def wait_stderr(self, text, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if time.monotonic() > deadline:
                raise AssertionError("%r never appeared in stderr:\n%s" % (text, self.stderr))
            time.sleep(0.01)
        return self.stderr

    @property
    def running(self):
        return self._process.poll() is None

    def stop(self):
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(DEFAULT_TIMEOUT)
        # The readers end at end of file (the process and its children are gone); closing
        # the pipes under a reader still in read1 raised ValueError in its thread.
        for reader in self._readers:
            reader.join(1.0)
        self._process.stdout.close()
        self._process.stderr.close()
