"""Cgroups of killed nodes, on real `kindling serve --isolation namespaces` processes: every
node keeps its environments' cgroups under `kindling/<node-id>` and holds a liveness lock
(`/run/kindling/nodes/<node-id>.lock`) while it runs, so a node starting with ANOTHER data dir
removes what a SIGKILLed node left, in every hierarchy, and leaves live nodes' cgroups alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import iso_support as k
from iso_support import deploy, ping, unique, wait_until

if os.geteuid() != 0:
    pytest.fail("the isolation suite needs root: `--isolation namespaces` (mount/PID namespaces, "
                "cgroups) is only available to root: run it as root", pytrace=False)

NODE_LOCKS = Path("/run/kindling/nodes")


def node_dirs(node_id: str) -> list[Path]:
    """`kindling/<node-id>` in every hierarchy where it exists."""
    hierarchies = [h for h in sorted(k.CGROUP_ROOT.iterdir()) if h.is_dir()] + [k.CGROUP_ROOT]
    return [h / "kindling" / node_id for h in hierarchies
            if (h / "kindling" / node_id).is_dir()]


def processes_in(node_id: str) -> list[str]:
    """Pids in any environment cgroup of the node (host numbering), as read."""
    found = []
    for parent in node_dirs(node_id):
        for env in (p for p in parent.iterdir() if p.is_dir()):
            try:
                found += (env / "cgroup.procs").read_text().split()
            except OSError:
                pass
    return found


def lock_holders(lock: Path) -> list[int]:
    """Pids with a descriptor open on `lock`."""
    found = []
    for pid in k.host_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock):
                    found.append(pid)
                    break
            except OSError:
                pass
    return found


def test_a_killed_nodes_cgroups_are_removed_by_the_next_node_to_start(server_factory):
    first = server_factory.start("node-killed")
    killed = first.node_id
    name = unique("node-cg")
    deploy(first, name, k.function_source("def attack(event, context):\n    return {}\n"))
    ping(first, name)
    killed_dirs = node_dirs(killed)
    assert len(killed_dirs) >= 2, f"the node's cgroup parents: {killed_dirs}"
    assert k.cgroup_dirs(killed), "the environment's cgroups should exist while it runs"

    first.kill9()
    # The environments end with the server (their supervisor's lifeline closes); the sweep
    # leaves a cgroup with processes alone, so it is checked once they are gone.
    wait_until(lambda: not processes_in(killed), 15,
               what="the killed server's environments to end")
    assert node_dirs(killed) == killed_dirs, "nothing else removes a killed node's cgroups"

    second = server_factory.start("node-next")
    alive = second.node_id
    assert alive != killed
    wait_until(lambda: not node_dirs(killed), 30,
               what=f"the next node to remove the killed node's cgroups {killed_dirs}")
    assert not (NODE_LOCKS / f"{killed}.lock").exists()

    # The live node's own cgroup parents, in every hierarchy the killed one had, are kept by
    # a node starting next, though it has no environment yet (empty, as a dead node's are).
    alive_dirs = node_dirs(alive)
    assert [d.parent.parent for d in alive_dirs] == [d.parent.parent for d in killed_dirs]
    assert not k.cgroup_dirs(alive), "no environment yet"
    assert (NODE_LOCKS / f"{alive}.lock").is_file()
    third = server_factory.start("node-third")
    assert node_dirs(third.node_id), "the third node's own cgroup parents"
    assert node_dirs(alive) == alive_dirs
    deploy(second, name, k.function_source("def attack(event, context):\n    return {}\n"))
    ping(second, name)
    assert k.cgroup_dirs(alive), "the live node's environment cgroups"
    # Only the server holds its lock: no environment inherits the descriptor (a supervisor
    # holds a copy for the microseconds between its clone and closing Kindling's descriptors).
    lock = NODE_LOCKS / f"{alive}.lock"
    wait_until(lambda: lock_holders(lock) == [second.pid], 10,
               what=f"only the server ({second.pid}) to hold {lock}")
