"""Pre-initialized environments (`--prewarm`), from real functions on a real
`kindling serve --isolation namespaces`: a cold start takes an environment whose interpreter and
bootstrap were loaded before any function was chosen. Each such environment serves exactly one
function: what a function leaves behind (files in /tmp, globals, environment variables,
processes) is never seen by the next one, every environment has its own user id, hostname
(namespaces) and cgroup limits, the function sees its own environment variables only, and
`Init Duration` is the handler's import."""

from __future__ import annotations

import os
import re
import time

import pytest

import iso_support as k
from iso_support import deploy, invoke, unique, wait_until

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

PY = r'''
import os, sys, time

_T0 = time.monotonic()
time.sleep(float(os.environ.get("IMPORT_SLEEP", "0")))  # a "heavy import"
IMPORT_MS = (time.monotonic() - _T0) * 1000.0
STATE = {"count": 0}


def _procs():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
            except OSError:
                pass
    return found


def _process_age_s():
    with open("/proc/self/stat", "rb") as f:
        start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def handler(event, context):
    STATE["count"] += 1
    if event.get("op") == "dirty":
        with open("/tmp/leftover", "w") as f:
            f.write("secret of " + context.function_name)
        globals()["LEFT_BEHIND"] = context.function_name
        os.environ["LEAKED_VAR"] = "from " + context.function_name
        sys.modules["leaked_module"] = sys  # a module object left in the interpreter
        pid = os.fork()
        if pid == 0:  # a daemon outliving the invocation (double fork)
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", event["sleep"]])
            os._exit(0)
        os.waitpid(pid, 0)
    with open("/proc/self/environ", "rb") as f:
        initial_env = f.read().split(b"\0")
    try:
        open("/var/task/planted", "w").close()
        task_writable = True
    except OSError:
        task_writable = False
    return {
        "uid": os.getuid(),
        "hostname": os.uname().nodename,
        "started_at": time.time() - _process_age_s(),
        "initial_env_is_mine": ("AWS_LAMBDA_FUNCTION_NAME=" + context.function_name).encode()
        in initial_env and not any(e.startswith(b"KINDLING_") for e in initial_env),
        "identity_var_visible": "KINDLING_IDENTITY_FD" in os.environ,
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "memory": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "mine": os.environ.get("MINE"),
        "leaked_var": os.environ.get("LEAKED_VAR"),
        "left_behind": globals().get("LEFT_BEHIND"),
        "leaked_module": "leaked_module" in sys.modules,
        "tmp": sorted(os.listdir("/tmp")),
        "task": sorted(os.listdir("/var/task")),
        "task_writable": task_writable,
        "cwd": os.getcwd(),
        "count": STATE["count"],
        "procs": _procs(),
        "import_ms": IMPORT_MS,
        "tz": time.strftime("%Z"),
    }
'''

NODE = r'''
const fs = require('fs');
exports.handler = async () => ({
  startedAt: Date.now() / 1000 - process.uptime(),
  initialEnv: fs.readFileSync('/proc/self/environ').toString().split('\0').filter((e) => e),
  identityVarVisible: 'KINDLING_IDENTITY_FD' in process.env,
  mine: process.env.MINE,
  initType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE,
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  cwd: process.cwd(),
  uid: process.getuid(),
  tmp: fs.readdirSync('/tmp'),
  nodePath: process.env.NODE_PATH,
});
'''


def _parent(pid: int) -> int:
    stat = k.read_proc(pid, "stat")
    return int(stat.rsplit(b")", 1)[-1].split()[1]) if stat else 0


def waiting_pids(server) -> list[int]:
    """Host pids of `server`'s pre-initialized runtimes (their initial environment names the
    pipe; the supervisor Kindling cloned is their parent), claimed or not."""
    return [p for p in k.pids_with_env("KINDLING_IDENTITY_FD", "3")
            if k.alive(p) and _parent(_parent(p)) == server.pid]


def init_duration_ms(log: str) -> float | None:
    m = re.search(r"Init Duration: ([\d.]+) ms", log)
    return float(m.group(1)) if m else None


def run(server, name, event=None) -> tuple[dict, str]:
    r = invoke(server, name, event or {})
    assert r.status == 200 and r.function_error is None, r.describe()
    assert isinstance(r.payload, dict), r.describe()
    return r.payload, r.log


def create(server, name, source, **kwargs) -> float:
    """Deploys; returns when CreateFunction was called (time.time())."""
    created = time.time()
    deploy(server, name, source, **kwargs)
    return created


