"""Durability: state written by one server process is served unchanged by the next one started
on the same data directory; shutdown on SIGTERM is clean."""

from __future__ import annotations

import json

from support import (
    RESPONSES,
    b64sha256,
    check_recorded_responses,
    create_function,
    download,
    expect_error,
    layer_arn,
    list_all,
    make_client,
    make_zip,
    publish,
    strip_meta,
    unique,
    update_code,
    update_config,
    version_numbers,
)


def _snapshot(lam, names, layer):
    """Everything observable about the created resources (code as downloaded bytes)."""
    snap = {"functions": {}, "layers": {}}
    for name in names:
        versions = version_numbers(lam, name)
        entry = {"versions": versions, "configs": {}, "code": {}}
        for v in versions:
            got = lam.get_function(FunctionName=name, Qualifier=v)
            entry["configs"][v] = got["Configuration"]
            entry["code"][v] = b64sha256(download(got["Code"]["Location"]))
            entry.setdefault("concurrency", got.get("Concurrency"))
        entry["aliases"] = sorted(
            (strip_meta(a) for a in list_all(lam, "list_aliases", "Aliases", FunctionName=name)),
            key=lambda a: a["Name"])
        entry["tags"] = lam.list_tags(
            Resource=entry["configs"]["$LATEST"]["FunctionArn"].removesuffix(":$LATEST"))["Tags"]
        try:
            entry["policy"] = json.loads(lam.get_policy(FunctionName=name)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            entry["policy"] = None
        try:
            entry["alias_policy"] = json.loads(
                lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            entry["alias_policy"] = None
        snap["functions"][name] = entry
    versions = list_all(lam, "list_layer_versions", "LayerVersions", LayerName=layer)
    snap["layers"]["versions"] = versions
    for v in versions:
        got = lam.get_layer_version(LayerName=layer, VersionNumber=v["Version"])
        content = dict(got["Content"])
        content["Location"] = b64sha256(download(content["Location"]))
        snap["layers"][v["Version"]] = {**strip_meta(got), "Content": content}
    snap["account"] = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    snap["listing"] = sorted(
        (f["FunctionName"], f["Version"])
        for f in list_all(lam, "list_functions", "Functions", FunctionVersion="ALL")
    )
    return snap


def test_state_survives_restart(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    first = server_factory(data_dir)
    lam = make_client(first.url)

    layer = unique("rlayer")
    lam.publish_layer_version(LayerName=layer, Content={"ZipFile": make_zip({"a.txt": "1"})},
                              CompatibleRuntimes=["python3.12"], Description="l1")
    lam.publish_layer_version(LayerName=layer, Content={"ZipFile": make_zip({"a.txt": "2"})},
                              Description="l2")

    main = create_function(lam, Description="main", Tags={"durable": "yes", "k": "v"},
                           Environment={"Variables": {"ONE": "1"}},
                           Layers=[layer_arn(layer, 1)])
    publish(lam, main.name)
    update_code(lam, main.name, make_zip(marker=main.name + "-2"))
    update_config(lam, main.name, Description="main v2", Layers=[layer_arn(layer, 2)])
    publish(lam, main.name)
    lam.create_alias(FunctionName=main.name, Name="live", FunctionVersion="1",
                     Description="weighted",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    lam.create_alias(FunctionName=main.name, Name="dev", FunctionVersion="$LATEST")
    lam.add_permission(FunctionName=main.name, StatementId="s3",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                       SourceArn="arn:aws:s3:::bucket")
    lam.add_permission(FunctionName=main.name, Qualifier="live", StatementId="acct",
                       Action="lambda:InvokeFunction", Principal="111122223333")
    lam.put_function_concurrency(FunctionName=main.name, ReservedConcurrentExecutions=12)

    other = create_function(lam)
    doomed = create_function(lam)
    lam.delete_function(FunctionName=doomed.name)

    before = _snapshot(lam, [main.name, other.name], layer)
    assert before["functions"][main.name]["versions"] == ["$LATEST", "1", "2"]

    rc = first.stop()
    assert rc == 0, f"first server exited with {rc}:\n{first.log_tail()}"

    second = server_factory(data_dir)
    lam2 = make_client(second.url)
    after = _snapshot(lam2, [main.name, other.name], layer)
    assert after == before

    with expect_error("ResourceNotFoundException", 404):
        lam2.get_function(FunctionName=doomed.name)

    # Counters continue where they stopped.
    update_config(lam2, main.name, Description="main v3")
    assert publish(lam2, main.name)["Version"] == "3"
    assert lam2.publish_layer_version(
        LayerName=layer, Content={"ZipFile": make_zip({"a.txt": "3"})})["Version"] == 3
    # The restored server still enforces its rules.
    with expect_error("ResourceConflictException", 409):
        lam2.create_function(FunctionName=main.name, Runtime="python3.12",
                             Role=before["functions"][main.name]["configs"]["$LATEST"]["Role"],
                             Handler="a.b", Code={"ZipFile": make_zip()})

    rc = second.stop()
    assert rc == 0, f"second server exited with {rc}:\n{second.log_tail()}"
    problems = check_recorded_responses(RESPONSES)
    assert not problems, problems


def test_sigterm_is_a_clean_shutdown(server_factory, tmp_path):
    srv = server_factory(tmp_path / "data")
    lam = make_client(srv.url)
    create_function(lam)
    rc = srv.stop(timeout=10)
    assert rc == 0, f"exit status {rc} after SIGTERM:\n{srv.log_tail()}"


def test_restart_of_an_empty_data_dir(server_factory, tmp_path):
    srv = server_factory(tmp_path / "data")
    assert srv.stop() == 0
    srv2 = server_factory(tmp_path / "data")
    lam = make_client(srv2.url)
    assert [f for f in lam.list_functions()["Functions"]] == []
    assert srv2.stop() == 0
