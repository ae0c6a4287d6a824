"""A realistic `aws lambda ...` walkthrough with the real aws CLI (v1) against Kindling."""

from __future__ import annotations

import json

from support import (
    ROLE,
    b64sha256,
    download,
    function_arn,
    layer_arn,
    make_zip,
    unique,
)


def test_cli_walkthrough(cli, tmp_path):
    name = unique("cli")
    zip1 = make_zip(marker=name + "-1")
    zip2 = make_zip(marker=name + "-2")
    (tmp_path / "fn.zip").write_bytes(zip1)
    (tmp_path / "fn2.zip").write_bytes(zip2)

    created = cli.ok("create-function", "--function-name", name, "--runtime", "python3.12",
                     "--role", ROLE, "--handler", "lambda_function.handler",
                     "--zip-file", f"fileb://{tmp_path / 'fn.zip'}",
                     "--environment", "Variables={STAGE=dev,COLOR=blue}",
                     "--tags", "team=cli,env=test", "--timeout", "15", "--memory-size", "256")
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == function_arn(name)
    assert created["CodeSha256"] == b64sha256(zip1)
    assert created["CodeSize"] == len(zip1)
    assert created["Timeout"] == 15
    assert created["MemorySize"] == 256
    assert created["Environment"] == {"Variables": {"STAGE": "dev", "COLOR": "blue"}}

    res = cli("wait", "function-active-v2", "--function-name", name)
    assert res.rc == 0, res.stderr

    listed = cli.ok("list-functions")
    assert name in [f["FunctionName"] for f in listed["Functions"]]

    got = cli.ok("get-function", "--function-name", name)
    assert got["Configuration"]["State"] == "Active"
    assert got["Tags"] == {"team": "cli", "env": "test"}
    assert download(got["Code"]["Location"]) == zip1

    v1 = cli.ok("publish-version", "--function-name", name, "--description", "first")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == function_arn(name, "1")

    updated = cli.ok("update-function-code", "--function-name", name,
                     "--zip-file", f"fileb://{tmp_path / 'fn2.zip'}")
    assert updated["CodeSha256"] == b64sha256(zip2)
    res = cli("wait", "function-updated-v2", "--function-name", name)
    assert res.rc == 0, res.stderr

    v2 = cli.ok("publish-version", "--function-name", name)
    assert v2["Version"] == "2"
    assert v2["CodeSha256"] == b64sha256(zip2)

    versions = cli.ok("list-versions-by-function", "--function-name", name)
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]

    alias = cli.ok("create-alias", "--function-name", name, "--name", "live",
                   "--function-version", "1", "--description", "production")
    assert alias["AliasArn"] == function_arn(name, "live")
    assert alias["FunctionVersion"] == "1"

    # In a shell one types AdditionalVersionWeights={"2"=0.5}; the shell removes the quotes.
    routed = cli.ok("update-alias", "--function-name", name, "--name", "live",
                    "--routing-config", "AdditionalVersionWeights={2=0.5}")
    assert routed["FunctionVersion"] == "1"
    assert routed["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}

    got_alias = cli.ok("get-alias", "--function-name", name, "--name", "live")
    assert got_alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert got_alias["Description"] == "production"

    aliases = cli.ok("list-aliases", "--function-name", name)
    assert [a["Name"] for a in aliases["Aliases"]] == ["live"]

    cfg = cli.ok("update-function-configuration", "--function-name", name,
                 "--description", "via cli", "--timeout", "30")
    assert cfg["Description"] == "via cli"
    assert cfg["Timeout"] == 30
    res = cli("wait", "function-updated", "--function-name", name)
    assert res.rc == 0, res.stderr

    stmt = cli.ok("add-permission", "--function-name", name, "--statement-id", "s3",
                  "--action", "lambda:InvokeFunction", "--principal", "s3.amazonaws.com",
                  "--source-arn", "arn:aws:s3:::bucket")
    assert json.loads(stmt["Statement"])["Sid"] == "s3"
    policy = cli.ok("get-policy", "--function-name", name)
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["s3"]

    assert cli("tag-resource", "--resource", function_arn(name), "--tags", "extra=1").rc == 0
    tags = cli.ok("list-tags", "--resource", function_arn(name))
    assert tags["Tags"] == {"team": "cli", "env": "test", "extra": "1"}

    conc = cli.ok("put-function-concurrency", "--function-name", name,
                  "--reserved-concurrent-executions", "5")
    assert conc["ReservedConcurrentExecutions"] == 5
    assert cli("delete-function-concurrency", "--function-name", name).rc == 0

    settings = cli.ok("get-account-settings")
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000

    res = cli("delete-function", "--function-name", name)
    assert res.rc == 0, res.stderr

    gone = cli("get-function", "--function-name", name)
    assert gone.rc in (254, 255), (gone.rc, gone.stderr)
    assert "ResourceNotFoundException" in gone.stderr
    assert function_arn(name) in gone.stderr


def test_cli_layers(cli, tmp_path):
    name = unique("clilayer")
    (tmp_path / "layer.zip").write_bytes(make_zip({"python/helper.py": "X = 1\n"}))
    layer = cli.ok("publish-layer-version", "--layer-name", name,
                   "--zip-file", f"fileb://{tmp_path / 'layer.zip'}",
                   "--compatible-runtimes", "python3.12", "python3.13")
    assert layer["LayerVersionArn"] == layer_arn(name, 1)
    assert layer["CompatibleRuntimes"] == ["python3.12", "python3.13"]
    versions = cli.ok("list-layer-versions", "--layer-name", name)
    assert [v["Version"] for v in versions["LayerVersions"]] == [1]
    layers = cli.ok("list-layers", "--compatible-runtime", "python3.13")
    assert name in [l["LayerName"] for l in layers["Layers"]]
    got = cli.ok("get-layer-version-by-arn", "--arn", layer_arn(name, 1))
    assert got["Version"] == 1
    assert cli("delete-layer-version", "--layer-name", name, "--version-number", "1").rc == 0


def test_cli_error_duplicate_create(cli, tmp_path):
    name = unique("clidup")
    (tmp_path / "fn.zip").write_bytes(make_zip(marker=name))
    args = ("create-function", "--function-name", name, "--runtime", "python3.12",
            "--role", ROLE, "--handler", "lambda_function.handler",
            "--zip-file", f"fileb://{tmp_path / 'fn.zip'}")
    cli.ok(*args)
    dup = cli(*args)
    assert dup.rc in (254, 255), (dup.rc, dup.stderr)
    assert "ResourceConflictException" in dup.stderr
    assert f"Function already exist: {name}" in dup.stderr


def test_cli_error_validation(cli, tmp_path):
    name = unique("clival")
    (tmp_path / "fn.zip").write_bytes(make_zip(marker=name))
    res = cli("create-function", "--function-name", name, "--runtime", "python3.12",
              "--role", ROLE, "--handler", "lambda_function.handler", "--timeout", "1000",
              "--zip-file", f"fileb://{tmp_path / 'fn.zip'}")
    assert res.rc in (254, 255), (res.rc, res.stderr)
    assert "InvalidParameterValueException" in res.stderr