def prewarmed(payload: dict, created: float) -> bool:
    """The runtime process is older than the function: it was started before the function
    existed, i.e. pre-initialized."""
    started = payload.get("started_at", payload.get("startedAt"))
    return started < created


@pytest.fixture
def prewarm_server(server_factory):
    srv = server_factory.start("prewarm", extra_args=[
        "--prewarm", "2", "--prewarm-runtimes", "python3.11,nodejs20.x"])
    # Two per runtime, started one after the other in the background.
    wait_until(lambda: len(waiting_pids(srv)) >= 4, 60, 0.1,
               "four pre-initialized runtimes to be waiting")
    return srv


def test_an_environment_serves_one_function_and_nothing_of_it_reaches_the_next(prewarm_server):
    srv = prewarm_server
    marker = "297.%d" % (os.getpid() % 1000)
    first, second = unique("pw-dirty"), unique("pw-clean")
    first_at = create(srv, first, PY, memory=384, environment={"MINE": "first"})
    second_at = create(srv, second, PY, memory=256, environment={"MINE": "second"})
    waiting_before = set(waiting_pids(srv))

    a, a_log = run(srv, first, {"op": "dirty", "sleep": marker})
    assert prewarmed(a, first_at), a
    assert init_duration_ms(a_log) is not None, a_log
    assert a["mine"] == "first" and a["function_name"] == first, a
    assert a["init_type"] == "on-demand", a
    assert a["memory"] == "384", a
    assert not a["identity_var_visible"], a
    assert a["initial_env_is_mine"], "/proc/self/environ shows the function's environment"
    assert a["cwd"] == "/var/task" and a["task"] == ["app.py"], a
    assert not a["task_writable"], "the code must be mounted read-only"
    assert a["tz"] == "UTC", a
    # The daemon outlived the invocation, inside the first environment's cgroup, whose
    # memory limit is the first function's. (The handler returns once the intermediate child
    # exited; the grandchild may not have executed `sleep` yet.)
    daemons = wait_until(lambda: k.pids_with_cmdline("sleep\0" + marker), 10, 0.02,
                         "the daemon to execute sleep")
    assert len(daemons) == 1, daemons
    limit = k.process_cgroup_file(daemons[0], "memory", "memory.limit_in_bytes", "memory.max")
    assert limit is not None and int(limit.read_text()) == 384 * 1024 * 1024
    # On the host, the runtime process's environment names its function (tools find it).
    assert k.pids_with_env("AWS_LAMBDA_FUNCTION_NAME", first), "host view of the environment"

    b, b_log = run(srv, second)
    assert prewarmed(b, second_at), b
    assert init_duration_ms(b_log) is not None, b_log
    assert b["mine"] == "second" and b["function_name"] == second and b["memory"] == "256", b
    assert b["uid"] != a["uid"], (a["uid"], b["uid"])
    assert b["hostname"] != a["hostname"], "every environment has namespaces of its own"
    assert b["tmp"] == [], f"/tmp of a new environment must be empty: {b['tmp']}"
    assert b["leaked_var"] is None and b["left_behind"] is None and not b["leaked_module"], b
    assert b["count"] == 1, b
    assert not any(marker in p for p in b["procs"]), b["procs"]
    assert b["task"] == ["app.py"], b

    # The first function's environment is still its own: warm, with its state.
    a2, a2_log = run(srv, first)
    assert a2["hostname"] == a["hostname"] and a2["count"] == 2, a2
    assert a2["leaked_var"] == "from " + first and a2["tmp"] == ["leftover"], a2
    assert init_duration_ms(a2_log) is None, "a warm invoke has no Init"

    # Pre-initialized environments are used once: the pool refills with new processes,
    # never with the environments that ran a function.
    wait_until(lambda: len(set(waiting_pids(srv)) - waiting_before) >= 2, 60, 0.1,
               "the pool to refill")
    third = unique("pw-third")
    third_at = create(srv, third, PY, environment={"MINE": "third"})
    c, _ = run(srv, third)
    assert prewarmed(c, third_at) and c["hostname"] not in (a["hostname"], b["hostname"]), c
    assert c["uid"] not in (a["uid"], b["uid"]) and c["tmp"] == [] and c["count"] == 1, c


