"""Provisioned concurrency end to end: environments initialized ahead with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency serve a version's (and its alias's)
invocations first, with no Init Duration in their REPORT lines; invocations beyond them spill
over to on-demand environments; a provisioned environment that dies is replaced; deleting the
configuration releases them; and the configuration survives a restart. Lambda's provisioned
concurrency metrics on /metrics (parsed with the Prometheus client library's parser) count
what happened."""

from __future__ import annotations

import concurrent.futures as cf
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import kindling_e2e as k

# Reports how its environment was initialized.
APP = """import os, time

INIT = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")
COUNT = 0
time.sleep(float(os.environ.get("INIT_SLEEP", "0")))

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


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _pc_metric(samples, metric: str, labels: dict) -> float | None:
    return samples.get((f"kindling_lambda_provisioned_{metric}", tuple(sorted(labels.items()))))


def test_provisioned_environments_serve_first_and_spill_over(lam, kinds, server):
    name, version = _deploy(lam, kinds)
    labels = {"function": name, "resource": f"{name}:live", "executed_version": version}
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

    # Two invocations served by provisioned environments, none busy now.
    samples = _scrape(server.url)
    assert _pc_metric(samples, "concurrency_invocations_total", labels) == 2, samples
    assert _pc_metric(samples, "concurrency_spillover_invocations_total", labels) == 0
    assert _pc_metric(samples, "concurrent_executions", labels) == 0
    assert _pc_metric(samples, "concurrency_utilization", labels) == 0

    # Three at once on two provisioned environments: the third spills over to on-demand.
    # While they run, both provisioned environments are busy: utilization 1.
    with cf.ThreadPoolExecutor(max_workers=3) as pool:
        running = [pool.submit(_invoke, lam, name, "live", 2500) for _ in range(3)]

        def both_busy():
            s = _scrape(server.url)
            return (_pc_metric(s, "concurrent_executions", labels) == 2
                    and _pc_metric(s, "concurrency_utilization", labels) == 1.0) or None

        k.wait_for(both_busy, timeout=20, interval=0.1, what="2 busy provisioned environments")
        results = [f.result() for f in running]
    samples = _scrape(server.url)
    assert _pc_metric(samples, "concurrency_invocations_total", labels) == 4, samples
    assert _pc_metric(samples, "concurrency_spillover_invocations_total", labels) == 1
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
    # The released configuration's gauges are gone; its counters stay (not a spill-over now).
    samples = _scrape(server.url)
    assert _pc_metric(samples, "concurrent_executions", labels) is None
    assert _pc_metric(samples, "concurrency_utilization", labels) is None
    assert _pc_metric(samples, "concurrency_invocations_total", labels) >= 4
    lam.delete_function(FunctionName=name)


def test_an_alias_moved_takes_its_provisioned_concurrency_along(lam, kinds):
    name, v1 = _deploy(lam, kinds)
    # v2's Init takes 2 s: the moved configuration is IN_PROGRESS meanwhile.
    lam.update_function_configuration(FunctionName=name, Description="second",
                                      Environment={"Variables": {"INIT_SLEEP": "2"}})
    k.wait_active(lam, name)
    v2 = k.publish(lam, name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, "live", 1)
    old = _invoke(lam, name, v1)[0]["stream"]
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    moving = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert moving["Status"] == "IN_PROGRESS", moving
    assert moving["AllocatedProvisionedConcurrentExecutions"] == 0, moving
    k.wait_for(lambda: not k.processes_with(old), timeout=30, what="v1's environment to end")
    _wait_ready(lam, name, "live", 1)
    body, report = _invoke(lam, name, "live")
    assert body["init"] == "provisioned-concurrency" and f"[{v2}]" in body["stream"], body
    assert report.init_duration is None
    assert _invoke(lam, name, v1)[0]["init"] == "on-demand"
    lam.delete_function(FunctionName=name)
    k.wait_for(lambda: not k.processes_with(body["stream"]), timeout=30,
               what="the deleted function's provisioned environment to end")


def test_deleting_an_alias_or_a_version_deletes_its_configuration(lam, kinds):
    name, v1 = _deploy(lam, kinds)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, "live", 1)
    on_alias = _invoke(lam, name, "live")[0]["stream"]
    lam.delete_alias(FunctionName=name, Name="live")
    k.wait_for(lambda: not k.processes_with(on_alias), timeout=30,
               what="the deleted alias's provisioned environment to end")
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    # The version's own configuration goes with the version.
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=v1, ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, v1, 1)
    on_version = _invoke(lam, name, v1)[0]["stream"]
    lam.delete_function(FunctionName=name, Qualifier=v1)
    k.wait_for(lambda: not k.processes_with(on_version), timeout=30,
               what="the deleted version's provisioned environment to end")
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    lam.delete_function(FunctionName=name)


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


def test_provisioned_environments_take_the_place_of_idle_on_demand_ones(server_factory, kinds):
    # A node that keeps 2 environments, both taken by idle on-demand ones: provisioned
    # concurrency is capacity guaranteed to its version, so the idle ones make room for it.
    srv = server_factory("--idle-timeout", "600", "--max-environments", "2")
    lam = k.make_client(srv.url)
    others = [_deploy(lam, kinds)[0] for _ in range(2)]
    streams = [_invoke(lam, other, None)[0]["stream"] for other in others]
    name, version = _deploy(lam, kinds)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
    _wait_ready(lam, name, version, 2)
    k.wait_for(lambda: not any(k.processes_with(s) for s in streams), timeout=30,
               what="the idle on-demand environments to end")
    assert "retired to make room" in srv.log_tail(400)
    body, report = _invoke(lam, name, version)
    assert body["init"] == "provisioned-concurrency" and report.init_duration is None, body


def test_provisioned_concurrency_beyond_the_node_limit_fails_with_a_reason(server_factory, kinds):
    srv = server_factory("--idle-timeout", "600", "--max-environments", "2")
    lam = k.make_client(srv.url)
    name, version = _deploy(lam, kinds)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=3)

    def failed():
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        return cfg if cfg["Status"] == "FAILED" else None

    cfg = k.wait_for(failed, timeout=60, what="the configuration to fail")
    assert cfg["StatusReason"].startswith("INSUFFICIENT_CAPACITY"), cfg
    assert "--max-environments" in cfg["StatusReason"], cfg
    assert cfg["AllocatedProvisionedConcurrentExecutions"] <= 2, cfg
    # The configuration's environments never push the node past its limit, and a smaller
    # Put starts it over.
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
    _wait_ready(lam, name, version, 2)
