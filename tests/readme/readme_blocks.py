"""Reads the README's shell blocks and the `<!-- readme-test: ... -->` markers before them.

Markers (an HTML comment on the line(s) before a fenced block; invisible when rendered):
  server port=N        a long-running server: started in the background, the next blocks run
                       once it listens on N; stopped (SIGTERM, must exit 0) before the next
                       server block and at the end
  ci-entry             the test command itself (what `.ci/run` calls): not run again
  expect-output TEXT   the block's combined output must contain TEXT
Every other `sh` block runs as written, in order, in one bash session (`set -euo pipefail`), so
exports carry from block to block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    line: int
    lang: str
    text: str
    markers: list[str] = field(default_factory=list)

    def marker(self, name: str) -> str | None:
        for m in self.markers:
            if m == name or m.startswith(name + " "):
                return m[len(name):].strip()
        return None

    @property
    def server_port(self) -> int | None:
        arg = self.marker("server")
        if arg is None:
            return None
        match = re.search(r"port=(\d+)", arg)
        if not match:
            raise ValueError(f"README line {self.line}: server marker without port=N")
        return int(match.group(1))

    @property
    def expected_outputs(self) -> list[str]:
        return [m[len("expect-output"):].strip() for m in self.markers
                if m.startswith("expect-output ")]


def parse(readme: Path) -> list[Block]:
    """Every fenced block with its markers (markers apply to the next fenced block)."""
    lines = readme.read_text().splitlines()
    blocks: list[Block] = []
    pending: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.search(line)
        if m:
            pending.append(m.group(1))
            i += 1
            continue
        fence = FENCE.match(line)
        if fence:
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append(Block(start, fence.group(1), "\n".join(lines[start:j]) + "\n",
                                pending))
            pending = []
            i = j + 1
            continue
        i += 1
    if pending:
        raise ValueError(f"README: markers {pending} are not followed by a block")
    return blocks


def shell_blocks(readme: Path) -> list[Block]:
    return [b for b in parse(readme) if b.lang in ("sh", "bash", "shell")]
