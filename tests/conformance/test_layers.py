"""PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions,
DeleteLayerVersion, and functions that reference layers."""

from __future__ import annotations

import pytest

from support import (
    assert_recent,
    b64sha256,
    create_function,
    download,
    expect_error,
    function_arn,
    layer_arn,
    list_all,
    make_zip,
    strip_meta,
    unique,
    update_config,
)

LAYER_KEYS = ("Content", "LayerArn", "LayerVersionArn", "Description", "CreatedDate", "Version",
              "CompatibleRuntimes", "LicenseInfo", "CompatibleArchitectures")


def layer_zip(tag: str) -> bytes:
    return make_zip({f"python/{tag}.py": f"VALUE = {tag!r}\n"})


def publish_layer(lam, name: str, tag: str | None = None, **kwargs):
    z = layer_zip(tag or name)
    resp = lam.publish_layer_version(LayerName=name, Content={"ZipFile": z}, **kwargs)
    return resp, z


def test_publish_layer_version(lam):
    name = unique("layer")
    resp, z = publish_layer(
        lam, name, Description="shared helpers", CompatibleRuntimes=["python3.12", "python3.13"],
        CompatibleArchitectures=["x86_64", "arm64"], LicenseInfo="MIT",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["LayerArn"] == layer_arn(name)
    assert resp["LayerVersionArn"] == layer_arn(name, 1)
    assert resp["Version"] == 1
    assert resp["Description"] == "shared helpers"
    assert resp["CompatibleRuntimes"] == ["python3.12", "python3.13"]
    assert resp["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert resp["LicenseInfo"] == "MIT"
    assert_recent(resp["CreatedDate"])
    assert resp["Content"]["CodeSha256"] == b64sha256(z)
    assert resp["Content"]["CodeSize"] == len(z)
    assert download(resp["Content"]["Location"]) == z


def test_layer_versions_increment(lam):
    name = unique("layer")
    first, _ = publish_layer(lam, name, "a")
    second, z2 = publish_layer(lam, name, "b")
    assert (first["Version"], second["Version"]) == (1, 2)
    assert second["LayerVersionArn"] == layer_arn(name, 2)
    assert second["Content"]["CodeSha256"] == b64sha256(z2)


def test_get_layer_version_and_by_arn(lam):
    name = unique("layer")
    published, z = publish_layer(lam, name, Description="d", CompatibleRuntimes=["nodejs20.x"])
    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    by_arn = lam.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    via_layer_arn = lam.get_layer_version(LayerName=layer_arn(name), VersionNumber=1)
    for resp in (got, by_arn, via_layer_arn):
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        for key in LAYER_KEYS:
            if key == "Content":
                continue
            assert resp.get(key) == published.get(key), key
        assert resp["Content"]["CodeSha256"] == b64sha256(z)
        assert resp["Content"]["CodeSize"] == len(z)
        assert download(resp["Content"]["Location"]) == z


def test_get_missing_layer_version(lam):
    name = unique("nolayer")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_layer_version(LayerName=name, VersionNumber=1)
    publish_layer(lam, name)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_layer_version(LayerName=name, VersionNumber=2)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_layer_version_by_arn(Arn=layer_arn(name, 7))


@pytest.mark.parametrize("number", [0, -1])
def test_layer_version_number_below_one(lam, number):
    name = unique("layer")
    publish_layer(lam, name)
    with expect_error("InvalidParameterValueException", 400,
                      message_contains="Layer Version Cannot be less than 1"):
        lam.get_layer_version(LayerName=name, VersionNumber=number)
    with expect_error("InvalidParameterValueException", 400,
                      message_contains="Layer Version Cannot be less than 1"):
        lam.delete_layer_version(LayerName=name, VersionNumber=number)


def test_get_layer_version_by_arn_requires_a_version(lam_raw):
    name = unique("layer")
    publish_layer(lam_raw, name)
    with expect_error("ValidationException", 400, message_contains="at 'arn'"):
        lam_raw.get_layer_version_by_arn(Arn=layer_arn(name))


def test_list_versions_of_unknown_layer_is_empty(lam):
    resp = lam.list_layer_versions(LayerName=unique("nolayer"))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["LayerVersions"] == []


def test_invalid_compatible_runtime_or_architecture(lam_raw):
    name = unique("layer")
    with expect_error("ValidationException", 400, message_contains="'compatibleRuntimes'"):
        lam_raw.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip("x")},
                                      CompatibleRuntimes=["cobol85"])
    with expect_error("ValidationException", 400, message_contains="'compatibleArchitectures'"):
        lam_raw.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip("x")},
                                      CompatibleArchitectures=["sparc"])
    assert lam_raw.list_layer_versions(LayerName=name)["LayerVersions"] == []
    with expect_error("ValidationException", 400, message_contains="'compatibleRuntime'"):
        lam_raw.list_layers(CompatibleRuntime="cobol85")
    with expect_error("ValidationException", 400, message_contains="'compatibleArchitecture'"):
        lam_raw.list_layers(CompatibleArchitecture="sparc")


