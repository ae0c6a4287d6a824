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
import os, sys, socket, threading, time, subprocess, statistics, tempfile
from pathlib import Path
PY = os.environ.get("PY") or os.path.realpath(sys.executable)
BOOT = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 8
EXTRA = sys.argv[3].split() if len(sys.argv) > 3 and sys.argv[3] else []
ENVX = dict(kv.split("=", 1) for kv in sys.argv[4].split(",")) if len(sys.argv) > 4 and sys.argv[4] else {}
PREINIT = os.environ.get("PREINIT") == "1"
DONE = [0]; LOCK = threading.Lock()
def serve(c):
    f = c.makefile("rb"); n = 0
    while True:
        line = f.readline()
        if not line: return
        headers = {}
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""): break
            k, _, v = h.decode().partition(":"); headers[k.strip().lower()] = v.strip()
        f.read(int(headers.get("content-length", "0") or 0))
        if b"/invocation/next" in line:
            n += 1
            if n > 1:
                time.sleep(86400); return
            b = b'{"key": "value", "list": [1, 2, 3]}'
            c.sendall(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\nLambda-Runtime-Deadline-Ms: %d\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\nContent-Length: %d\r\n\r\n" % (int(time.time()*1000)+600000, len(b)) + b)
        else:
            with LOCK: DONE[0] += 1
            c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1024); port = s.getsockname()[1]
def acc():
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=acc, daemon=True).start()
task = Path(tempfile.mkdtemp()); (task / "handler.py").write_text("def handler(event, context):\n    return {'ok': True, 'event': event}\n")
fenv = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}", "_HANDLER": "handler.handler", "LAMBDA_TASK_ROOT": str(task),
        "PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC", "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PYTHONPATH": "/opt/python/lib/python3.12/site-packages:/opt/python"}
procs = []; t0 = time.monotonic()
for i in range(N):
    if PREINIT:
        r, w = os.pipe()
        env = {"KINDLING_IDENTITY_FD": str(r), "PATH": "/usr/bin:/bin", **ENVX, "PAD": "x" * 8192}
        p = subprocess.Popen([PY, *EXTRA, BOOT], env=env, cwd=str(task), pass_fds=(r,))
        os.close(r)
        time.sleep(0.15)
        os.write(w, b"\0".join(f"{k}={v}".encode() for k, v in fenv.items())); os.close(w)
    else:
        p = subprocess.Popen([PY, *EXTRA, BOOT], env={**fenv, **ENVX}, cwd=str(task))
    procs.append(p)
while DONE[0] < N:
    time.sleep(0.02)
    if time.monotonic() - t0 > 60: sys.exit("timeout")
time.sleep(0.5)
def cat(name):
    if name == "[heap]": return "heap"
    if name == "[stack]": return "stack"
    if name in ("[anon]",): return "anon"
    if "libpython" in name: return "libpython"
    if name.endswith("python3.12") or "/bin/python" in name: return "exe"
    if ".so" in name: return "other.so"
    return "other"
rows = []
for p in procs:
    sizes = {}; name = None
    for line in Path(f"/proc/{p.pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0] and len(head) >= 5:
            name = head[5] if len(head) > 5 else "[anon]"
        elif line.startswith(("Private_Dirty:", "Private_Clean:")):
            sizes[cat(name)] = sizes.get(cat(name), 0) + int(head[1])
    sizes["total"] = sum(sizes.values())
    cpu = int(Path(f"/proc/{p.pid}/schedstat").read_text().split()[0]) / 1e6
    sizes["cpu_ms"] = cpu
    rows.append(sizes)
keys = ["total", "heap", "anon", "libpython", "other.so", "exe", "stack", "other", "cpu_ms"]
print(" ".join(f"{k}={statistics.median([r.get(k,0) for r in rows]):.0f}" for k in keys), "(kB, median of", N, ")")
for p in procs: p.kill()
