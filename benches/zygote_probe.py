#!/usr/bin/env python3
"""Probe: could a forked Python zygote meet the density goal, with an environment's isolation?

    sudo python3 benches/zygote_probe.py [--envs N] [--python /path/to/python3.12]

Not Kindling: an experiment that decides a design (docs/ARCHITECTURE.md, "Density"). It runs
Kindling's real Python bootstrap (runtimes/python/bootstrap.py) with a trivial handler against
a minimal Runtime API that serves one invocation per environment, and leaves each environment
idle at its second /next, in two ways:

  execve  N interpreters started as Kindling starts them today (`python -I -S -u bootstrap.py`);
  zygote  one lean root interpreter of its own (ZYGOTE below: it loads only the bootstrap and
          ctypes, then freezes its objects with gc.freeze), then per environment a fork that joins a prepared set of namespaces (mount, pid,
          net, ipc, uts, cgroup: `setns`, then a second fork for the pid namespace), a memory
          cgroup of its own, drops to a uid of its own (setgroups, setgid, setuid), sets
          dumpable (as `execve` would), no_new_privs and a seccomp filter, and only then runs
          the bootstrap's main (handler import, one invocation).

Each target environment is `unshare --pid --fork --mount --ipc --uts --cgroup sleep` inside one
prepared network namespace where the Runtime API listens (as Kindling prepares a network
namespace per environment with its listener). The zygote side checks in each child that the
namespaces are the target's, that it is not pid 1 but inside the pid namespace, that it runs as
its uid, and that the filter refuses `unshare`. Then, per idle environment: private memory
(Private_Clean + Private_Dirty of smaps_rollup), PSS, and what its memory cgroup was charged.
Prints a report (benches/results/zygote-probe-latest.txt holds one).
"""

import argparse
import ctypes
import errno
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mock_runtime_api
from mock_runtime_api import HANDLER, wait_responses

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = ROOT / "runtimes" / "python" / "bootstrap.py"
NETNS = "kindling-zygote-probe"
CGROUP = Path("/sys/fs/cgroup/memory/kindling-zygote-probe")
PORT = 9301
NAMESPACES = ["mnt", "pid", "net", "ipc", "uts", "cgroup"]
FIRST_UID = 61000

# ---------------------------------------------------------------------------------------------
# The zygote: a lean interpreter of its own (only what a real one would load: the bootstrap,
# ctypes for the privileged steps), so that what its children share and dirty is measured,
# not the probe's own modules. Requests on stdin, one per line: "<init pid> <cgroup.procs>
# <uid> <ns>..." ; per request one line on stdout from the child, once it is confined.
# ---------------------------------------------------------------------------------------------

