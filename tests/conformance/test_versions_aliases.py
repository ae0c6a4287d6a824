"""PublishVersion, ListVersionsByFunction, immutability of published versions, and aliases
(Create/Get/Update/Delete/List) including RoutingConfig validation."""

from __future__ import annotations

import pytest

from support import (
    UUID_RE,
    b64sha256,
    create_function,
    download,
    expect_error,
    function_arn,
    list_all,
    make_zip,
    publish,
    strip_meta,
    unique,
    update_code,
    update_config,
    version_numbers,
    wait_active,
)

STALE_REVISION = "00000000-0000-4000-8000-000000000001"


# ------------------------------------------------------------------------------------------
# PublishVersion
# ------------------------------------------------------------------------------------------


def test_publish_version_snapshots_latest(lam):
    fn = create_function(lam, Description="first", Timeout=7, MemorySize=256,
                         Environment={"Variables": {"K1": "v"}})
    latest = lam.get_function_configuration(FunctionName=fn.name)
    resp = lam.publish_version(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["Version"] == "1"
    assert resp["FunctionArn"] == function_arn(fn.name, "1")
    assert resp["FunctionName"] == fn.name
    for key in ("CodeSha256", "CodeSize", "Description", "Timeout", "MemorySize", "Environment",
                "Runtime", "Handler", "Role", "Architectures", "EphemeralStorage",
                "TracingConfig", "PackageType"):
        assert resp[key] == latest[key], key
    assert UUID_RE.match(resp["RevisionId"])
    v1 = wait_active(lam, fn.name, qualifier="1")
    assert v1["State"] == "Active"
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == function_arn(fn.name, "1")


def test_publish_version_description_overrides_only_the_version(lam):
    fn = create_function(lam, Description="latest description")
    resp = publish(lam, fn.name, Description="release notes")
    assert resp["Description"] == "release notes"
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")["Description"] \
        == "release notes"
    assert lam.get_function_configuration(FunctionName=fn.name)["Description"] \
        == "latest description"


def test_version_numbers_increase_and_unchanged_latest_is_not_republished(lam):
    fn = create_function(lam)
    assert publish(lam, fn.name)["Version"] == "1"
    update_code(lam, fn.name, make_zip(marker=fn.name + "-2"))
    assert publish(lam, fn.name)["Version"] == "2"
    update_config(lam, fn.name, MemorySize=512)
    assert publish(lam, fn.name)["Version"] == "3"
    # Nothing changed since version 3: no new version, the latest one is returned.
    again = lam.publish_version(FunctionName=fn.name)
    assert again["Version"] == "3"
    assert version_numbers(lam, fn.name) == ["$LATEST", "1", "2", "3"]


def test_version_numbers_are_not_reused_after_delete(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="2")
    publish(lam, fn.name)
    lam.delete_function(FunctionName=fn.name, Qualifier="2")
    update_config(lam, fn.name, Description="3")
    assert publish(lam, fn.name)["Version"] == "3"
    assert version_numbers(lam, fn.name) == ["$LATEST", "1", "3"]


def test_publish_version_code_sha256_precondition(lam):
    fn = create_function(lam)
    wrong = b64sha256(b"something else")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            f"CodeSHA256 ({wrong}) is different from current CodeSHA256 in $LATEST")):
        lam.publish_version(FunctionName=fn.name, CodeSha256=wrong)
    assert version_numbers(lam, fn.name) == ["$LATEST"]
    resp = lam.publish_version(FunctionName=fn.name, CodeSha256=b64sha256(fn.zip))
    assert resp["Version"] == "1"


def test_publish_version_revision_precondition(lam):
    fn = create_function(lam)
    with expect_error("PreconditionFailedException", 412):
        lam.publish_version(FunctionName=fn.name, RevisionId=STALE_REVISION)
    assert version_numbers(lam, fn.name) == ["$LATEST"]
    current = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    assert lam.publish_version(FunctionName=fn.name, RevisionId=current)["Version"] == "1"


def test_publish_version_of_missing_function(lam):
    name = unique("nopub")
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(name)):
        lam.publish_version(FunctionName=name)


# ------------------------------------------------------------------------------------------
# ListVersionsByFunction
# ------------------------------------------------------------------------------------------