def test_list_layer_versions(lam):
    name = unique("layer")
    for tag in ("a", "b", "c"):
        publish_layer(lam, name, tag, CompatibleRuntimes=["python3.12"])
    resp = lam.list_layer_versions(LayerName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    versions = resp["LayerVersions"]
    assert [v["Version"] for v in versions] == [3, 2, 1], "newest first"
    for v in versions:
        assert v["LayerVersionArn"] == layer_arn(name, v["Version"])
        assert v["CompatibleRuntimes"] == ["python3.12"]
        assert_recent(v["CreatedDate"])
    paged = list_all(lam, "list_layer_versions", "LayerVersions", LayerName=name, MaxItems=1)
    assert [v["Version"] for v in paged] == [3, 2, 1]
    paginator = lam.get_paginator("list_layer_versions")
    got = [v["Version"] for p in paginator.paginate(LayerName=name,
                                                    PaginationConfig={"PageSize": 2})
           for v in p["LayerVersions"]]
    assert got == [3, 2, 1]


def test_list_layer_versions_filters(lam):
    name = unique("layer")
    publish_layer(lam, name, "py", CompatibleRuntimes=["python3.12"],
                  CompatibleArchitectures=["x86_64"])
    publish_layer(lam, name, "node", CompatibleRuntimes=["nodejs20.x"],
                  CompatibleArchitectures=["arm64"])
    by_rt = lam.list_layer_versions(LayerName=name, CompatibleRuntime="python3.12")
    assert [v["Version"] for v in by_rt["LayerVersions"]] == [1]
    by_arch = lam.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")
    assert [v["Version"] for v in by_arch["LayerVersions"]] == [2]


def test_list_layers(lam):
    name = unique("layer")
    publish_layer(lam, name, "v1", Description="one", CompatibleRuntimes=["python3.12"],
                  CompatibleArchitectures=["x86_64"], LicenseInfo="MIT")
    second, _ = publish_layer(lam, name, "v2", Description="two",
                              CompatibleRuntimes=["nodejs20.x"],
                              CompatibleArchitectures=["arm64"], LicenseInfo="Apache-2.0")
    resp = lam.list_layers()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    layers = {item["LayerName"]: item for item in list_all(lam, "list_layers", "Layers")}
    assert name in layers
    item = layers[name]
    assert item["LayerArn"] == layer_arn(name)
    latest = item["LatestMatchingVersion"]
    assert latest["Version"] == 2
    assert latest["LayerVersionArn"] == layer_arn(name, 2)
    assert latest["Description"] == "two"
    assert latest["CompatibleRuntimes"] == ["nodejs20.x"]
    assert latest["CompatibleArchitectures"] == ["arm64"]
    assert latest["LicenseInfo"] == "Apache-2.0"
    assert latest["CreatedDate"] == second["CreatedDate"]
    # Filters pick the latest *matching* version, or drop the layer.
    py = {i["LayerName"]: i for i in list_all(lam, "list_layers", "Layers",
                                               CompatibleRuntime="python3.12")}
    assert py[name]["LatestMatchingVersion"]["Version"] == 1
    x86 = {i["LayerName"]: i for i in list_all(lam, "list_layers", "Layers",
                                                CompatibleArchitecture="x86_64")}
    assert x86[name]["LatestMatchingVersion"]["Version"] == 1
    java = {i["LayerName"] for i in list_all(lam, "list_layers", "Layers",
                                              CompatibleRuntime="java21")}
    assert name not in java


def test_list_layers_pagination(lam):
    names = {unique("lp") for _ in range(3)}
    for n in names:
        publish_layer(lam, n)
    paged = list_all(lam, "list_layers", "Layers", MaxItems=1)
    seen = [i["LayerName"] for i in paged]
    assert len(seen) == len(set(seen))
    assert names <= set(seen)
    paginator = lam.get_paginator("list_layers")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    assert all(len(p["Layers"]) <= 2 for p in pages)
    assert names <= {i["LayerName"] for p in pages for i in p["Layers"]}


def test_delete_layer_version(lam):
    name = unique("layer")
    publish_layer(lam, name, "a")
    publish_layer(lam, name, "b")
    resp = lam.delete_layer_version(LayerName=name, VersionNumber=2)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("ResourceNotFoundException", 404):
        lam.get_layer_version(LayerName=name, VersionNumber=2)
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=name)["LayerVersions"]] == [1]
    # Deleting again, or deleting what never existed, is a silent 204.
    again = lam.delete_layer_version(LayerName=name, VersionNumber=2)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 204
    never = lam.delete_layer_version(LayerName=unique("nolayer"), VersionNumber=1)
    assert never["ResponseMetadata"]["HTTPStatusCode"] == 204
    # Version numbers are never reused.
    third, _ = publish_layer(lam, name, "c")
    assert third["Version"] == 3


