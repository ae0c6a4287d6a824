"""Idle environments are frozen where they sit in the warm pool: invocations that arrive while
the reaper is freezing them find them (thawed), instead of starting new environments."""

from __future__ import annotations

import glob
import http.client
import json
import threading
import time

import pytest

import kindling_e2e as k

FUNCTIONS = 24


def _freezer_files(node: str) -> list[tuple[str, str]]:
    """(path, kind) of every environment's freezer knob of this node: the v1 freezer's
    `freezer.state` when that controller is mounted, else cgroup v2's `cgroup.freeze`."""
    v1, v2 = None, None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            fstype, mount, options = fields[dash + 1], fields[4], fields[dash + 3]
            if fstype == "cgroup" and "freezer" in options.split(",") and v1 is None:
                v1 = mount
            elif fstype == "cgroup2" and v2 is None:
                v2 = mount
    if v1:
        return [(p, "v1") for p in glob.glob(f"{v1}/kindling/{node}/*/freezer.state")]
    if v2:
        return [(p, "v2") for p in glob.glob(f"{v2}/kindling/{node}/*/cgroup.freeze")]
    return []


def _freezing(files: list[tuple[str, str]]) -> bool:
    for path, kind in files:
        try:
            with open(path) as f:
                value = f.read().strip()
        except OSError:
            continue
        if (kind == "v1" and value in ("FREEZING", "FROZEN")) or (kind == "v2" and value == "1"):
            return True
    return False


def test_invokes_during_the_freeze_pass_find_their_warm_environments(server_factory, kinds):
    if not k.expected_isolation_is_namespaces():
        pytest.fail("environments are frozen only with namespaces isolation: run the suite as root")
    srv = server_factory("--idle-timeout", "600")
    lam = k.make_client(srv.url)
    names = [k.create_function(lam, kinds["python"]) for _ in range(FUNCTIONS)]
    node = (srv.data_dir / "node-id").read_text().strip()

    # One warm environment per function; then a round of warm invokes, so that all of them
    # are idle from the same moment and the reaper freezes them in one pass.
    clients = {n: k.make_client(srv.url) for n in names}
    results: dict[str, dict] = {}
    for expected in (1, 2):
        barrier = threading.Barrier(FUNCTIONS)

        def call(name: str) -> None:
            barrier.wait(timeout=60)
            results[name] = k.invoke(clients[name], name, {"info": True}).ok()

        threads = [threading.Thread(target=call, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert all(results[n]["count"] == expected for n in names), results
    files = k.wait_for(lambda: (lambda fs: fs if len(fs) >= FUNCTIONS else None)(_freezer_files(node)),
                       timeout=10, what=f"the freezer knobs of {FUNCTIONS} environments")

    # Connections are open and requests ready: they go out the moment freezing starts.
    go = threading.Event()
    answers: dict[str, tuple[int, bytes]] = {}
    conns = {n: http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60) for n in names}
    for conn in conns.values():
        conn.connect()

    def second(name: str) -> None:
        go.wait(timeout=30)
        conn = conns[name]
        conn.request("POST", f"/2015-03-31/functions/{name}/invocations",
                     body=json.dumps({"info": True}).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answers[name] = (resp.status, resp.read())
        conn.close()

    senders = [threading.Thread(target=second, args=(n,)) for n in names]
    for t in senders:
        t.start()
    deadline = time.monotonic() + 10
    while not _freezing(files):
        assert time.monotonic() < deadline, "the idle environments were never frozen"
        time.sleep(0.0005)
    go.set()
    for t in senders:
        t.join(timeout=60)

    cold = []
    for n in names:
        status, body = answers[n]
        assert status == 200, (status, body[:300])
        info = json.loads(body)
        if info["count"] != 3 or info["log_stream_name"] != results[n]["log_stream_name"]:
            cold.append(n)
    assert not cold, (
        f"{len(cold)} of {FUNCTIONS} invokes arriving during the freeze pass started a new "
        "environment instead of taking the idle one")
    srv.kill()