def test_list_versions_by_function(lam):
    fn = create_function(lam)
    zips = [fn.zip]
    publish(lam, fn.name)
    for i in (2, 3):
        z = make_zip(marker=f"{fn.name}-{i}")
        zips.append(z)
        update_code(lam, fn.name, z)
        publish(lam, fn.name)
    resp = lam.list_versions_by_function(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    versions = resp["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2", "3"]
    assert not resp.get("NextMarker")
    assert versions[0]["FunctionArn"] == function_arn(fn.name, "$LATEST")
    for i, v in enumerate(versions[1:], start=1):
        assert v["FunctionArn"] == function_arn(fn.name, str(i))
        assert v["CodeSha256"] == b64sha256(zips[i - 1])
        assert v["FunctionName"] == fn.name
    assert versions[0]["CodeSha256"] == b64sha256(zips[-1])


def test_list_versions_pagination(lam):
    fn = create_function(lam)
    for i in range(4):
        update_config(lam, fn.name, Description=f"d{i}")
        publish(lam, fn.name)
    expected = ["$LATEST", "1", "2", "3", "4"]
    pages = []
    marker = None
    while True:
        kwargs = {"FunctionName": fn.name, "MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_versions_by_function(**kwargs)
        assert len(page["Versions"]) <= 2
        pages.append([v["Version"] for v in page["Versions"]])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [v for p in pages for v in p] == expected
    assert len(pages) == 3
    paginator = lam.get_paginator("list_versions_by_function")
    got = [v["Version"] for page in paginator.paginate(FunctionName=fn.name,
                                                       PaginationConfig={"PageSize": 1})
           for v in page["Versions"]]
    assert got == expected


# ------------------------------------------------------------------------------------------
# Published versions are immutable
# ------------------------------------------------------------------------------------------


def test_published_version_is_unaffected_by_later_changes(lam):
    fn = create_function(lam, Description="v1", Timeout=5,
                         Environment={"Variables": {"VER": "1"}})
    publish(lam, fn.name)
    frozen = strip_meta(lam.get_function_configuration(FunctionName=fn.name, Qualifier="1"))
    update_config(lam, fn.name, Description="changed", Timeout=50,
                  Environment={"Variables": {"VER": "2"}})
    new_zip = make_zip(marker=fn.name + "-changed")
    update_code(lam, fn.name, new_zip)
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")) \
        == frozen
    got = lam.get_function(FunctionName=fn.name, Qualifier="1")
    assert download(got["Code"]["Location"]) == fn.zip
    latest = lam.get_function_configuration(FunctionName=fn.name)
    assert latest["Description"] == "changed"
    assert latest["CodeSha256"] == b64sha256(new_zip)


@pytest.mark.parametrize("qualified", ["name:1", "arn:1"])
def test_published_version_configuration_cannot_be_updated(lam, qualified):
    fn = create_function(lam, Description="v1")
    publish(lam, fn.name)
    ident = f"{fn.name}:1" if qualified == "name:1" else function_arn(fn.name, "1")
    before = strip_meta(lam.get_function_configuration(FunctionName=fn.name, Qualifier="1"))
    with expect_error({"InvalidParameterValueException": 400, "ResourceConflictException": 409}):
        lam.update_function_configuration(FunctionName=ident, Description="mutated")
    with expect_error({"InvalidParameterValueException": 400, "ResourceConflictException": 409}):
        lam.update_function_code(FunctionName=ident, ZipFile=make_zip(marker="mutated"))
    assert strip_meta(lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")) \
        == before
    assert lam.get_function_configuration(FunctionName=fn.name)["Description"] == "v1"


# ------------------------------------------------------------------------------------------
# Aliases
# ------------------------------------------------------------------------------------------


@pytest.fixture
def three_versions(lam):
    """A function with published versions 1, 2 and 3 (distinct descriptions)."""
    fn = create_function(lam, Description="d1")
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="d2")
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="d3")
    publish(lam, fn.name)
    return fn.name


def test_create_and_get_alias(lam, three_versions):
    name = three_versions
    resp = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                            Description="the live one")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["AliasArn"] == function_arn(name, "live")
    assert resp["Name"] == "live"
    assert resp["FunctionVersion"] == "1"
    assert resp["Description"] == "the live one"
    assert UUID_RE.match(resp["RevisionId"])
    got = lam.get_alias(FunctionName=name, Name="live")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert strip_meta(got) == strip_meta(resp)
    cfg = lam.get_function_configuration(FunctionName=name, Qualifier="live")
    assert cfg["Version"] == "1"
    assert cfg["Description"] == "d1"


def test_alias_to_latest(lam):
    fn = create_function(lam)
    resp = lam.create_alias(FunctionName=fn.name, Name="dev", FunctionVersion="$LATEST")
    assert resp["FunctionVersion"] == "$LATEST"
    assert lam.get_function_configuration(FunctionName=f"{fn.name}:dev")["Version"] == "$LATEST"


