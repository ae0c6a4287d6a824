"""Support for the isolation (break-out) suite: a real `kindling serve`, boto3, function zips,
and host-side inspection (processes, mounts, cgroups).

Everything here runs on the host, as root. Functions are Python (`python3.11`, `app.handler`)
and are given as source text; `deploy` zips it as `app.py`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
CGROUP_ROOT = Path("/sys/fs/cgroup")
STAGING_DIR = "/run/kindling-sandbox"
# Data dirs live outside /tmp on purpose: every environment has a private /tmp, so a data dir
# under the host's /tmp would be out of sight even if the root filesystem leaked.
DATA_PARENT = Path(os.environ.get("KINDLING_ISO_DATA_PARENT", "/var/tmp"))


def binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


def ensure_binary() -> Path:
    """The server binary; built with `cargo build -p kindling-server` when missing (cargo waits
    by itself when another build holds its lock)."""
    path = binary()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if os.environ.get("KINDLING_BIN"):
        raise RuntimeError(f"KINDLING_BIN={path} is not an executable file")
    subprocess.run(["cargo", "build", "-p", "kindling-server"], cwd=REPO, check=True,
                   timeout=3600)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"`cargo build -p kindling-server` did not produce {path}")
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` passes
    (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(last value: {last!r})")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class Server:
    data_dir: Path
    isolation: str = "namespaces"
    extra_args: list[str] = field(default_factory=list)
    # A command the server runs under (`chrt -f 10`, `nice -n -5`), empty for none.
    prefix: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _client = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_id(self) -> str:
        return (self.data_dir / "node-id").read_text().strip()

    def start(self, timeout: float = 60.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.{self.port}.log"
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            [*self.prefix, str(binary()), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir), "--isolation", self.isolation,
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        log.close()
        self._client = None

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"kindling serve exited with {self.proc.returncode} during "
                                     f"start:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(up, timeout, what=f"kindling serve to listen on port {self.port}")
        return self

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM; returns the exit code (the caller asserts it)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"kindling serve did not exit within {timeout} s of SIGTERM:\n"
                                 f"{self.log_tail()}")

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM, then waits up to `timeout`: the exit code, or None while still running."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, read_timeout: float = 180.0):
        if self._client is None:
            self._client = boto3.client(
                "lambda",
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id="AKIAISOLATIONTEST000",
                aws_secret_access_key="isolation-test-secret",
                config=Config(retries={"max_attempts": 1, "mode": "standard"},
                              read_timeout=read_timeout, connect_timeout=5,
                              max_pool_connections=20),
            )
        return self._client

    def new_client(self, read_timeout: float = 60.0):
        """A separate client (for use from another thread)."""
        return boto3.client(
            "lambda", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="AKIAISOLATIONTEST000",
            aws_secret_access_key="isolation-test-secret",
            config=Config(retries={"max_attempts": 1, "mode": "standard"},
                          read_timeout=read_timeout, connect_timeout=5),
        )

    def logs(self, function: str) -> str:
        out = subprocess.run([str(binary()), "logs", function, "--data-dir", str(self.data_dir)],
                             capture_output=True, text=True, timeout=30)
        return out.stdout + out.stderr


def new_data_dir(tag: str) -> Path:
    DATA_PARENT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"kindling-iso-{tag}-", dir=DATA_PARENT)) / "data"


def remove_data_dir(data_dir: Path) -> None:
    """Removes a stopped server's data dir and its node's (empty) cgroup parents, which Kindling
    leaves in place by design; a non-empty one stays (rmdir refuses) for the tests to see."""
    try:
        node = (data_dir / "node-id").read_text().strip()
    except OSError:
        node = ""
    if node:
        for hierarchy in [h for h in CGROUP_ROOT.iterdir() if h.is_dir()] + [CGROUP_ROOT]:
            try:
                (hierarchy / "kindling" / node).rmdir()
            except OSError:
                pass
    shutil.rmtree(data_dir.parent, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Functions

PING = '''
import os as _os, uuid as _uuid
ENV_TOKEN = _uuid.uuid4().hex  # one per environment (module import = cold start)

def _ping(event):
    return {"pong": True, "env": ENV_TOKEN, "pid": _os.getpid(), "uid": _os.getuid()}
'''


def function_source(body: str) -> str:
    """`body` defines `attack(event, context)`; the handler answers {"op": "ping"} itself."""
    return (PING + "\n" + body + '''

def handler(event, context):
    if isinstance(event, dict) and event.get("op") == "ping":
        return _ping(event)
    return attack(event, context)
''')


def zip_bytes(files: dict[str, str | bytes], stored: bool = False) -> bytes:
    """A zip of `files`; `stored` keeps contents uncompressed (greppable in the blob)."""
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o644 << 16
            info.compress_type = method
            z.writestr(info, content)
    return buf.getvalue()


def deploy(server: Server, name: str, source: str, *, memory: int = 256, timeout: int = 60,
           ephemeral: int | None = None, extra_files: dict[str, str | bytes] | None = None,
           stored: bool = False, environment: dict[str, str] | None = None,
           runtime: str = "python3.11", file_name: str = "app.py"):
    files = {file_name: source, **(extra_files or {})}
    kwargs = dict(
        FunctionName=name, Runtime=runtime, Handler="app.handler",
        Role="arn:aws:iam::000000000000:role/isolation-test",
        Code={"ZipFile": zip_bytes(files, stored)}, MemorySize=memory, Timeout=timeout,
    )
    if ephemeral is not None:
        kwargs["EphemeralStorage"] = {"Size": ephemeral}
    if environment is not None:
        kwargs["Environment"] = {"Variables": environment}
    c = server.client()
    resp = c.create_function(**kwargs)
    wait_until(lambda: c.get_function(FunctionName=name)["Configuration"].get("State")
               in ("Active", None), 60, 0.2, f"{name} to become Active")
    return resp


@dataclass
class Result:
    status: int
    function_error: str | None
    raw: bytes
    log: str

    @property
    def payload(self):
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    def max_memory_used_mb(self) -> int | None:
        m = re.search(r"Max Memory Used: (\d+) MB", self.log)
        return int(m.group(1)) if m else None

    def describe(self) -> str:
        return (f"status={self.status} FunctionError={self.function_error!r} "
                f"payload={self.raw[:2000]!r}\n--- log tail ---\n{self.log[-3000:]}")


def invoke(server: Server, name: str, event=None, *, client=None) -> Result:
    c = client or server.client()
    resp = c.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                    LogType="Tail")
    raw = resp["Payload"].read()
    log = base64.b64decode(resp.get("LogResult", "") or b"").decode(errors="replace")
    return Result(resp["StatusCode"], resp.get("FunctionError"), raw, log)


def ok(server: Server, name: str, event) -> dict:
    """Invokes and requires a normal (non-error) result; returns the decoded payload."""
    r = invoke(server, name, event)
    assert r.status == 200 and r.function_error is None, r.describe()
    assert isinstance(r.payload, dict), r.describe()
    return r.payload


def ping(server: Server, name: str) -> dict:
    p = ok(server, name, {"op": "ping"})
    assert p.get("pong") is True, p
    return p


# ---------------------------------------------------------------------------------------------
# Host-side inspection


def host_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def pids_with_cmdline(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (zombies have an empty one and are not
    counted: they hold no resources but a pid)."""
    needle = marker.encode()
    me = os.getpid()
    return [p for p in host_pids() if p != me and needle in read_proc(p, "cmdline")]


