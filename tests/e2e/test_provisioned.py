"""Provisioned concurrency end to end: environments initialized ahead with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency serve a version's (and its alias's)
invocations first, with no Init Duration in their REPORT lines; invocations beyond them spill
over to on-demand environments; a provisioned environment that dies is replaced; deleting the
configuration releases them; and the configuration survives a restart."""

from __future__ import annotations

import concurrent.futures as cf

import kindling_e2e as k

# Reports how its environment was initialized.
APP = """import os, time

INIT = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    time.sleep(event.get("sleep_ms", 0) / 1000)
    return {"init": INIT, "stream": context.log_stream_name, "count": COUNT}
"""


def _deploy(lam, kinds) -> tuple[str, str]:
    name = k.create_function(lam, kinds["python"], zip_bytes=k.make_zip({"app.py": APP}),
                             Handler="app.handler", MemorySize=128)
    return name, k.publish(lam, name)


def _wait_ready(lam, name: str, qualifier: str, allocated: int, timeout: float = 60) -> dict:
    def ready():
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert cfg["Status"] != "FAILED", cfg
        ok = (cfg["Status"] == "READY"
              and cfg["AllocatedProvisionedConcurrentExecutions"] == allocated
              and cfg["AvailableProvisionedConcurrentExecutions"] == allocated)
        return cfg if ok else None

    return k.wait_for(ready, timeout=timeout, what=f"{name}:{qualifier} READY with {allocated}")


def _invoke(lam, name: str, qualifier: str | None, sleep_ms: int = 0) -> tuple[dict, k.Report]:
    inv = k.invoke(lam, name, {"sleep_ms": sleep_ms}, qualifier=qualifier, tail=True)
    return inv.ok(), k.report_for(inv.log, inv.request_id)


def _concurrently(lam, name: str, qualifier: str, n: int, sleep_ms: int):
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: _invoke(lam, name, qualifier, sleep_ms), range(n)))


def test_provisioned_environments_serve_first_and_spill_over(lam, kinds):
    name, version = _deploy(lam, kinds)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert put["Status"] == "IN_PROGRESS"
    _wait_ready(lam, name, "live", 2)

    # Through the alias and through its version: a provisioned environment, no Init Duration.
    for qualifier in ("live", version):
        body, report = _invoke(lam, name, qualifier)
        assert body["init"] == "provisioned-concurrency", body
        assert report.init_duration is None, report.line
    # $LATEST is not provisioned: an on-demand cold start, with its Init Duration.
    body, report = _invoke(lam, name, None)
    assert body["init"] == "on-demand", body
    assert report.init_duration is not None, report.line

    # Three at once on two provisioned environments: the third spills over to on-demand.
    results = _concurrently(lam, name, "live", 3, sleep_ms=1500)
    kinds_seen = sorted(b["init"] for b, _ in results)
    assert kinds_seen == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"], results
    for body, report in results:
        if body["init"] == "on-demand":
            assert report.init_duration is not None, report.line
        else:
            assert report.init_duration is None, report.line
    provisioned = {b["stream"] for b, _ in results if b["init"] == "provisioned-concurrency"}
    assert len(provisioned) == 2

    # A provisioned environment that dies is replaced; invocations keep landing on
    # provisioned environments.
    victim = sorted(provisioned)[0]
    pids = k.processes_with(victim)
    assert pids, f"no process of {victim}"
    k.kill_pids(pids)
    k.wait_for(lambda: not k.processes_with(victim), what=f"{victim} to be gone")

    def replaced():
        res = _concurrently(lam, name, "live", 2, sleep_ms=300)
        streams = {b["stream"] for b, _ in res}
        ok = (all(b["init"] == "provisioned-concurrency" for b, _ in res)
              and victim not in streams and len(streams) == 2)
        return streams if ok else None

    streams = k.wait_for(replaced, timeout=60, interval=0.2, what="a replacement environment")
    _wait_ready(lam, name, "live", 2)

    # Deleting the configuration releases its environments; the alias runs on demand.
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    for stream in streams:
        k.wait_for(lambda s=stream: not k.processes_with(s), timeout=30,
                   what=f"provisioned environment {stream} to be shut down")
    body, _ = _invoke(lam, name, "live")
    assert body["init"] == "on-demand", body
    lam.delete_function(FunctionName=name)


def test_an_alias_moved_takes_its_provisioned_concurrency_along(lam, kinds):
    name, v1 = _deploy(lam, kinds)
    lam.update_function_configuration(FunctionName=name, Description="second")
    k.wait_active(lam, name)
    v2 = k.publish(lam, name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, "live", 1)
    old = _invoke(lam, name, v1)[0]["stream"]
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    k.wait_for(lambda: not k.processes_with(old), timeout=30, what="v1's environment to end")
    _wait_ready(lam, name, "live", 1)
    body, report = _invoke(lam, name, "live")
    assert body["init"] == "provisioned-concurrency" and f"[{v2}]" in body["stream"], body
    assert report.init_duration is None
    assert _invoke(lam, name, v1)[0]["init"] == "on-demand"
    lam.delete_function(FunctionName=name)
    k.wait_for(lambda: not k.processes_with(body["stream"]), timeout=30,
               what="the deleted function's provisioned environment to end")


def test_the_configuration_survives_a_restart(server_factory, kindling_binary, kinds, tmp_path):
    srv = server_factory("--idle-timeout", "600")
    lam = k.make_client(srv.url)
    name, version = _deploy(lam, kinds)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, version, 1)
    assert srv.stop() == 0

    again = k.KindlingServer(kindling_binary, srv.data_dir, tmp_path / "again.log", srv.args)
    again.start()
    try:
        lam = k.make_client(again.url)
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        assert cfg["RequestedProvisionedConcurrentExecutions"] == 1
        assert cfg["Status"] in ("IN_PROGRESS", "READY"), cfg
        _wait_ready(lam, name, version, 1)
        body, report = _invoke(lam, name, version)
        assert body["init"] == "provisioned-concurrency", body
        assert report.init_duration is None, report.line
        assert again.stop() == 0
    finally:
        again.kill()
