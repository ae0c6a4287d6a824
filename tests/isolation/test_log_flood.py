"""A function that floods its stdout cannot fill the host's disk through its log stream.

Open streams (their environment runs) are never deleted by retention, so before each stream
started a new file at a sixteenth of `--log-max-size`, one environment's stream grew without
limit: ~100 MiB/s from a Python loop on the debug build, some 90 GB in one 15-minute
invocation, whatever `--log-max-size` said."""

from __future__ import annotations

import os
from pathlib import Path

import iso_support as k

MIB = 1 << 20

FLOOD = '''
import sys

def attack(event, context):
    line = ("x" * 1023 + "\\n") * 1024  # 1 MiB
    for _ in range(event["mib"]):
        sys.stdout.write(line)
    print("flood-end-" + event["tag"], flush=True)
    return {"wrote_mib": event["mib"]}
'''


def disk_bytes(root: Path) -> int:
    total = 0
    for parent, _, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(parent, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def test_a_log_flood_stays_within_log_max_size(server_factory):
    # A sweep interval far beyond the test: the bound cannot come from retention deleting.
    srv = server_factory.start("logflood", extra_args=[
        "--log-max-size", "16MiB", "--log-sweep-interval", "3600"])
    name = k.unique("flood")
    k.deploy(srv, name, k.function_source(FLOOD), timeout=120)
    logs = srv.data_dir / "logs"
    for i in range(3):
        p = k.ok(srv, name, {"mib": 100, "tag": f"t{i}"})
        assert p == {"wrote_mib": 100}, p
        used = disk_bytes(logs)
        # One environment (still running: its stream is open) wrote 100 MiB per invoke; it
        # holds its live file and the one before, each a sixteenth of 16 MiB (+ one line).
        assert used <= 2 * MIB + 64 * 1024, f"after {i + 1} invokes: {used / MIB:.1f} MiB of logs"
    # The newest lines are kept, in the environment's own stream.
    streams = [p for p in logs.rglob("*.log")]
    live = [p for p in streams if not p.stem.endswith("-earlier")]
    assert len(live) == 1 and len(streams) == 2, streams
    k.wait_until(lambda: "flood-end-t2" in live[0].read_text(errors="replace"), 10,
                 what="the last line in the live stream file")
    # The same environment serves on.
    k.ping(srv, name)
