"""What one node writes, every node serves: functions, code, versions, aliases and layers live
in PostgreSQL, and a write that returned has already dropped every node's caches (no polling:
the very next call on any node sees it)."""

from __future__ import annotations

import hashlib
import json

import support

from conftest import psql


def invoke(lam, name: str, qualifier: str | None = None, payload: dict | None = None) -> dict:
    kwargs = {"FunctionName": name, "Payload": json.dumps(payload or {}).encode()}
    if qualifier is not None:
        kwargs["Qualifier"] = qualifier
    resp = lam.invoke(**kwargs)
    body = resp["Payload"].read()
    assert resp["StatusCode"] == 200, body
    assert "FunctionError" not in resp, body
    return json.loads(body)


def markers(clients, name: str, qualifier: str | None = None) -> list[str]:
    return [invoke(c, name, qualifier)["marker"] for c in clients]


def test_a_function_created_on_one_node_runs_on_every_node(clients):
    a, b, c = clients
    fn = support.create_function(a, zip_bytes=support.make_zip(marker="one"))
    # The other nodes know it at once (no polling) and run its code, fetched from PostgreSQL.
    assert b.get_function(FunctionName=fn.name)["Configuration"]["CodeSha256"] == \
        fn.resp["CodeSha256"]
    assert invoke(b, fn.name, payload={"k": 1}) == {"marker": "one", "event": {"k": 1}}
    assert invoke(c, fn.name)["marker"] == "one"
    names = [f["FunctionName"] for f in support.list_all(c, "list_functions", "Functions")]
    assert fn.name in names


def test_an_update_on_one_node_is_served_by_every_node_as_soon_as_it_returns(clients):
    a, b, c = clients
    fn = support.create_function(a, zip_bytes=support.make_zip(marker="v0"))
    # Every node has the function cached (warm) before the updates.
    assert markers(clients, fn.name) == ["v0"] * 3
    for round_ in range(1, 4):
        writer = clients[round_ % 3]
        writer.update_function_code(FunctionName=fn.name,
                                    ZipFile=support.make_zip(marker=f"v{round_}"))
        # No wait, no retry: the call after the update's response sees the new code everywhere.
        assert markers(clients, fn.name) == [f"v{round_}"] * 3, f"round {round_}"
    # Configuration too: an environment variable set through C is what A's next call reads.
    c.update_function_configuration(FunctionName=fn.name, Handler="gone.handler")
    resp = a.invoke(FunctionName=fn.name, Payload=b"{}")
    assert resp.get("FunctionError"), "A still ran the old handler after the update returned"
    support.wait_active(b, fn.name)


def test_concurrent_updates_through_different_nodes_are_compare_and_swap(clients):
    a, b, c = clients
    fn = support.create_function(a)
    rev = a.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    b.update_function_configuration(FunctionName=fn.name, Description="from b", RevisionId=rev)
    support.wait_active(b, fn.name)
    # C still holds the old revision id: refused, as on one node.
    with support.expect_error("PreconditionFailedException", 412):
        c.update_function_configuration(FunctionName=fn.name, Description="from c",
                                        RevisionId=rev)
    assert a.get_function_configuration(FunctionName=fn.name)["Description"] == "from b"


def test_versions_and_aliases_made_on_different_nodes_route_everywhere(clients):
    a, b, c = clients
    fn = support.create_function(a, zip_bytes=support.make_zip(marker="first"))
    v1 = support.publish(a, fn.name)["Version"]
    b.update_function_code(FunctionName=fn.name, ZipFile=support.make_zip(marker="second"))
    support.wait_active(b, fn.name)
    v2 = support.publish(b, fn.name)["Version"]
    assert (v1, v2) == ("1", "2")
    c.create_alias(FunctionName=fn.name, Name="live", FunctionVersion=v1)
    assert markers(clients, fn.name, "live") == ["first"] * 3
    a.update_alias(FunctionName=fn.name, Name="live", FunctionVersion=v2)
    assert markers(clients, fn.name, "live") == ["second"] * 3
    assert markers(clients, fn.name, "1") == ["first"] * 3
    b.delete_function(FunctionName=fn.name)
    for lam in clients:
        with support.expect_error("ResourceNotFoundException", 404):
            lam.invoke(FunctionName=fn.name, Payload=b"{}")


def test_a_layer_published_on_one_node_is_used_by_functions_on_others(clients):
    a, b, c = clients
    layer_zip = support.make_zip({"python/cluster_helper.py": "VALUE = 'from the layer'\n"})
    name = support.unique("layer")
    layer = a.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip},
                                    CompatibleRuntimes=[support.RUNTIME])
    code = support.make_zip({"lambda_function.py": (
        "import cluster_helper\n"
        "def handler(event, context):\n"
        "    return {'marker': cluster_helper.VALUE}\n")})
    fn = support.create_function(b, zip_bytes=code, Layers=[layer["LayerVersionArn"]])
    assert markers(clients, fn.name) == ["from the layer"] * 3


def test_code_is_stored_once_in_postgresql_by_its_sha256(clients, database):
    a, _, _ = clients
    body = support.make_zip(marker=support.unique("blob"))
    fn = support.create_function(a, zip_bytes=body)
    digest = hashlib.sha256(body).hexdigest()
    size = psql(f"SELECT size FROM code_blobs WHERE id = '{digest}'", database)
    assert size == str(len(body)), fn.name