def test_init_duration_is_the_handler_import(prewarm_server):
    srv = prewarm_server
    # A trivial import's Init on this server, now: attaching the code, the handler lookup and
    # the first /next (a loaded machine stretches it; the heavy import's overhead with it).
    light = unique("pw-light")
    light_created = create(srv, light, PY)
    p0, log0 = run(srv, light)
    assert prewarmed(p0, light_created), p0
    init0 = init_duration_ms(log0)
    assert init0 is not None, log0
    name = unique("pw-import")
    created = create(srv, name, PY, environment={"IMPORT_SLEEP": "0.3"})
    p, log = run(srv, name)
    assert prewarmed(p, created), p
    init = init_duration_ms(log)
    assert init is not None, log
    # The import itself plus what a trivial one costs: nothing of the interpreter's start or
    # the sandbox's setup.
    assert p["import_ms"] <= init <= p["import_ms"] + init0 + 150, (init, p["import_ms"], init0)


def test_variables_read_at_a_process_start_get_an_ordinary_cold_start(prewarm_server):
    srv = prewarm_server
    name = unique("pw-locale")
    created = create(srv, name, PY, environment={"LANG": "C.UTF-8", "MINE": "locale"})
    p, log = run(srv, name)
    assert not prewarmed(p, created), "LANG differs from the waiting process's: not applied late"
    assert p["mine"] == "locale" and init_duration_ms(log) is not None, p


def test_node_runtime(prewarm_server):
    srv = prewarm_server
    first, second = unique("pw-node-a"), unique("pw-node-b")
    first_at = create(srv, first, NODE, runtime="nodejs20.x", file_name="app.js",
                      environment={"MINE": "a"})
    second_at = create(srv, second, NODE, runtime="nodejs20.x", file_name="app.js")
    a, a_log = run(srv, first)
    b, _ = run(srv, second)
    for p, created, name in ((a, first_at, first), (b, second_at, second)):
        assert prewarmed(p, created) and not p["identityVarVisible"], p
        assert p["initType"] == "on-demand" and p["cwd"] == "/var/task" and p["tmp"] == [], p
        assert "/var/task/node_modules" in p["nodePath"], p
        assert f"AWS_LAMBDA_FUNCTION_NAME={name}" in p["initialEnv"], p["initialEnv"]
        assert not any(e.startswith("KINDLING_") for e in p["initialEnv"]), p["initialEnv"]
    assert a["mine"] == "a" and b.get("mine") is None, (a, b)
    assert a["functionName"] == first and b["functionName"] == second
    assert a["uid"] != b["uid"]
    assert init_duration_ms(a_log) is not None, a_log


# A custom runtime (`provided.al2023`) whose `bootstrap` is a Python script run by the host's
# interpreter (visible read-only under /usr): it serves invocations over the Runtime API and
# reports what its process sees.
BOOTSTRAP = r'''#!/usr/bin/python3 -I
import json, os, socket, time, urllib.request

API = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]


def age(pid):
    with open("/proc/%s/stat" % pid, "rb") as f:
        start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


count = 0
while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read() or b"{}")
    count += 1
    if event.get("op") == "dirty":
        with open("/tmp/leftover", "w") as f:
            f.write("secret")
    with open("/proc/self/environ", "rb") as f:
        initial_env = [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
    body = json.dumps({
        "started_at": time.time() - age("self"),
        "init_started_at": time.time() - age(1),
        "uid": os.getuid(),
        "hostname": socket.gethostname(),
        "cwd": os.getcwd(),
        "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "mine": os.environ.get("MINE"),
        "initial_env": initial_env,
        "fds": sorted(os.listdir("/proc/self/fd")),
        "tmp": sorted(os.listdir("/tmp")),
        "task": sorted(os.listdir("/var/task")),
        "count": count,
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        API + "/invocation/%s/response" % rid, data=body, method="POST")).read()
'''