def test_update_alias(lam, three_versions):
    name = three_versions
    created = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    resp = lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                            Description="moved")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["FunctionVersion"] == "2"
    assert resp["Description"] == "moved"
    assert resp["AliasArn"] == function_arn(name, "live")
    assert resp["RevisionId"] != created["RevisionId"]
    assert strip_meta(lam.get_alias(FunctionName=name, Name="live")) == strip_meta(resp)
    assert lam.get_function_configuration(FunctionName=name, Qualifier="live")["Version"] == "2"


def test_update_alias_revision_precondition(lam, three_versions):
    name = three_versions
    created = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with expect_error("PreconditionFailedException", 412):
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion="3",
                         RevisionId=STALE_REVISION)
    assert strip_meta(lam.get_alias(FunctionName=name, Name="live")) == strip_meta(created)
    ok = lam.update_alias(FunctionName=name, Name="live", FunctionVersion="3",
                          RevisionId=created["RevisionId"])
    assert ok["FunctionVersion"] == "3"


def test_list_aliases_filter_and_pagination(lam, three_versions):
    name = three_versions
    lam.create_alias(FunctionName=name, Name="a-one", FunctionVersion="1")
    lam.create_alias(FunctionName=name, Name="b-two", FunctionVersion="2")
    lam.create_alias(FunctionName=name, Name="c-two", FunctionVersion="2")
    lam.create_alias(FunctionName=name, Name="d-latest", FunctionVersion="$LATEST")
    resp = lam.list_aliases(FunctionName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    by_name = {a["Name"]: a for a in resp["Aliases"]}
    assert sorted(by_name) == ["a-one", "b-two", "c-two", "d-latest"]
    assert by_name["b-two"]["AliasArn"] == function_arn(name, "b-two")
    assert by_name["b-two"]["FunctionVersion"] == "2"
    filtered = lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
    assert sorted(a["Name"] for a in filtered) == ["b-two", "c-two"]
    paged = list_all(lam, "list_aliases", "Aliases", FunctionName=name, MaxItems=1)
    assert sorted(a["Name"] for a in paged) == sorted(by_name)
    paginator = lam.get_paginator("list_aliases")
    pages = list(paginator.paginate(FunctionName=name, PaginationConfig={"PageSize": 3}))
    assert all(len(p["Aliases"]) <= 3 for p in pages)
    assert sorted(a["Name"] for p in pages for a in p["Aliases"]) == sorted(by_name)


def test_delete_alias(lam, three_versions):
    name = three_versions
    lam.create_alias(FunctionName=name, Name="gone", FunctionVersion="1")
    lam.create_alias(FunctionName=name, Name="stays", FunctionVersion="1")
    resp = lam.delete_alias(FunctionName=name, Name="gone")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("ResourceNotFoundException", 404,
                      message_contains=function_arn(name, "gone")):
        lam.get_alias(FunctionName=name, Name="gone")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["stays"]
    # The version the alias pointed at can now be deleted only if nothing else points at it.
    lam.delete_alias(FunctionName=name, Name="stays")
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert version_numbers(lam, name) == ["$LATEST", "2", "3"]


def test_delete_missing_alias_is_not_a_server_error(lam, three_versions):
    try:
        resp = lam.delete_alias(FunctionName=three_versions, Name="never-was")
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    except lam.exceptions.ResourceNotFoundException as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_duplicate_alias_conflicts(lam, three_versions):
    name = three_versions
    first = lam.create_alias(FunctionName=name, Name="dup", FunctionVersion="1")
    with expect_error("ResourceConflictException", 409,
                      message_contains=f"Alias already exists: {function_arn(name, 'dup')}"):
        lam.create_alias(FunctionName=name, Name="dup", FunctionVersion="2")
    assert strip_meta(lam.get_alias(FunctionName=name, Name="dup")) == strip_meta(first)


def test_alias_to_missing_version(lam, three_versions):
    name = three_versions
    with expect_error("ResourceNotFoundException", 404,
                      message_contains=function_arn(name, "99")):
        lam.create_alias(FunctionName=name, Name="nowhere", FunctionVersion="99")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_alias(FunctionName=name, Name="nowhere")
    lam.create_alias(FunctionName=name, Name="somewhere", FunctionVersion="1")
    with expect_error("ResourceNotFoundException", 404):
        lam.update_alias(FunctionName=name, Name="somewhere", FunctionVersion="42")
    assert lam.get_alias(FunctionName=name, Name="somewhere")["FunctionVersion"] == "1"


def test_alias_on_missing_function(lam):
    name = unique("noalias")
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(name)):
        lam.create_alias(FunctionName=name, Name="x", FunctionVersion="1")
    with expect_error("ResourceNotFoundException", 404):
        lam.list_aliases(FunctionName=name)


