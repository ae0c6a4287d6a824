"""`Max Memory Used` in the REPORT line is the environment's resident memory, as on Lambda: at
least what the runtime process itself has resident, not only the part of it its memory cgroup
was charged for (the interpreter and its libraries are usually in the host's page cache
already, charged to whoever read them first, so the cgroup alone showed ~5 MB for Python)."""

from __future__ import annotations

import pytest

import kindling_e2e as k

# Reports the resident set (and its peak) of the process answering the invoke.
HANDLER = '''
def handler(event, context):
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return {"rss_kb": fields["VmRSS"], "hwm_kb": fields["VmHWM"]}
'''


def _zip(kind: k.RuntimeKind, fixtures: k.Fixtures) -> bytes:
    if kind.key == "ric":
        return k.make_zip({"bootstrap": (k.RIC_BOOTSTRAP, 0o755), "handler.py": HANDLER},
                          trees=[(fixtures.ric_pkg(), "pkg")])
    return k.make_zip({"handler.py": HANDLER})


@pytest.mark.runtimes("python", "ric")
def test_max_memory_used_is_the_environments_resident_memory(lam, kind, fixtures):
    name = k.create_function(lam, kind, zip_bytes=_zip(kind, fixtures), MemorySize=256)
    # Cold, then warm: the interpreter's files are in the page cache by the second
    # environment of a run at the latest, which is when a cgroup-only figure drops.
    for attempt in ("cold", "warm"):
        inv = k.invoke(lam, name, {}, tail=True)
        own = inv.ok()
        rep = k.report_for(inv.log, inv.request_id)
        rss_mb = own["rss_kb"] // 1024
        print(f"{kind.key} {attempt}: Max Memory Used {rep.max_memory} MB, runtime resident "
              f"{own['rss_kb']} kB (peak {own['hwm_kb']} kB)")
        assert rep.max_memory >= rss_mb, (
            f"{attempt}: Max Memory Used {rep.max_memory} MB is less than the {rss_mb} MB the "
            f"runtime process alone has resident: {rep.line!r}")
        # A CPython runtime is never this small: a figure below it counts only anonymous memory.
        assert rep.max_memory >= 8, rep.line
        if kind.key == "ric":
            # awslambdaric (its C extension, json, http.client, ...) on CPython 3.11: 14.7 MB
            # resident on this machine kind, never the ~5 MB a cgroup-only figure shows.
            assert rep.max_memory >= 12, rep.line
        assert rep.max_memory <= 256, rep.line