def deploy_custom(server, name: str, bootstrap: str, **kwargs):
    """A `provided.al2023` function whose zip holds an executable `bootstrap`."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        info.create_system = 3
        z.writestr(info, bootstrap)
    c = server.client()
    args = dict(FunctionName=name, Runtime="provided.al2023", Handler="unused",
                Role="arn:aws:iam::000000000000:role/isolation-test",
                Code={"ZipFile": buf.getvalue()}, MemorySize=kwargs.get("memory", 256), Timeout=30)
    if "environment" in kwargs:
        args["Environment"] = {"Variables": kwargs["environment"]}
    created = time.time()
    c.create_function(**args)
    wait_until(lambda: c.get_function(FunctionName=name)["Configuration"].get("State")
               in ("Active", None), 60, 0.2, f"{name} to become Active")
    return created


@pytest.fixture
def custom_prewarm_server(server_factory):
    srv = server_factory.start("prewarm-custom", extra_args=[
        "--prewarm", "2", "--prewarm-runtimes", "provided.al2023"])
    # Their programs wait before their execve: the supervisors (kindling-init) are Kindling's
    # children; two per pool.
    wait_until(lambda: len([p for p in k.pids_with_cmdline("kindling-init")
                            if _parent(p) == srv.pid]) >= 2, 60, 0.1,
               "two pre-built custom-runtime environments")
    return srv


def test_a_custom_runtime_runs_in_a_prebuilt_sandbox_of_its_own(custom_prewarm_server):
    srv = custom_prewarm_server
    first, second = unique("pw-custom-a"), unique("pw-custom-b")
    first_at = deploy_custom(srv, first, BOOTSTRAP, memory=384, environment={"MINE": "first"})
    second_at = deploy_custom(srv, second, BOOTSTRAP)
    a, a_log = run(srv, first, {"op": "dirty"})
    b, b_log = run(srv, second)
    for p, created, log, name in ((a, first_at, a_log, first), (b, second_at, b_log, second)):
        # The sandbox (its pid 1) and the process were made before the function existed; the
        # process executed the function's bootstrap only at the claim.
        assert prewarmed(p, created) and p["init_started_at"] < created, p
        assert init_duration_ms(log) is not None, log
        assert p["function_name"] == name and p["cwd"] == "/var/task" and p["task"] == ["bootstrap"], p
        # Its initial environment is the function's, and nothing of Kindling's is open in it.
        assert f"AWS_LAMBDA_FUNCTION_NAME={name}" in p["initial_env"], p["initial_env"]
        assert not any(e.startswith("KINDLING_") for e in p["initial_env"]), p["initial_env"]
        assert p["fds"] == ["0", "1", "2", "3"], p["fds"]
    assert a["mine"] == "first" and b["mine"] is None, (a, b)
    assert a["uid"] != b["uid"] and a["hostname"] != b["hostname"], (a, b)
    assert b["tmp"] == [] and b["count"] == 1, b
    pids = k.pids_with_env("AWS_LAMBDA_FUNCTION_NAME", first)
    assert pids, "host view of the first function's process"
    limit = k.process_cgroup_file(pids[0], "memory", "memory.limit_in_bytes", "memory.max")
    assert limit is not None and int(limit.read_text()) == 384 * 1024 * 1024
    # Warm: the same process, its state kept.
    a2, a2_log = run(srv, first)
    assert a2["hostname"] == a["hostname"] and a2["count"] == 2 and a2["tmp"] == ["leftover"], a2
    assert init_duration_ms(a2_log) is None, a2_log


def test_a_custom_runtime_that_cannot_execute_fails_as_on_the_ordinary_path(custom_prewarm_server):
    srv = custom_prewarm_server
    name = unique("pw-custom-bad")
    deploy_custom(srv, name, "#!/nonexistent/interpreter\n")
    r = invoke(srv, name, {})
    assert r.status == 200 and r.function_error == "Unhandled", r.describe()
    assert r.payload["errorType"] == "Runtime.InvalidEntrypoint", r.describe()
    assert "cannot execute /var/task/bootstrap" in r.payload["errorMessage"], r.describe()


def test_at_the_environment_limit_a_ready_one_is_claimed_without_making_room(server_factory):
    # A node that keeps 3 environments: one pre-initialized, then two functions it does not
    # fit (a larger /tmp) take the other places. Claiming the waiting environment needs no new
    # place: the next function gets it, and no idle environment is retired for it (the place
    # was reserved before the claim was tried, and the full node retired the oldest one).
    srv = server_factory.start("prewarm-limit", extra_args=[
        "--max-environments", "3", "--prewarm", "1", "--prewarm-runtimes", "python3.11"])
    wait_until(lambda: len(waiting_pids(srv)) >= 1, 60, 0.1,
               "a pre-initialized runtime to be waiting")
    others = [unique("pw-limit-other") for _ in range(2)]
    for name in others:
        create(srv, name, PY, ephemeral=1024)
        run(srv, name)
    claimer = unique("pw-limit-claim")
    created = create(srv, claimer, PY)
    payload, _ = run(srv, claimer)
    assert prewarmed(payload, created), payload
    assert "retired to make room" not in srv.log_tail(400), srv.log_tail(400)
    # The functions' environments are still warm.
    for name in others:
        _, log = run(srv, name)
        assert init_duration_ms(log) is None, log
