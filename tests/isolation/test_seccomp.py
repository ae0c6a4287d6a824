"""System calls a function must not make, each tried from a real Python function on a real
`kindling serve --isolation namespaces`: every one is refused (EPERM, or ENOSYS where libc
needs that to fall back) by the environment's seccomp filter, and the same environment then
answers its next invoke normally."""

from __future__ import annotations

import os

import pytest

import iso_support as k
from iso_support import deploy, invoke, ping, unique

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

ATTACKS = r'''
import ctypes, errno, struct, subprocess, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
_keep = []

def _buf(data):
    _keep.append(ctypes.create_string_buffer(data, max(len(data), 1)))
    return ctypes.addressof(_keep[-1])

def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def run(*argv):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    return {"rc": p.returncode, "out": p.stdout.strip()[-300:], "err": p.stderr.strip()[-300:]}

PTRACE_SIBLING = """
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
if libc.ptrace(16, pid, None, None) == 0:   # PTRACE_ATTACH
    libc.ptrace(17, pid, None, None)        # PTRACE_DETACH
    print("ok")
else:
    print(errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
"""

def attack(event, context):
    out = {}
    status = open("/proc/self/status").read().splitlines()
    out["seccomp"] = [l.split()[1] for l in status if l.startswith("Seccomp:")][0]
    # A user namespace makes us "root" inside; with it, a mount namespace and a tmpfs mount.
    out["unshare_user"] = run("unshare", "-U", "-r", "id", "-u")
    out["unshare_mount"] = run("unshare", "-m", "true")
    out["userns_tmpfs"] = run("unshare", "-U", "-r", "-m", "sh", "-c",
                              "mount -t tmpfs tmpfs /tmp && echo mounted")
    out["mount"] = call(165, _buf(b"tmpfs"), _buf(b"/tmp"), _buf(b"tmpfs"), 0, 0)
    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create) and add_key to the
    # process keyring: keyrings are not namespaced.
    out["keyctl"] = call(250, 0, -3, 1)
    out["add_key"] = call(248, _buf(b"user"), _buf(b"kindling"), _buf(b"v"), 1, -2)
    # bpf(BPF_MAP_CREATE, {BPF_MAP_TYPE_HASH, key 4, value 4, 1 entry}).
    out["bpf"] = call(321, 0, _buf(struct.pack("IIII", 1, 4, 4, 1) + bytes(56)), 72)
    # perf_event_open of our own task clock, user space only (allowed by perf_event_paranoid 2).
    attr = struct.pack("IIQQQQQ", 1, 128, 1, 0, 0, 0, 1 | 1 << 5 | 1 << 6) + bytes(80)
    out["perf_event_open"] = call(298, _buf(attr), 0, -1, -1, 0)
    out["io_uring_setup"] = call(425, 4, _buf(bytes(120)))
    out["clone3"] = call(435, 0, 0)
    # ptrace(PTRACE_ATTACH) of a sibling process of the same user.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        out["ptrace_sibling"] = run(sys.executable, "-c", PTRACE_SIBLING, str(sleeper.pid))["out"]
    finally:
        sleeper.kill()
        sleeper.wait()
    # What must keep working.
    out["fork_exec"] = run("/bin/true")["rc"]
    return out
'''


def test_denied_system_calls_are_refused(server):
    name = unique("iso-seccomp")
    deploy(server, name, k.function_source(ATTACKS), memory=256)
    first = ping(server, name)
    r = invoke(server, name, {})
    print("attacks:", r.describe())
    assert r.status == 200 and r.function_error is None, r.describe()
    out = r.payload

    assert out["seccomp"] == "2", f"no seccomp filter in the environment: {out}"
    for tool in ("unshare_user", "unshare_mount"):
        res = out[tool]
        assert res["rc"] != 0 and "Operation not permitted" in res["err"], f"{tool}: {res}"
    assert "mounted" not in out["userns_tmpfs"]["out"], out["userns_tmpfs"]
    assert out["userns_tmpfs"]["rc"] != 0, out["userns_tmpfs"]
    for call in ("mount", "keyctl", "add_key", "bpf", "perf_event_open", "io_uring_setup",
                 "ptrace_sibling"):
        assert out[call] in ("EPERM", "ENOSYS"), f"{call} was not refused: {out[call]} ({out})"
    assert out["clone3"] == "ENOSYS", out
    assert out["fork_exec"] == 0, out

    # The same environment keeps serving.
    assert ping(server, name)["env"] == first["env"]
