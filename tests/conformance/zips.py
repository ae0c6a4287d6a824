"""Raw zip archives for the package tests: every field can lie (names, modes, sizes, CRCs,
flags, methods, local headers), which `zipfile` does not allow."""

from __future__ import annotations

import dataclasses
import struct
import zlib


@dataclasses.dataclass
class Entry:
    name: bytes
    data: bytes = b""
    method: int = 8
    mode: int = 0o100644  # Unix mode with the file type
    flags: int = 0
    declared_size: int | None = None
    crc: int | None = None
    raw_data: bytes | None = None  # stored instead of the compressed data
    local_name: bytes | None = None  # a different name in the local header
    share_header_of: int | None = None  # point at an earlier entry's local header


def file(name, data=b"x", **kw) -> Entry:
    return Entry(name.encode() if isinstance(name, str) else name, data, **kw)


def directory(name: str, **kw) -> Entry:
    return Entry(name.encode(), b"", method=0, mode=0o040755, **kw)


def symlink(name: str, target: str) -> Entry:
    return Entry(name.encode(), target.encode(), method=0, mode=0o120777)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def build(entries: list[Entry]) -> bytes:
    out = bytearray()
    central = bytearray()
    offsets: list[int] = []
    for e in entries:
        packed = e.raw_data if e.raw_data is not None else (
            deflate(e.data) if e.method == 8 else e.data)
        crc = e.crc if e.crc is not None else zlib.crc32(e.data)
        size = e.declared_size if e.declared_size is not None else len(e.data)
        if e.share_header_of is not None:
            offset = offsets[e.share_header_of]
        else:
            offset = len(out)
            local = e.local_name if e.local_name is not None else e.name
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, e.flags, e.method, 0, 0x21, crc,
                               len(packed), size, len(local), 0) + local + packed
        offsets.append(offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 3 << 8 | 20, 20, e.flags,
                               e.method, 0, 0x21, crc, len(packed), size, len(e.name), 0, 0,
                               0, 0, e.mode << 16, offset) + e.name
    cd_offset = len(out)
    out += central
    count = len(entries)
    if count > 0xFFFF:
        # ZIP64 end record and locator; the classic end record then says "see ZIP64".
        z64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 3 << 8 | 45, 45, 0, 0, count, count,
                           len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        count = 0xFFFF
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_offset, 0)
    return bytes(out)


APP = b"def handler(event, context):\n    return 'ok'\n"


def hostile() -> dict[str, bytes]:
    """Archives Lambda cannot unpack safely, by the flaw each one has."""
    zeros = bytes(10 * 1024 * 1024)
    big = bytes(range(256)) * 400
    cases = {
        "dot-dot": [file("../evil.py")],
        "deep-dot-dot": [file("a/b/../../../evil.py")],
        "absolute": [file("/etc/cron.d/evil")],
        "nul-in-name": [file(b"app.py\0.txt")],
        "symlink-escapes": [symlink("link", "../../etc")],
        "symlink-absolute": [symlink("link", "/etc/passwd")],
        "symlink-escapes-through-link": [symlink("s", "."), symlink("l", "s/..")],
        "file-and-directory": [file("x"), file("x/y")],
        "file-then-directory-entry": [file("x"), directory("x/")],
        "under-a-symlink": [directory("d/"), symlink("l", "d"), file("l/f")],
        "duplicate": [file("app.py", APP), file("app.py", APP)],
        "bad-crc": [file("app.py", APP, crc=0x12345678)],
        "truncated": [file("big.bin", big, raw_data=deflate(big)[:100])],
        "corrupt-deflate": [file("app.py", APP, raw_data=b"\xff" * 64)],
        "encrypted": [file("app.py", APP, flags=1)],
        "aes-encrypted": [file("app.py", APP, method=99)],
        "bzip2": [file("app.py", APP, method=12)],
        "lying-size": [file("app.py", APP), file("bomb.bin", zeros, declared_size=10)],
        "device": [file("dev", b"", mode=0o020644)],
        "fifo": [file("fifo", b"", mode=0o010644)],
        "overlapping-entries": [file("a", APP), file("b", APP, share_header_of=0)],
        "local-name-differs": [file("innocent.txt", local_name=b"../../evil.sh")],
        "directory-with-data": [Entry(b"d/", b"payload", method=0, mode=0o040755)],
    }
    built = {name: build(entries) for name, entries in cases.items()}
    legal = build([file("app.py", APP)])
    built["cut-in-half"] = legal[: len(legal) // 2]
    built["no-central-directory"] = legal[:-22]
    return built
