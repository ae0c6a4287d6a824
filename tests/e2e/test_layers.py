"""Layers: code from layers under /opt is found by the runtimes (module paths, /opt/bootstrap)."""

from __future__ import annotations

import pytest

import kindling_e2e as k


def _layer(lam, files: dict) -> str:
    resp = lam.publish_layer_version(LayerName=k.unique("e2e-layer"),
                                     Content={"ZipFile": k.make_zip(files)})
    return resp["LayerVersionArn"]


@pytest.mark.runtimes("python", "node")
def test_dependency_from_layers_later_layer_wins(lam, kind):
    if kind.key == "python":
        path = "python/e2e_layer_mod.py"
        first, second = "VALUE = 'first'\n", "VALUE = 'second'\n"
        expected_dir = "/opt/python/"
    else:
        path = "nodejs/node_modules/e2e-layer-mod/index.js"
        first, second = "module.exports = { VALUE: 'first' };\n", "module.exports = { VALUE: 'second' };\n"
        expected_dir = "/opt/nodejs/node_modules/"
    a = _layer(lam, {path: first})
    b = _layer(lam, {path: second})
    name = k.create_function(lam, kind, Handler="layered.handler", Layers=[a, b])
    out = k.invoke(lam, name, {}).ok()
    assert out["value"] == "second", f"later layer should overwrite the earlier one: {out}"
    if k.expected_isolation_is_namespaces():
        assert out["file"].startswith(expected_dir), out["file"]


@pytest.mark.runtimes("rust")
def test_custom_runtime_bootstrap_from_layer(lam, kind, fixtures):
    layer = _layer(lam, {"bootstrap": (fixtures.rust_binary().read_bytes(), 0o755)})
    name = k.create_function(lam, kind, zip_bytes=k.make_zip({"marker.txt": "code-only"}),
                             Layers=[layer])
    info = k.invoke(lam, name, {"info": True}).ok()
    assert info["runtime"] == "rust" and info["marker"] == "code-only", info
