"""A minimal Runtime API for the Python memory probes (benches/zygote_probe.py,
benches/tools/python_memory_probe.py): each connection's first /next gets one invocation, later
/next calls hang (the runtime idles), every other request is answered 202 and counted.

`start(python, port, workdir, netns=None)` runs it as a process of its own (`python -I -S`,
inside network namespace `netns` if given) and returns it with the path of its control socket,
whose every connection reads how many invocations were answered (`responses`,
`wait_responses`)."""

import os
import socket
import subprocess
import time
from pathlib import Path

MOCK_API = r'''
import socket, sys, threading, time
def serve(c):
    f = c.makefile("rb"); n = 0
    while True:
        line = f.readline()
        if not line:
            return
        headers = {}
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode().partition(":"); headers[k.strip().lower()] = v.strip()
        f.read(int(headers.get("content-length", "0") or 0))
        if b"/invocation/next" in line:
            n += 1
            if n > 1:
                time.sleep(86400); return
            b = b'{"key": "value", "list": [1, 2, 3]}'
            c.sendall(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\n"
                      b"Lambda-Runtime-Deadline-Ms: %d\r\n"
                      b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n"
                      b"Content-Length: %d\r\n\r\n" % (int(time.time() * 1000) + 600000, len(b)) + b)
        else:
            with LOCK:
                DONE[0] += 1
            c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
LOCK = threading.Lock(); DONE = [0]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
ctl = socket.socket(socket.AF_UNIX); ctl.bind(sys.argv[2]); ctl.listen(4)
def control():
    while True:
        c, _ = ctl.accept()
        with LOCK:
            c.sendall(b"%d" % DONE[0])
        c.close()
threading.Thread(target=control, daemon=True).start()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
'''

HANDLER = "def handler(event, context):\n    return {'ok': True, 'event': event}\n"


def responses(control_path: str) -> int:
    c = socket.socket(socket.AF_UNIX)
    c.connect(control_path)
    n = int(c.recv(32) or b"0")
    c.close()
    return n


def wait_responses(control_path: str, n: int, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while responses(control_path) < n:
        if time.monotonic() > end:
            raise SystemExit(f"only {responses(control_path)} of {n} invocations answered")
        time.sleep(0.05)


def start(python: str, port: int, workdir: Path, netns: str | None = None):
    """The mock API listening on 127.0.0.1:`port` (in `netns` if given): (process, control)."""
    script = workdir / "mock.py"
    script.write_text(MOCK_API)
    control = str(workdir / "mock.sock")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    proc = subprocess.Popen([*prefix, python, "-I", "-S", str(script), str(port), control])
    end = time.monotonic() + 10
    while not os.path.exists(control):
        if time.monotonic() > end or proc.poll() is not None:
            proc.kill()
            raise SystemExit("mock Runtime API did not start")
        time.sleep(0.02)
    return proc, control
