"""Cold-start storms queue instead of timing out: environments start a few at a time (the
cold-start gate), the Init clock runs only once an environment is really being started, a
waiting invocation takes a warm environment that frees up meanwhile, and an invocation that
cannot get an environment within the wait limit is throttled with Lambda's 429."""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import json
import threading
import time

from botocore.exceptions import ClientError

import kindling_e2e as k

BURST = 300

# Takes `INIT_S` seconds to import (a slow Init), then echoes.
SLOW_INIT = """import os, time

time.sleep(float(os.environ["INIT_S"]))

def handler(event, context):
    return {"ok": True, "stream": context.log_stream_name}
"""


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _raw_invoke(port: int, name: str, barrier: threading.Barrier) -> tuple[int, dict, bytes]:
    """One Invoke over a plain HTTP connection (a boto3 client per thread would cost the test
    more memory than the server), sent when every thread is ready."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.connect()
        barrier.wait(timeout=60)
        conn.request("POST", f"/2015-03-31/functions/{name}/invocations",
                     body=json.dumps({"info": True}).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {h.lower(): v for h, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_burst_of_first_invokes_is_answered(server_factory, kinds):
    srv = server_factory("--account-concurrency", "1000", "--idle-timeout", "600")
    lam = k.make_client(srv.url)
    name = k.create_function(lam, kinds["python"], MemorySize=128)
    rss_before = _rss_kb(srv.proc.pid)

    barrier = threading.Barrier(BURST)
    started = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=BURST) as pool:
        results = list(pool.map(lambda _: _raw_invoke(srv.port, name, barrier), range(BURST)))
    took = time.monotonic() - started
    rss_after = _rss_kb(srv.proc.pid)

    problems = [(status, headers.get("x-amz-function-error"), body[:300])
                for status, headers, body in results
                if status != 200 or "x-amz-function-error" in headers]
    assert not problems, f"{len(problems)} of {BURST} invokes failed, e.g. {problems[:5]}"
    infos = [json.loads(body) for _, _, body in results]
    streams = {i["log_stream_name"] for i in infos}
    # Waiting invocations took environments that freed up: far fewer than one per invoke.
    assert len(streams) <= BURST // 2, (
        f"{BURST} concurrent first invokes started {len(streams)} environments")
    # Each environment served its invocations one after the other: counts 1..n per stream.
    counts: dict[str, list[int]] = {}
    for i in infos:
        counts.setdefault(i["log_stream_name"], []).append(i["count"])
    for stream, seen in counts.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), (stream, sorted(seen))
    assert rss_after - rss_before < 200 * 1024, (
        f"server RSS grew by {(rss_after - rss_before) // 1024} MB during the burst")
    print(f"burst: {len(streams)} environments, {took:.1f}s, RSS +{(rss_after - rss_before) // 1024} MB")
    assert took < 60, f"the burst took {took:.1f}s"
    assert srv.running
    srv.kill()


def _slow_init_function(lam, kinds, seconds: float) -> str:
    return k.create_function(lam, kinds["python"], zip_bytes=k.make_zip({"app.py": SLOW_INIT}),
                             Handler="app.handler", env={"INIT_S": str(seconds)})


def test_waiting_for_a_cold_start_slot_does_not_count_as_init(server_factory, kinds):
    """One slot, two functions whose Init takes 5.5 s each: the second waits 5.5 s for the
    slot, then initializes for 5.5 s, within the 10 s Init limit that counts only the latter."""
    srv = server_factory("--max-concurrent-cold-starts", "1", "--cold-start-wait-limit", "30")
    lam = k.make_client(srv.url)
    first, second = (_slow_init_function(lam, kinds, 5.5) for _ in range(2))
    clients = [k.make_client(srv.url) for _ in range(2)]

    def invoke_until_done(client, name):
        result = k.invoke(client, name, {}, tail=True)
        return result, time.monotonic()

    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(invoke_until_done, clients[0], first)
        time.sleep(0.5)  # let the first take the slot
        b = pool.submit(invoke_until_done, clients[1], second)
        (one, one_done), (two, two_done) = a.result(timeout=60), b.result(timeout=60)
    one.ok()
    two.ok()
    # With the slot the second initializes after the first (5.5 s later); side by side, both
    # would end within about the 0.5 s between them.
    assert two_done - one_done > 4.5, (
        f"the second cold start did not wait for the slot (ended {two_done - one_done:.1f}s "
        f"after the first)")
    init = k.report_for(two.log, two.request_id).init_duration
    assert init is not None and init < 9000, f"Init Duration {init} ms counts the wait"
    srv.kill()


def test_no_slot_within_the_wait_limit_is_throttled(server_factory, kinds):
    srv = server_factory("--max-concurrent-cold-starts", "1", "--cold-start-wait-limit", "1")
    lam = k.make_client(srv.url)
    slow = _slow_init_function(lam, kinds, 4)
    other = k.create_function(lam, kinds["python"])
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(k.invoke, k.make_client(srv.url), slow, {})
        time.sleep(0.5)
        started = time.monotonic()
        try:
            k.invoke(lam, other, {"info": True})
            raise AssertionError("an invoke got a cold start while the only slot was busy")
        except ClientError as err:
            k.assert_api_error(err, "TooManyRequestsException", 429)
            body = k.last_error_body("Invoke")
            assert body.get("Reason") == "FunctionInvocationRateLimitExceeded", body
        waited = time.monotonic() - started
        assert 0.9 < waited < 3.5, f"throttled after {waited:.1f}s (limit 1 s)"
        pending.result(timeout=60).ok()
    # Once the slot is free again, the other function starts.
    assert k.invoke(lam, other, {"info": True}).ok()["count"] == 1
    srv.kill()
