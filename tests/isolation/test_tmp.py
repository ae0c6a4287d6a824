"""`/tmp` of a namespaced environment, from real Python functions on a real
`kindling serve --isolation namespaces`: on disk (a 128 MB function can write 200 MB to it, as
on Lambda, instead of being OOM-killed by a memory-backed /tmp), ENOSPC at exactly
EphemeralStorage, kept across warm invokes, and empty in every new environment."""

from __future__ import annotations

import os

import pytest

import iso_support as k
from iso_support import deploy, invoke, ok, ping, unique, wait_until

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

MIB = 1024 * 1024

TMP = r'''
import errno, os

CHUNK = b"\x5a" * (1 << 20)

def attack(event, context):
    op = event["op"]
    if op == "write":
        path = "/tmp/" + event["name"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written, error = 0, None
        try:
            while written < event["bytes"]:
                try:
                    n = os.write(fd, CHUNK[: min(len(CHUNK), event["bytes"] - written)])
                except OSError as e:
                    error = errno.errorcode.get(e.errno, str(e.errno))
                    break
                written += n
        finally:
            os.close(fd)
        st = os.statvfs("/tmp")
        return {"written": written, "error": error, "size": os.stat(path).st_size,
                "tmp_total": st.f_blocks * st.f_frsize}
    if op == "remove":
        os.remove("/tmp/" + event["name"])
        return {"removed": True}
    if op == "put":
        with open("/tmp/marker", "w") as f:
            f.write(event["value"])
        return {"listing": sorted(os.listdir("/tmp"))}
    if op == "list":
        found = {}
        for name in sorted(os.listdir("/tmp")):
            with open("/tmp/" + name, "rb") as f:
                found[name] = f.read(64).decode(errors="replace")
        return {"listing": found}
    raise ValueError(op)
'''


def test_a_128_mb_function_writes_200_mb_to_tmp(server):
    name = unique("iso-tmp200")
    deploy(server, name, k.function_source(TMP), memory=128, ephemeral=512, timeout=120)
    first = ping(server, name)
    r = invoke(server, name, {"op": "write", "name": "big", "bytes": 200 * MIB})
    print("write 200 MB:", r.describe())
    assert r.status == 200, r.describe()
    assert r.function_error is None, \
        f"writing 200 MB to /tmp under MemorySize 128 ended the environment: {r.describe()}"
    out = r.payload
    assert out["error"] is None and out["written"] == out["size"] == 200 * MIB, out
    # The environment survived and still serves; the memory it used stayed under its limit.
    assert ping(server, name)["env"] == first["env"]
    used = r.max_memory_used_mb()
    assert used is not None and used <= 128, r.log


def test_tmp_is_enospc_at_exactly_ephemeral_storage(server):
    name = unique("iso-tmpfull")
    deploy(server, name, k.function_source(TMP), memory=128, ephemeral=512, timeout=120)
    first = ping(server, name)
    r = invoke(server, name, {"op": "write", "name": "fill", "bytes": 700 * MIB})
    print("fill /tmp:", r.describe())
    assert r.status == 200 and r.function_error is None, r.describe()
    out = r.payload
    assert out["error"] == "ENOSPC", f"no ENOSPC writing 700 MB into a 512 MB /tmp: {out}"
    # All of EphemeralStorage is usable (less a few blocks of the file's own extent tree), and
    # not a byte more.
    assert 511 * MIB <= out["written"] <= 512 * MIB, out
    # The full /tmp does not end the environment; freeing it makes room again.
    assert ok(server, name, {"op": "remove", "name": "fill"}) == {"removed": True}
    again = ok(server, name, {"op": "write", "name": "again", "bytes": 300 * MIB})
    assert again["error"] is None and again["written"] == 300 * MIB, again
    assert ping(server, name)["env"] == first["env"]


def test_tmp_survives_warm_invokes_and_a_new_environment_starts_empty(server):
    name = unique("iso-tmpkeep")
    deploy(server, name, k.function_source(TMP), memory=128, ephemeral=512)
    first = ping(server, name)
    assert ok(server, name, {"op": "put", "value": first["env"]})["listing"] == ["marker"]
    # Warm: the same environment, its /tmp as left.
    assert ok(server, name, {"op": "list"})["listing"] == {"marker": first["env"]}
    assert ping(server, name)["env"] == first["env"]

    # A configuration change retires the environment: the next one has an empty /tmp of its
    # own, not the previous one's.
    c = server.client()
    c.update_function_configuration(FunctionName=name, Environment={"Variables": {"GENERATION": "2"}})
    wait_until(lambda: c.get_function(FunctionName=name)["Configuration"].get(
        "LastUpdateStatus") in ("Successful", None), 60, 0.2, "the update")
    second = ping(server, name)
    assert second["env"] != first["env"], "the update did not start a new environment"
    assert ok(server, name, {"op": "list"})["listing"] == {}, "a new environment saw old /tmp"
