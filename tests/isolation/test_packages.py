"""Deployment packages against the host: setuid bits, the data dir's permissions, the mounts
the environments see their code through, and zip bombs (at upload and at cold start).

Run as root with the rest of the isolation suite (`--isolation namespaces`).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import iso_support as k
from iso_support import ok, ping, unique, wait_until

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root", pytrace=False)

MIB = 1024 * 1024
UNZIPPED_LIMIT = 262_144_000
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

INSPECTOR = r'''
import os, stat

def attack(event, context):
    modes = {}
    for root in ("/var/task", "/opt"):
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                modes[path] = os.lstat(path).st_mode
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mounts[fields[4]] = fields[5]
    with open("/var/task/data.txt") as f:
        data = f.read()
    return {"modes": modes, "mounts": {p: mounts.get(p) for p in ("/var/task", "/opt")},
            "uid": os.getuid(), "data": data}
'''


def unix_zip(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A zip whose entries carry the given Unix modes (file type included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (mode, content) in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_STORED if stat.S_ISDIR(mode) else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def lying_zip(real_size: int, declared_size: int, extra: dict[str, bytes] | None = None) -> bytes:
    """`bomb.bin`: `real_size` zero bytes deflated, declared as `declared_size` bytes (with
    the real data's CRC, so only the sizes lie), after ordinary stored files `extra`."""
    out = bytearray()
    central = bytearray()
    entries = [(name, data, 0, len(data), zlib.crc32(data), data)
               for name, data in (extra or {}).items()]
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MIB)
    packed, crc, left = [], 0, real_size
    while left:
        n = min(left, MIB)
        packed.append(comp.compress(chunk[:n]))
        crc = zlib.crc32(chunk[:n], crc)
        left -= n
    packed.append(comp.flush())
    entries.append(("bomb.bin", b"".join(packed), 8, declared_size, crc, None))
    for name, data, method, size, crc, _ in entries:
        offset = len(out)
        raw = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(raw), 0) + raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 3 << 8 | 20, 20, 0, method, 0,
                               0x21, crc, len(data), size, len(raw), 0, 0, 0, 0,
                               0o100644 << 16, offset) + raw
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                       cd_offset, 0)
    return bytes(out)


def create(server: k.Server, name: str, zip_bytes: bytes, layers=()):
    c = server.client()
    c.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                      Role="arn:aws:iam::000000000000:role/isolation-test",
                      Code={"ZipFile": zip_bytes}, Timeout=30, Layers=list(layers))
    wait_until(lambda: c.get_function(FunctionName=name)["Configuration"].get("State")
               in ("Active", None), 60, 0.2, f"{name} to become Active")


def special_bits_under(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o7000:
                found.append(f"{path} {stat.filemode(mode)}")
    return found


def as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *cmd], capture_output=True, text=True, timeout=30)


@pytest.fixture
def open_parent_server(server_factory):
    """A server whose data dir's parent is open to everyone (0755) and whose data dir starts
    out 0755: only Kindling's own permissions stand between other users and the data."""
    data = k.new_data_dir("perm")
    os.chmod(data.parent, 0o755)
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    server = k.Server(data)
    server_factory.servers.append(server)
    return server.start()