ZYGOTE = r"""
import ctypes, gc, os, sys, types

BOOTSTRAP, FILTER, FREEZE, ENV = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
NAMESPACES = ["mnt", "pid", "net", "ipc", "uts", "cgroup"]
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
SYS_SECCOMP, SYS_UNSHARE, SECCOMP_SET_MODE_FILTER = 317, 272, 1  # x86_64


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def check(rc, what):
    if rc != 0:
        raise OSError(ctypes.get_errno(), what)


def become_environment(init, cgroup_procs, uid):
    # In the zygote's child (root): join the environment, then drop everything. Returns in
    # the grandchild (a member of the pid namespace); the intermediate child exits.
    fds = {ns: os.open("/proc/%d/ns/%s" % (init, ns), os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES}
    fd = os.open(cgroup_procs, os.O_WRONLY)
    os.write(fd, b"0")
    os.close(fd)
    for ns in ["cgroup", "ipc", "uts", "net", "pid", "mnt"]:  # mnt last: it moves root and cwd
        os.setns(fds[ns], 0)
        os.close(fds[ns])
    if os.fork():  # pid namespaces apply to children only
        os._exit(0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    check(LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "PR_SET_DUMPABLE")  # as execve would
    check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    buf = ctypes.create_string_buffer(FILTER, len(FILTER))
    fprog = SockFprog(len(FILTER) // 8, ctypes.addressof(buf))
    check(LIBC.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)), "seccomp")


def verify(expected, uid):
    for ns, want in zip(NAMESPACES, expected):
        mine = os.readlink("/proc/self/ns/" + ns)
        if mine != want:
            raise RuntimeError("%s: %s != %s" % (ns, mine, want))
    if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
        raise RuntimeError("credentials not dropped")
    if LIBC.syscall(SYS_UNSHARE, 0x20000) == 0:  # CLONE_NEWNS
        raise RuntimeError("unshare allowed after the filter")
    # The host's /proc (the target mounted none of its own): /proc/self names the host pid.
    return "pid %d uid %d host-pid %s hash %d" % (os.getpid(), os.getuid(), os.readlink("/proc/self"), hash("kindling"))


bootstrap = types.ModuleType("bootstrap")
bootstrap.__file__ = BOOTSTRAP
with open(BOOTSTRAP, "rb") as f:
    exec(compile(f.read(), BOOTSTRAP, "exec"), bootstrap.__dict__)
env = dict(entry.split("=", 1) for entry in ENV.split("\x01") if entry)
gc.collect()
if FREEZE:
    gc.freeze()
# Orphans of the zygote's tree come back to it: the pid namespace's init is NOT their reaper
# (reparenting follows the exiting parent's own pid namespace, the host's).
check(LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER")
out = sys.stdout.fileno()
for line in sys.stdin:
    init, cgroup_procs, uid, *expected = line.split()
    pid = os.fork()
    if pid == 0:
        try:
            become_environment(int(init), cgroup_procs, int(uid))
            os.write(out, (verify(expected, int(uid)) + "\n").encode())
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1):
                os.dup2(null, fd)
            os.close(null)
            os.environ.clear()
            os.environ.update(env)
            os.chdir(env["LAMBDA_TASK_ROOT"])
            os._exit(bootstrap.main(["bootstrap"]) or 0)
        except BaseException as exc:
            os.write(out, ("FAILED %r\n" % (exc,)).encode())
            os._exit(1)
    os.waitpid(pid, 0)  # the intermediate child
while True:  # idle until killed, as a zygote waits
    os.pause()
"""

LIBC = ctypes.CDLL(None, use_errno=True)
SYS_UNSHARE = 272  # x86_64
AUDIT_ARCH_X86_64 = 0xC000003E


def bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def probe_filter() -> bytes:
    """A stand-in for Kindling's filter (which Kindling would hand over as its compiled
    instructions): kill on a foreign architecture, EPERM for unshare, allow the rest."""
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    return b"".join([
        bpf(ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        bpf(jeq_k, 1, 0, AUDIT_ARCH_X86_64),
        bpf(ret_k, 0, 0, 0x80000000),  # SECCOMP_RET_KILL_PROCESS
        bpf(ld_w_abs, 0, 0, 0),  # seccomp_data.nr
        bpf(jeq_k, 0, 1, SYS_UNSHARE),
        bpf(ret_k, 0, 0, 0x00050000 | errno.EPERM),  # SECCOMP_RET_ERRNO
        bpf(ret_k, 0, 0, 0x7FFF0000),  # SECCOMP_RET_ALLOW
    ])


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise OSError(ctypes.get_errno(), what)


# ---------------------------------------------------------------------------------------------


def rollup(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        out[key] = int(value.split()[0])
    return out


def by_mapping(pid: int, top: int = 6) -> str:
    """The mappings holding most of a process's private memory (kB), from smaps."""
    sizes, name = {}, None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else "[anon]"
            name = name.rsplit("/", 1)[-1]
        elif line.startswith(("Private_Dirty:", "Private_Clean:")):
            sizes[name] = sizes.get(name, 0) + int(head[1])
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{n} {kb}" for n, kb in ranked if kb)


def schedstat_ms(pid: int) -> float:
    """CPU time the process has run so far (ns precision, from the scheduler)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6


def private_mb(r: dict) -> float:
    return (r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / 1024


def summary(label: str, pids: list, cgroups: list) -> list:
    rolls = [rollup(p) for p in pids]
    lines = [f"{label}: {len(pids)} idle environments"]
    for name, values in [
        ("private MB", [private_mb(r) for r in rolls]),
        ("  of which dirty", [r["Private_Dirty"] / 1024 for r in rolls]),
        ("PSS MB", [r["Pss"] / 1024 for r in rolls]),
        ("RSS MB", [r["Rss"] / 1024 for r in rolls]),
        ("cgroup charged MB", [int((c / "memory.usage_in_bytes").read_text()) / 2**20 for c in cgroups]),
    ]:
        lines.append(f"  {name:20s} p50 {statistics.median(values):6.2f}  max {max(values):6.2f}")
    lines.append(f"  private kB by mapping (first): {by_mapping(pids[0])}")
    cpu = [schedstat_ms(p) for p in pids]
    lines.append(f"  CPU ms until idle (start + 1 invoke) p50 {statistics.median(cpu):6.2f}  max {max(cpu):6.2f}")
    return lines


def expose(interpreter: Path) -> None:
    """Make the interpreter's installation readable by the environments' uids (pyenv installs
    under /root, mode 0700) without touching the host: in a private mount namespace of this
    probe, a 0755 tmpfs over the closed directory with the installation bound back at its
    path (Kindling's sandbox binds the interpreter read-only into each root likewise). The
    installation is bound from a descriptor opened before the tmpfs hid it, so no mount of it
    ever sits inside the probe's scratch directory (which is deleted at the end)."""
    prefix = interpreter.resolve().parents[1]
    closed = next((d for d in reversed(prefix.parents) if not os.stat(d).st_mode & 0o001), None)
    if closed is None:
        return
    os.unshare(os.CLONE_NEWNS)
    sh("mount", "--make-rprivate", "/")
    handle = os.open(prefix, os.O_PATH | os.O_DIRECTORY)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(closed))
    prefix.mkdir(parents=True)
    # mount(2) itself: mount(8) would canonicalize the magic link to the (now empty) path.
    ms_bind, ms_rec = 4096, 16384
    check(LIBC.mount(f"/proc/self/fd/{handle}".encode(), str(prefix).encode(), None,
                     ms_bind | ms_rec, None), "bind the interpreter")
    os.close(handle)


def remove_scratch(work: Path) -> None:
    """Deletes the scratch directory, refusing to descend into any mount point."""
    for dirpath, dirnames, _ in os.walk(work):
        for d in dirnames:
            if os.path.ismount(os.path.join(dirpath, d)):
                raise SystemExit(f"zygote_probe: {dirpath}/{d} is a mount point; left {work} in place")
    shutil.rmtree(work)


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=True, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", type=int, default=20)
    ap.add_argument("--no-freeze", action="store_true",
                    help="fork without gc.freeze() in the zygote (to measure what it saves)")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "zygote-probe-latest.txt"),
                    help="where to write the report (also printed)")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter the environments run (default: this one)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("zygote_probe: needs root (namespaces, setuid, cgroups)")
    if Path(sys.executable).resolve() != Path(args.python).resolve():
        # The zygote must be the interpreter the environments would run.
        os.execv(args.python, [args.python, *sys.argv])

    work = Path(tempfile.mkdtemp(prefix="zygote-probe-"))
    os.chmod(work, 0o755)
    task = work / "task"
    task.mkdir()
    (task / "handler.py").write_text(HANDLER)
    expose(Path(args.python))
    os.chmod(task, 0o755)
    procs = []
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
    sh("ip", "netns", "add", NETNS)
    sh("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
    CGROUP.mkdir(exist_ok=True)
    report = [
        f"Zygote probe, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.python} "
        f"({sys.version.split()[0]}), {args.envs} environments per way; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    ]
    try:
        mock, control = mock_runtime_api.start(args.python, PORT, work, NETNS)
        procs.append(mock)
        env = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{PORT}", "_HANDLER": "handler.handler",
               "LAMBDA_TASK_ROOT": str(task), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               # as Kindling's launch does for an interpreter outside the system's paths
               "LD_LIBRARY_PATH": str(Path(args.python).resolve().parents[1] / "lib")}

        # --- execve: today's way (one interpreter per environment, in its cgroup, own uid) ---
        exec_pids, exec_cgroups = [], []
        for i in range(args.envs):
            cg = CGROUP / f"exec-{i}"
            cg.mkdir(exist_ok=True)
            exec_cgroups.append(cg)
            uid = FIRST_UID + i

            p = subprocess.Popen(["ip", "netns", "exec", NETNS, "setpriv", "--reuid", str(uid),
                                  "--regid", str(uid), "--clear-groups", "--", args.python, "-I",
                                  "-S", "-u", str(BOOTSTRAP)],
                                 cwd=task, env=env, stdout=subprocess.DEVNULL,
                                 preexec_fn=lambda cg=cg: (cg / "cgroup.procs").write_text("0"))
            procs.append(p)
            exec_pids.append(p.pid)
        wait_responses(control, args.envs)
        time.sleep(0.5)
        # `ip netns exec` and setpriv exec in place: the pid is the interpreter's.
        report += summary("execve (today)", exec_pids, exec_cgroups)

        # --- zygote ---
        targets, target_ns = [], []
        for i in range(args.envs):
            t = subprocess.Popen(["ip", "netns", "exec", NETNS, "unshare", "--pid", "--fork",
                                  "--mount", "--ipc", "--uts", "--cgroup", "--kill-child",
                                  "sleep", "86400"])
            procs.append(t)
            targets.append(t)
        inits = []
        for t in targets:
            end = time.monotonic() + 10
            while True:
                kids = Path(f"/proc/{t.pid}/task/{t.pid}/children").read_text().split()
                if kids:
                    break
                if time.monotonic() > end:
                    raise SystemExit("unshare did not fork")
                time.sleep(0.01)
            init = int(kids[0])
            inits.append(init)
            target_ns.append([os.readlink(f"/proc/{init}/ns/{ns}") for ns in NAMESPACES])

        env_arg = "\x01".join(f"{k}={v}" for k, v in env.items())
        zygote = subprocess.Popen([args.python, "-I", "-S", "-c", ZYGOTE, str(BOOTSTRAP),
                                   probe_filter().hex(), "0" if args.no_freeze else "1", env_arg],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        procs.append(zygote)
        zygote_cgroups = []
        for i, init in enumerate(inits):
            cg = CGROUP / f"zygote-{i}"
            cg.mkdir(exist_ok=True)
            zygote_cgroups.append(cg)
            request = [str(init), str(cg / "cgroup.procs"), str(FIRST_UID + 1000 + i),
                       *target_ns[i]]
            zygote.stdin.write((" ".join(request) + "\n").encode())
        zygote.stdin.flush()
        seen = [zygote.stdout.readline().decode().strip() for _ in inits]
        failures = [s for s in seen if not s.startswith("pid ")]
        if failures:
            raise SystemExit(f"zygote children failed: {failures[:3]}")
        wait_responses(control, 2 * args.envs)
        time.sleep(0.5)
        zygote_pids = [int(line.split("host-pid ")[1].split()[0]) for line in seen]
        for pid in zygote_pids:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != zygote.pid:
                raise SystemExit(f"child {pid}: parent {ppid}, expected the zygote")
            if Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                raise SystemExit(f"child {pid} has children")
        hashes = {line.split("hash ")[1] for line in seen}
        report.append("  (each child's parent is the zygote, a subreaper: not its namespace's init "
                      f"{inits[0]}, ...)")
        report += summary("zygote fork (each in its namespaces, uid, cgroup, filter; "
                          + ("no gc.freeze" if args.no_freeze else "gc.freeze") + ")", zygote_pids,
                          zygote_cgroups)
        report.append(f"  children saw (inside their pid namespace): {seen[0].split(' hash')[0]}, ...; "
                      f"all {len(seen)} in the target's 6 namespaces, unshare refused")
        report.append(f"  zygote itself: private {private_mb(rollup(zygote.pid)):.2f} MB "
                      f"(once per runtime)")
        report.append(f"  hash('kindling') in the {len(seen)} children: {len(hashes)} distinct value(s) "
                      "(the zygote's hash secret, shared)")
    finally:
        for pid in [] if "zygote_pids" not in locals() else zygote_pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for p in reversed(procs):
            p.kill()
        for p in procs:
            p.wait()
        time.sleep(0.2)
        for cg in sorted(c for c in CGROUP.glob("*") if c.is_dir()):
            for pid in (cg / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        for cg in sorted(c for c in CGROUP.glob("*") if c.is_dir()):
            try:
                cg.rmdir()
            except OSError:
                pass
        try:
            CGROUP.rmdir()
        except OSError:
            pass
        subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
        remove_scratch(work)
    text = "\n".join(report) + "\n"
    Path(args.out).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