def test_get_missing_alias_message(lam, three_versions):
    with expect_error("ResourceNotFoundException", 404, message_contains=(
            f"Cannot find alias arn: {function_arn(three_versions, 'nosuch')}")):
        lam.get_alias(FunctionName=three_versions, Name="nosuch")


def test_get_missing_alias_via_qualifier(lam, three_versions):
    with expect_error("ResourceNotFoundException", 404,
                      message_contains=function_arn(three_versions, "nosuch")):
        lam.get_function(FunctionName=three_versions, Qualifier="nosuch")


def test_alias_name_must_not_be_numeric(lam_raw, three_versions):
    with expect_error({"ValidationException": 400, "InvalidParameterValueException": 400}):
        lam_raw.create_alias(FunctionName=three_versions, Name="123", FunctionVersion="1")
    assert lam_raw.list_aliases(FunctionName=three_versions)["Aliases"] == []


# ------------------------------------------------------------------------------------------
# RoutingConfig
# ------------------------------------------------------------------------------------------


def test_routing_config_round_trip(lam, three_versions):
    name = three_versions
    resp = lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                            RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    assert resp["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    got = lam.get_alias(FunctionName=name, Name="canary")
    assert got["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    upd = lam.update_alias(FunctionName=name, Name="canary",
                           RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert upd["FunctionVersion"] == "1"
    assert upd["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    listed = {a["Name"]: a for a in lam.list_aliases(FunctionName=name)["Aliases"]}
    assert listed["canary"]["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    # Promote version 2 and clear routing.
    done = lam.update_alias(FunctionName=name, Name="canary", FunctionVersion="2",
                            RoutingConfig={"AdditionalVersionWeights": {}})
    assert done["FunctionVersion"] == "2"
    assert done.get("RoutingConfig", {}).get("AdditionalVersionWeights", {}) == {}
    got = lam.get_alias(FunctionName=name, Name="canary")
    assert got.get("RoutingConfig", {}).get("AdditionalVersionWeights", {}) == {}


BAD_ROUTING = {
    # Model constraints (Weight 0.0..1.0, key pattern [0-9]+): ValidationException naming
    # 'routingConfig.additionalVersionWeights'.
    "weight-above-1": ({"2": 1.5}, "ValidationException", "routingConfig.additionalVersionWeights"),
    "weight-negative": ({"2": -0.1}, "ValidationException",
                        "routingConfig.additionalVersionWeights"),
    "latest-as-extra": ({"$LATEST": 0.5}, "ValidationException",
                        "routingConfig.additionalVersionWeights"),
    # Service rules.
    "two-extra-versions": ({"2": 0.1, "3": 0.1}, "InvalidParameterValueException",
                           "Number of items in AdditionalVersionWeights cannot be greater than 1"),
    "own-version": ({"1": 0.5}, "InvalidParameterValueException",
                    "Function version 1 is already included in routing configuration"),
    "missing-version": ({"99": 0.5}, "ResourceNotFoundException", ":99"),
}


def _expect(code, needle):
    return expect_error(code, 404 if code == "ResourceNotFoundException" else 400,
                        message_contains=needle)


@pytest.mark.parametrize("case", sorted(BAD_ROUTING))
def test_create_alias_with_invalid_routing(lam_raw, three_versions, case):
    weights, code, needle = BAD_ROUTING[case]
    with _expect(code, needle):
        lam_raw.create_alias(FunctionName=three_versions, Name="bad", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": weights})
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_alias(FunctionName=three_versions, Name="bad")


@pytest.mark.parametrize("case", sorted(BAD_ROUTING))
def test_update_alias_with_invalid_routing(lam_raw, three_versions, case):
    weights, code, needle = BAD_ROUTING[case]
    before = lam_raw.create_alias(FunctionName=three_versions, Name="stable",
                                  FunctionVersion="1",
                                  RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}})
    with _expect(code, needle):
        lam_raw.update_alias(FunctionName=three_versions, Name="stable",
                             RoutingConfig={"AdditionalVersionWeights": weights})
    assert strip_meta(lam_raw.get_alias(FunctionName=three_versions, Name="stable")) \
        == strip_meta(before)


def test_routing_requires_published_primary_version(lam, three_versions):
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "$LATEST is not supported for an alias pointing to more than 1 version")):
        lam.create_alias(FunctionName=three_versions, Name="latest-split",
                         FunctionVersion="$LATEST",
                         RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    with expect_error("ResourceNotFoundException", 404):
        lam.get_alias(FunctionName=three_versions, Name="latest-split")