def test_deleted_layer_version_stays_attached_to_functions(lam):
    name = unique("layer")
    publish_layer(lam, name)
    fn = create_function(lam, Layers=[layer_arn(name, 1)])
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert [l["Arn"] for l in cfg["Layers"]] == [layer_arn(name, 1)]


# ------------------------------------------------------------------------------------------
# Functions referencing layers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def six_layers(lam):
    out = []
    for i in range(6):
        name = unique(f"l{i}")
        resp, z = publish_layer(lam, name)
        out.append((resp["LayerVersionArn"], len(z)))
    return out


def test_function_with_layers(lam, six_layers):
    arns = [a for a, _ in six_layers[:2]]
    fn = create_function(lam, Layers=arns)
    expected = [{"Arn": a, "CodeSize": size} for a, size in six_layers[:2]]
    for cfg in (fn.resp, lam.get_function_configuration(FunctionName=fn.name),
                lam.get_function(FunctionName=fn.name)["Configuration"]):
        assert [{"Arn": l["Arn"], "CodeSize": l["CodeSize"]} for l in cfg["Layers"]] == expected


def test_function_with_five_layers_in_order(lam, six_layers):
    arns = [a for a, _ in reversed(six_layers[:5])]
    fn = create_function(lam, Layers=arns)
    assert [l["Arn"] for l in fn.resp["Layers"]] == arns


def test_six_layers_are_refused(lam, six_layers):
    name = unique("sixlayers")
    with expect_error("InvalidParameterValueException", 400):
        create_function(lam, name, Layers=[a for a, _ in six_layers], wait=False)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)
    fn = create_function(lam, Layers=[six_layers[0][0]])
    with expect_error("InvalidParameterValueException", 400):
        lam.update_function_configuration(FunctionName=fn.name,
                                          Layers=[a for a, _ in six_layers])
    assert [l["Arn"] for l in lam.get_function_configuration(FunctionName=fn.name)["Layers"]] \
        == [six_layers[0][0]]


@pytest.mark.parametrize("kind", ["unknown-version", "unknown-layer"])
def test_unknown_layer_version_is_refused(lam, six_layers, kind):
    base = six_layers[0][0].rsplit(":", 1)[0]
    bad = f"{base}:99" if kind == "unknown-version" else layer_arn(unique("nolayer"), 1)
    name = unique("badlayer")
    with expect_error("InvalidParameterValueException", 400,
                      message_contains=f"Layer version {bad} does not exist."):
        create_function(lam, name, Layers=[bad], wait=False)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


def test_malformed_layer_arn_is_refused(lam_raw):
    name = unique("badarn")
    with expect_error("ValidationException", 400, message_contains="at 'layers'"):
        create_function(lam_raw, name, Layers=["not-an-arn"], wait=False)
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_function(FunctionName=name)
    # A layer ARN without the version number is malformed too.
    with expect_error("ValidationException", 400, message_contains="at 'layers'"):
        create_function(lam_raw, name, Layers=[layer_arn(unique("l"))], wait=False)
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_function(FunctionName=name)


def test_two_versions_of_one_layer_are_refused(lam):
    name = unique("layer")
    publish_layer(lam, name, "a")
    publish_layer(lam, name, "b")
    fname = unique("twovers")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "Two different versions of the same layer are not allowed to be referenced "
            "in the same function.")):
        create_function(lam, fname, Layers=[layer_arn(name, 1), layer_arn(name, 2)], wait=False)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=fname)


def test_update_configuration_replaces_and_clears_layers(lam, six_layers):
    fn = create_function(lam, Layers=[six_layers[0][0], six_layers[1][0]])
    resp = update_config(lam, fn.name, Layers=[six_layers[2][0]])
    assert [l["Arn"] for l in resp["Layers"]] == [six_layers[2][0]]
    resp = update_config(lam, fn.name, Layers=[])
    assert resp.get("Layers", []) == []
    assert lam.get_function_configuration(FunctionName=fn.name).get("Layers", []) == []


def test_layer_zip_that_is_not_a_zip(lam):
    name = unique("badzip")
    with expect_error("InvalidParameterValueException", 400):
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": b"this is not a zip"})
    with expect_error("ResourceNotFoundException", 404):
        lam.get_layer_version(LayerName=name, VersionNumber=1)


def test_published_layer_is_visible_in_function_arn_forms(lam, six_layers):
    # Layers are reported the same whichever name form reads the function.
    fn = create_function(lam, Layers=[six_layers[3][0]])
    for ident in (fn.name, function_arn(fn.name)):
        assert strip_meta(lam.get_function_configuration(FunctionName=ident))["Layers"][0]["Arn"] \
            == six_layers[3][0]
