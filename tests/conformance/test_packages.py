"""Deployment packages: every archive that cannot be unpacked safely is refused at upload
(CreateFunction, UpdateFunctionCode, PublishLayerVersion) with InvalidParameterValueException and
Lambda's message, and changes nothing; unusual but legal archives are accepted and run."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import pytest

import zips
from support import (
    ROLE,
    b64sha256,
    create_function,
    expect_error,
    strip_meta,
    unique,
    wait_active,
)

CANNOT_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
HOSTILE = zips.hostile()
MAX_ENTRIES = 100_000


def _create(lam, name, zip_bytes):
    return lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                               Handler="app.handler", Code={"ZipFile": zip_bytes})


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_create_function_refuses(lam, case):
    name = unique("hostile")
    with expect_error("InvalidParameterValueException", 400, message_contains=CANNOT_UNZIP):
        _create(lam, name, HOSTILE[case])
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


@pytest.fixture(scope="module")
def target(lam):
    """One function whose code every refused update must leave alone."""
    return create_function(lam)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_update_function_code_refuses(lam, target, case):
    before = strip_meta(lam.get_function_configuration(FunctionName=target.name))
    with expect_error("InvalidParameterValueException", 400, message_contains=CANNOT_UNZIP):
        lam.update_function_code(FunctionName=target.name, ZipFile=HOSTILE[case])
    with expect_error("InvalidParameterValueException", 400, message_contains=CANNOT_UNZIP):
        lam.update_function_code(FunctionName=target.name, ZipFile=HOSTILE[case], DryRun=True)
    after = strip_meta(lam.get_function_configuration(FunctionName=target.name))
    assert after == before
    assert after["CodeSha256"] == b64sha256(target.zip)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_publish_layer_version_refuses(lam, case):
    layer = unique("hostile-layer")
    with expect_error("InvalidParameterValueException", 400, message_contains=CANNOT_UNZIP):
        lam.publish_layer_version(LayerName=layer, Content={"ZipFile": HOSTILE[case]})
    assert lam.list_layer_versions(LayerName=layer)["LayerVersions"] == []


@pytest.mark.slow
def test_too_many_entries(lam):
    entries = [zips.file(f"f{i}", b"", method=0) for i in range(MAX_ENTRIES + 1)]
    data = zips.build(entries)
    with expect_error("InvalidParameterValueException", 400,
                      message_contains=(CANNOT_UNZIP, f"more than {MAX_ENTRIES} entries")):
        _create(lam, unique("many"), data)
    # At the limit it is accepted (as a layer: a function's code would also be unpacked in
    # the background, 100 000 files, for no use here).
    layer = unique("many")
    lam.publish_layer_version(LayerName=layer, Content={"ZipFile": zips.build(entries[:MAX_ENTRIES])})
    lam.delete_layer_version(LayerName=layer, VersionNumber=1)


LEGAL_APP = r'''
import os

def handler(event, context):
    deep = "/".join(f"d{i}" for i in range(30))
    with open(os.path.join(deep, "leaf.txt")) as f:
        leaf = f.read()
    with open("données/日本語/ünïcödé.txt", encoding="utf-8") as f:
        unicode_text = f.read()
    with open("link-to-data") as f:
        via_link = f.read()
    return {
        "leaf": leaf,
        "unicode": unicode_text,
        "via_link": via_link,
        "link": os.readlink("link-to-data"),
        "empty_dir": os.path.isdir("empty") and os.listdir("empty") == [],
        "tool_mode": oct(os.stat("bin/tool").st_mode & 0o7777),
        "layer": open("/opt/python/layer_data.txt").read(),
        "layer_link": open("/opt/current").read(),
    }
'''


def _unix_zip(files: dict[str, tuple[int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (mode, content) in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_STORED if stat.S_ISDIR(mode) else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def test_unusual_but_legal_packages_are_accepted_and_run(lam):
    deep = "/".join(f"d{i}" for i in range(30))
    code = _unix_zip({
        "app.py": (0o100644, LEGAL_APP.encode()),
        "empty/": (0o040755, b""),
        f"{deep}/leaf.txt": (0o100644, b"deep"),
        "données/日本語/ünïcödé.txt": (0o100644, "unicode ✓".encode()),
        "data.txt": (0o100600, b"through the link"),
        "link-to-data": (0o120777, b"data.txt"),
        # Accepted, and unpacked without its setuid bit.
        "bin/tool": (0o104755, b"#!/bin/sh\necho tool\n"),
    })
    layer = lam.publish_layer_version(
        LayerName=unique("legal-layer"),
        Content={"ZipFile": _unix_zip({
            "python/layer_data.txt": (0o100644, b"from the layer"),
            "versions/1/data.txt": (0o100644, b"version one"),
            "current": (0o120777, b"versions/1/data.txt"),
        })})
    assert layer["Content"]["CodeSize"] > 0
    name = unique("legal")
    resp = lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                               Handler="app.handler", Code={"ZipFile": code},
                               Layers=[layer["LayerVersionArn"]])
    assert resp["CodeSha256"] == b64sha256(code)
    wait_active(lam, name)
    out = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    assert body == {
        "leaf": "deep",
        "unicode": "unicode ✓",
        "via_link": "through the link",
        "link": "data.txt",
        "empty_dir": True,
        "tool_mode": "0o755",
        "layer": "from the layer",
        "layer_link": "version one",
    }
    lam.delete_function(FunctionName=name)