def test_setuid_bits_never_reach_the_host_and_other_users_see_nothing(open_parent_server):
    server = open_parent_server
    data = server.data_dir
    source = k.function_source(INSPECTOR)
    code = unix_zip({
        "app.py": (0o100644, source.encode()),
        "data.txt": (0o100600, b"private to the zip's owner"),
        "suid-root": (0o104755, b"#!/bin/sh\nid\n"),
        "sgid": (0o102755, b"#!/bin/sh\nid\n"),
        "sticky/": (0o041777, b""),
        "sticky/f": (0o107777, b"x"),
    })
    layer = server.client().publish_layer_version(
        LayerName=unique("suid-layer"),
        Content={"ZipFile": unix_zip({"bin/layer-suid": (0o104755, b"#!/bin/sh\n")})})
    name = unique("iso-suid")
    create(server, name, code, layers=[layer["LayerVersionArn"]])
    out = ok(server, name, {})

    # Inside: the code is readable by the environment's own user, without special bits, on
    # read-only nosuid nodev mounts.
    assert out["uid"] >= 100000, out["uid"]
    assert out["data"] == "private to the zip's owner"
    bad = {p: oct(m) for p, m in out["modes"].items()
           if not stat.S_ISLNK(m) and m & 0o7000}
    assert bad == {}, f"special bits inside the environment: {bad}"
    assert oct(out["modes"]["/var/task/suid-root"] & 0o7777) == oct(0o755)
    assert oct(out["modes"]["/opt/bin/layer-suid"] & 0o7777) == oct(0o755)
    for mount in ("/var/task", "/opt"):
        options = (out["mounts"][mount] or "").split(",")
        for needed in ("ro", "nosuid", "nodev"):
            assert needed in options, f"{mount} is mounted {options}, without {needed}"

    # On the host: no special bits anywhere under the data dir.
    unpacked = data / "run" / "code"
    assert any(unpacked.iterdir()), "the package was not unpacked where expected"
    assert special_bits_under(data) == []

    # Another host user can neither list nor read anything in the data dir.
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    control = as_nobody("cat", "/etc/hostname")
    assert control.returncode == 0, f"setpriv itself does not work: {control.stderr}"
    blob = hashlib.sha256(code).hexdigest()
    targets = [
        ["ls", str(data)],
        ["cat", str(data / "node-id")],
        ["cat", str(data / "state.db")],
        ["ls", str(unpacked / blob)],
        ["cat", str(unpacked / blob / "app.py")],
        ["cat", str(data / "code" / blob[:2] / f"{blob}.zip")],
        [str(unpacked / blob / "suid-root")],
    ]
    assert (unpacked / blob / "app.py").is_file()
    for cmd in targets:
        r = as_nobody(*cmd)
        assert r.returncode != 0 and "Permission denied" in r.stderr, \
            f"uid 65534 ran {cmd}: rc={r.returncode} out={r.stdout[:200]!r} err={r.stderr[:200]!r}"
    ping(server, name)


def test_a_lying_zip_is_refused_at_upload(server):
    bomb = lying_zip(400 * MIB, 10, {"app.py": b"def handler(e, c):\n    return 1\n"})
    assert len(bomb) < 2 * MIB
    c = server.client()
    name = unique("iso-liar")
    blob = hashlib.sha256(bomb).hexdigest()
    for call in (
        lambda: c.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                                  Role="arn:aws:iam::000000000000:role/x",
                                  Code={"ZipFile": bomb}),
        lambda: c.publish_layer_version(LayerName=unique("liar"), Content={"ZipFile": bomb}),
    ):
        with pytest.raises(ClientError) as e:
            call()
        err = e.value.response
        assert err["Error"]["Code"] == "InvalidParameterValueException", err
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "Could not unzip uploaded file" in err["Error"]["Message"], err
    assert not (server.data_dir / "code" / blob[:2] / f"{blob}.zip").exists()
    assert not any((server.data_dir / "run" / "code").glob(f"*{blob}*"))


def test_a_swapped_blob_stops_at_cold_start_with_a_function_error(server_factory):
    server = server_factory.start("swap")
    data = server.data_dir
    good = k.zip_bytes({"app.py": k.function_source("def attack(e, c):\n    return 1\n")})
    blob = hashlib.sha256(good).hexdigest()
    name = unique("iso-swap")
    create(server, name, good)
    unpacked = data / "run" / "code" / blob
    # Kindling unpacks new code in the background; wait for it, then take it away so that the
    # next cold start unpacks the (swapped) blob again.
    wait_until(unpacked.is_dir, 30, 0.1, "the package to be unpacked ahead of time")
    shutil.rmtree(unpacked)
    blob_path = data / "code" / blob[:2] / f"{blob}.zip"
    assert blob_path.is_file()
    bomb = lying_zip(1024 * MIB, 10, {"app.py": good})
    tmp = blob_path.with_suffix(".swap")
    tmp.write_bytes(bomb)
    os.replace(tmp, blob_path)

    before = shutil.disk_usage(data).free
    with pytest.raises(ClientError) as e:
        server.client().invoke(FunctionName=name, Payload=b"{}")
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 502, err
    assert err["Error"]["Code"] == "InvalidZipFileException", err
    assert "bomb.bin" in err["Error"]["Message"], err
    # Nothing was left behind, and far less than the bomb was ever written.
    assert not unpacked.exists()
    assert list((data / "run" / "code").iterdir()) == []
    assert before - shutil.disk_usage(data).free < 100 * MIB
    # The server is fine: another function (other bytes, so another blob) runs.
    other = unique("iso-after-swap")
    k.deploy(server, other, k.function_source("def attack(e, c):\n    return 2\n"))
    ping(server, other)