def pids_with_env(key: str, value: str) -> list[int]:
    needle = f"{key}={value}".encode()
    return [p for p in host_pids() if needle in read_proc(p, "environ").split(b"\0")]


def alive(pid: int) -> bool:
    """True for a running (not zombie) process."""
    stat = read_proc(pid, "stat")
    if not stat:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[0]
    return state not in (b"Z", b"X")


def sandbox_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if STAGING_DIR in line]


def cgroup_dirs(node_id: str) -> dict[str, list[str]]:
    """Child cgroups under `kindling/<node-id>` in every hierarchy (v1 controllers, the hybrid
    `unified` tree, or a pure v2 root), by hierarchy."""
    found = {}
    hierarchies = [h for h in sorted(CGROUP_ROOT.iterdir()) if h.is_dir()] + [CGROUP_ROOT]
    for hierarchy in hierarchies:
        parent = hierarchy / "kindling" / node_id
        if not parent.is_dir():
            continue
        children = sorted(p.name for p in parent.iterdir() if p.is_dir())
        if children:
            found[hierarchy.name] = children
    return found


def process_cgroup_file(pid: int, v1_controller: str, v1_file: str, v2_file: str) -> Path | None:
    """The file of `pid`'s cgroup for a controller: `<v1 mount>/<path>/<v1_file>` when that
    controller has a v1 hierarchy, else `<v2 mount>/<path>/<v2_file>`; None if neither exists."""
    v2_path = None
    for line in read_proc(pid, "cgroup").decode(errors="replace").splitlines():
        hid, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if v1_controller in controllers.split(","):
            f = Path(str(CGROUP_ROOT / v1_controller) + path) / v1_file
            if f.exists():
                return f
        if hid == "0" and controllers == "":
            v2_path = path
    if v2_path is not None:
        for mount in (CGROUP_ROOT / "unified", CGROUP_ROOT):
            f = Path(str(mount) + v2_path) / v2_file
            if f.exists():
                return f
    return None


# ---------------------------------------------------------------------------------------------
# A TCP listener the functions connect to


class Listener:
    """Accepts connections on 127.0.0.1 in a thread; records what each peer sends and when it
    closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns: list[dict] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            rec = {"data": b"", "closed": False, "accepted": time.monotonic()}
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._read, args=(conn, rec), daemon=True).start()

    def _read(self, conn, rec):
        conn.settimeout(0.2)
        while not self._stop:
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                with self.lock:
                    rec["closed"] = True
                break
            with self.lock:
                rec["data"] += chunk
        conn.close()

    def with_data(self, needle: bytes) -> list[dict]:
        with self.lock:
            return [dict(c) for c in self.conns if needle in c["data"]]

    def close(self):
        self._stop = True
        self.sock.close()
        self.thread.join(timeout=2)
