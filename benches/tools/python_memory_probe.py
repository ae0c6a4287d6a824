#!/usr/bin/env python3
"""Private memory of idle Python runtimes by mapping, without Kindling (docs/ARCHITECTURE.md,
"Density: where an idle Python environment's memory goes").

    python3 benches/tools/python_memory_probe.py BOOTSTRAP [N] ["FLAGS"] [VAR=value,...]
    PREINIT=1 ...   start as a pre-initialized environment (neutral environment, the
                    function's written to KINDLING_IDENTITY_FD after the start)
    PY=/path/to/python3.12 ...   (default: the interpreter running this script)

Starts N interpreters `PY FLAGS BOOTSTRAP` (BOOTSTRAP: runtimes/python/bootstrap.py or a .pyc
of it; FLAGS e.g. "-I -S -u"; the VAR=value pairs are added to each interpreter's start
environment, e.g. GLIBC_TUNABLES=...) against a minimal Runtime API that serves each one
invocation of a trivial handler and leaves it idle at its second /next, then prints the median
of their private memory (Private_Clean + Private_Dirty, kB) by kind of mapping and the CPU each
used from its start to idle.
"""
import os, sys, socket, time, subprocess, statistics, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mock_runtime_api  # noqa: E402

PY = os.environ.get("PY") or os.path.realpath(sys.executable)
BOOT = os.path.abspath(sys.argv[1])  # the interpreters start in the task directory
N = int(sys.argv[2]) if len(sys.argv) > 2 else 8
EXTRA = sys.argv[3].split() if len(sys.argv) > 3 and sys.argv[3] else []
ENVX = dict(kv.split("=", 1) for kv in sys.argv[4].split(",")) if len(sys.argv) > 4 and sys.argv[4] else {}
PREINIT = os.environ.get("PREINIT") == "1"


def start(task, port):
    """One interpreter, as Kindling starts it (PREINIT: neutral, then told its function)."""
    fenv = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}", "_HANDLER": "handler.handler",
            "LAMBDA_TASK_ROOT": str(task), "PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8",
            "TZ": ":UTC", "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "PYTHONPATH": "/opt/python/lib/python3.12/site-packages:/opt/python"}
    if not PREINIT:
        return subprocess.Popen([PY, *EXTRA, BOOT], env={**fenv, **ENVX}, cwd=str(task))
    r, w = os.pipe()
    env = {"KINDLING_IDENTITY_FD": str(r), "PATH": "/usr/bin:/bin", **ENVX, "PAD": "x" * 8192}
    p = subprocess.Popen([PY, *EXTRA, BOOT], env=env, cwd=str(task), pass_fds=(r,))
    os.close(r)
    time.sleep(0.15)
    os.write(w, b"\0".join(f"{k}={v}".encode() for k, v in fenv.items()))
    os.close(w)
    return p


def cat(name):
    if name == "[heap]": return "heap"
    if name == "[stack]": return "stack"
    if name in ("[anon]",): return "anon"
    if "libpython" in name: return "libpython"
    if name.endswith("python3.12") or "/bin/python" in name: return "exe"
    if ".so" in name: return "other.so"
    return "other"


def private_by_mapping(pid):
    sizes = {}; name = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0] and len(head) >= 5:
            name = head[5] if len(head) > 5 else "[anon]"
        elif line.startswith(("Private_Dirty:", "Private_Clean:")):
            sizes[cat(name)] = sizes.get(cat(name), 0) + int(head[1])
    sizes["total"] = sum(sizes.values())
    sizes["cpu_ms"] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6
    return sizes


with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
work = Path(tempfile.mkdtemp())
task = work / "task"; task.mkdir(); (task / "handler.py").write_text(mock_runtime_api.HANDLER)
mock, control = mock_runtime_api.start(PY, port, work)
procs = []
try:
    for i in range(N):
        procs.append(start(task, port))
    mock_runtime_api.wait_responses(control, N)
    time.sleep(0.5)
    rows = [private_by_mapping(p.pid) for p in procs]
    keys = ["total", "heap", "anon", "libpython", "other.so", "exe", "stack", "other", "cpu_ms"]
    print(" ".join(f"{k}={statistics.median([r.get(k,0) for r in rows]):.0f}" for k in keys), "(kB, median of", N, ")")
finally:
    for p in [mock, *procs]:
        p.kill()
