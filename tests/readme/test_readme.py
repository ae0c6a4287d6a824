"""The README's commands, run as written with default flags on a fresh data directory.

The blocks run in `target/readme-test/` (a fresh directory with a `target` link to the
repository's, so `cargo run` and `$PWD/target/release` mean what they mean at the repository
root); its `.kindling` is the server's data dir. The aws CLI is the one installed next to the
Python running this test (the test venv's, v1 from PyPI).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_blocks import Block, shell_blocks

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
# The first server block compiles the release binary: allow for a cold build.
SERVER_START_TIMEOUT = 1200
BLOCK_TIMEOUT = 600


def test_readme_markers_parse():
    blocks = shell_blocks(README)
    assert blocks, "README has no sh blocks"
    assert sum(1 for b in blocks if b.marker("ci-entry") is not None) == 1
    ci_entry = next(b for b in blocks if b.marker("ci-entry") is not None)
    assert ci_entry.text.strip() == "./scripts/test"
    ci = (REPO / ".ci/run").read_text()
    assert "./scripts/test" in ci, ".ci/run must run the README's test command"
    assert blocks[0].server_port is not None, "the first command starts Kindling"


def _script(blocks: list[Block], logs: Path) -> str:
    """One bash session running every block in order; servers in their own process groups."""
    out = [
        "set -euo pipefail",
        "__stop_server() {",
        '  if [ -n "${__server_pid:-}" ]; then',
        '    kill -TERM -- "-$__server_pid" 2>/dev/null || true',
        '    local code=0; wait "$__server_pid" || code=$?',
        '    echo "server exited with $code" >&2',
        '    __server_pid=',
        '    [ "$code" = 0 ] || [ "$code" = 143 ] || exit 90',
        "  fi",
        "}",
        "__wait_port() {",
        '  local deadline=$((SECONDS + $2))',
        '  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do',
        '    kill -0 "$__server_pid" 2>/dev/null || { echo "server died" >&2; exit 91; }',
        '    [ $SECONDS -lt $deadline ] || { echo "server not listening on $1" >&2; exit 92; }',
        "    sleep 0.2",
        "  done",
        "}",
        "trap __stop_server EXIT",
    ]
    for n, block in enumerate(blocks):
        if block.marker("ci-entry") is not None:
            continue
        path = logs / f"block-{n}.sh"
        path.write_text(block.text)
        out.append(f"echo '::block {n} (README line {block.line})' >&2")
        if block.server_port is not None:
            out.append("__stop_server")
            out.append(f"setsid bash -eu {shlex.quote(str(path))} "
                       f"> {shlex.quote(str(logs / f'server-{n}.log'))} 2>&1 &")
            out.append("__server_pid=$!")
            out.append(f"__wait_port {block.server_port} {SERVER_START_TIMEOUT}")
        else:
            # Sourced, so that exports reach the following blocks.
            out.append(f"source {shlex.quote(str(path))} "
                       f"> {shlex.quote(str(logs / f'block-{n}.out'))} 2>&1")
    out.append("__stop_server")
    out.append("trap - EXIT")
    return "\n".join(out) + "\n"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_readme_commands_run_as_written(tmp_path):
    blocks = shell_blocks(README)
    ports = {b.server_port for b in blocks if b.server_port}
    busy = [p for p in ports if not _port_free(p)]
    assert not busy, f"the README's servers need ports {busy}, which something else holds"
    if os.geteuid() != 0:
        pytest.fail("the README's shared-mode server uses --isolation namespaces-no-network, "
                    "which needs root: run this suite as root")

    work = REPO / "target" / "readme-test"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "target").symlink_to(REPO / "target")
    logs = tmp_path / "logs"
    logs.mkdir()
    script = logs / "readme.sh"
    script.write_text(_script(blocks, logs))

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "KINDLING_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    started = time.monotonic()
    # Its own process group: whatever a block left running in the background (the cluster
    # section's nodes, if a command after them failed) is stopped with the session.
    with subprocess.Popen(["bash", str(script)], cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as popen:
        try:
            stdout, stderr = popen.communicate(timeout=SERVER_START_TIMEOUT + BLOCK_TIMEOUT * 2)
        finally:
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)

    def report() -> str:
        parts = [f"exit {proc.returncode} after {time.monotonic() - started:.0f}s",
                 "stderr:\n" + proc.stderr[-4000:]]
        for f in sorted(logs.glob("*.out")) + sorted(logs.glob("*.log")):
            parts.append(f"--- {f.name}:\n{f.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    assert proc.returncode == 0, report()
    for n, block in enumerate(blocks):
        for expected in block.expected_outputs:
            out = (logs / f"block-{n}.out").read_text(errors="replace")
            assert expected in out, (
                f"README line {block.line}: expected {expected!r} in the output\n{report()}")
    shutil.rmtree(work, ignore_errors=True)
