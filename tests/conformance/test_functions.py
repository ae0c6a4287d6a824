"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction, and every accepted FunctionName form."""

from __future__ import annotations

import pytest

from support import (
    HANDLER,
    ROLE,
    RUNTIME,
    UUID_RE,
    B64_SHA256_RE,
    LIST_OMITTABLE_KEYS,
    assert_recent,
    b64sha256,
    create_function,
    download,
    expect_error,
    function_arn,
    list_all,
    make_zip,
    parse_timestamp,
    partial_arn,
    publish,
    strip_meta,
    unique,
    update_code,
    update_config,
    version_numbers,
    wait_active,
)


# ------------------------------------------------------------------------------------------
# CreateFunction
# ------------------------------------------------------------------------------------------


def test_create_function_response_has_aws_defaults(lam):
    name = unique("create")
    zip_bytes = make_zip(marker=name)
    resp = lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=HANDLER,
        Code={"ZipFile": zip_bytes},
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["FunctionName"] == name
    assert resp["FunctionArn"] == function_arn(name)
    assert resp["Runtime"] == RUNTIME
    assert resp["Role"] == ROLE
    assert resp["Handler"] == HANDLER
    assert resp["CodeSize"] == len(zip_bytes)
    assert resp["CodeSha256"] == b64sha256(zip_bytes)
    assert B64_SHA256_RE.match(resp["CodeSha256"])
    assert resp["Description"] == ""
    assert resp["Timeout"] == 3
    assert resp["MemorySize"] == 128
    assert resp["Version"] == "$LATEST"
    assert resp["TracingConfig"] == {"Mode": "PassThrough"}
    assert resp["PackageType"] == "Zip"
    assert resp["Architectures"] == ["x86_64"]
    assert resp["EphemeralStorage"] == {"Size": 512}
    assert resp["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert resp["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert UUID_RE.match(resp["RevisionId"]), resp["RevisionId"]
    assert_recent(resp["LastModified"])
    assert "Environment" not in resp, "Environment must be omitted when no variables were given"
    # A new function starts Pending (waiters depend on seeing the transition).
    assert resp["State"] == "Pending"
    assert resp["StateReasonCode"] == "Creating"
    assert resp.get("StateReason")


def test_function_becomes_active_after_create(lam):
    fn = create_function(lam, wait=False)
    cfg = wait_active(lam, fn.name)
    assert cfg["State"] == "Active"
    assert cfg["LastUpdateStatus"] == "Successful"
    for key in ("FunctionName", "FunctionArn", "Runtime", "Role", "Handler", "CodeSize",
                "CodeSha256", "Description", "Timeout", "MemorySize", "Version", "TracingConfig",
                "PackageType", "Architectures", "EphemeralStorage", "LastModified"):
        assert cfg[key] == fn.resp[key], key


def test_create_function_with_explicit_configuration(lam):
    name = unique("explicit")
    zip_bytes = make_zip({"index.mjs": "export const handler = async (e) => e;\n"})
    env = {"GREETING": "hello", "MODE": "test", "EMPTY_VALUE": ""}
    fn = create_function(
        lam, name, zip_bytes=zip_bytes,
        Runtime="nodejs20.x", Handler="index.handler",
        Description="explicit settings", Timeout=42, MemorySize=1024,
        Environment={"Variables": env},
        TracingConfig={"Mode": "Active"},
        Architectures=["arm64"],
        EphemeralStorage={"Size": 2048},
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG",
                       "SystemLogLevel": "WARN"},
        Tags={"team": "kindling", "env": "ci"},
    )
    for cfg in (fn.resp, lam.get_function_configuration(FunctionName=name)):
        assert cfg["Runtime"] == "nodejs20.x"
        assert cfg["Handler"] == "index.handler"
        assert cfg["Description"] == "explicit settings"
        assert cfg["Timeout"] == 42
        assert cfg["MemorySize"] == 1024
        assert cfg["Environment"] == {"Variables": env}
        assert cfg["TracingConfig"] == {"Mode": "Active"}
        assert cfg["Architectures"] == ["arm64"]
        assert cfg["EphemeralStorage"] == {"Size": 2048}
        assert cfg["LoggingConfig"]["LogFormat"] == "JSON"
        assert cfg["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
        assert cfg["LoggingConfig"]["SystemLogLevel"] == "WARN"
        assert cfg["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{name}"
        assert cfg["CodeSha256"] == b64sha256(zip_bytes)
        assert cfg["CodeSize"] == len(zip_bytes)
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "kindling", "env": "ci"}


def test_create_with_publish_creates_version_1(lam):
    fn = create_function(lam, Publish=True)
    assert fn.resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert version_numbers(lam, fn.name) == ["$LATEST", "1"]
    v1 = wait_active(lam, fn.name, qualifier="1")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == function_arn(fn.name, "1")
    assert v1["CodeSha256"] == b64sha256(fn.zip)


# ------------------------------------------------------------------------------------------
# GetFunction / GetFunctionConfiguration
# ------------------------------------------------------------------------------------------


def test_get_function_returns_configuration_code_and_tags(lam):
    fn = create_function(lam, Tags={"owner": "conformance"})
    got = lam.get_function(FunctionName=fn.name)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    cfg = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    assert got["Configuration"] == cfg
    assert got["Configuration"]["State"] == "Active"
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Tags"] == {"owner": "conformance"}
    assert "Concurrency" not in got, "Concurrency is only present when reserved concurrency is set"


def test_get_function_code_location_serves_the_exact_zip(lam):
    fn = create_function(lam)
    location = lam.get_function(FunctionName=fn.name)["Code"]["Location"]
    body = download(location)
    assert body == fn.zip
    assert b64sha256(body) == fn.resp["CodeSha256"]


def test_get_function_without_tags_has_no_tags(lam):
    fn = create_function(lam)
    got = lam.get_function(FunctionName=fn.name)
    assert got.get("Tags", {}) == {}


def test_code_location_per_version(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    new_zip = make_zip(marker=fn.name + "-v2")
    update_code(lam, fn.name, new_zip)
    v1 = lam.get_function(FunctionName=fn.name, Qualifier="1")
    latest = lam.get_function(FunctionName=fn.name)
    assert v1["Configuration"]["CodeSha256"] == b64sha256(fn.zip)
    assert latest["Configuration"]["CodeSha256"] == b64sha256(new_zip)
    assert download(v1["Code"]["Location"]) == fn.zip
    assert download(latest["Code"]["Location"]) == new_zip


@pytest.fixture(scope="module")
def named(lam):
    """A function with version 1 (description 'v1'), alias 'live' -> 1, and $LATEST changed to
    description 'latest' after the publish."""
    fn = create_function(lam, Description="v1")
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    update_config(lam, fn.name, Description="latest")
    return fn.name


UNQUALIFIED_FORMS = {
    "name": lambda n: n,
    "partial-arn": lambda n: partial_arn(n),
    "full-arn": lambda n: function_arn(n),
}


@pytest.mark.parametrize("form", sorted(UNQUALIFIED_FORMS))
def test_get_function_configuration_accepts_unqualified_forms(lam, named, form):
    ident = UNQUALIFIED_FORMS[form](named)
    for cfg in (lam.get_function_configuration(FunctionName=ident),
                lam.get_function(FunctionName=ident)["Configuration"]):
        assert cfg["FunctionName"] == named
        assert cfg["FunctionArn"] == function_arn(named), "an unqualified request reads unqualified"
        assert cfg["Version"] == "$LATEST"
        assert cfg["Description"] == "latest"


def test_longest_function_name(lam):
    name = ("n" + unique("")).ljust(64, "x")[:64]
    assert len(name) == 64
    fn = create_function(lam, name)
    assert fn.resp["FunctionName"] == name
    assert lam.get_function(FunctionName=function_arn(name))["Configuration"]["FunctionName"] \
        == name


QUALIFIED_FORMS = {
    "name:1": (lambda n: f"{n}:1", "1", "v1"),
    "partial-arn:1": (lambda n: partial_arn(n, "1"), "1", "v1"),
    "full-arn:1": (lambda n: function_arn(n, "1"), "1", "v1"),
    "name:$LATEST": (lambda n: f"{n}:$LATEST", "$LATEST", "latest"),
    "full-arn:$LATEST": (lambda n: function_arn(n, "$LATEST"), "$LATEST", "latest"),
    "name:alias": (lambda n: f"{n}:live", "1", "v1"),
    "partial-arn:alias": (lambda n: partial_arn(n, "live"), "1", "v1"),
    "full-arn:alias": (lambda n: function_arn(n, "live"), "1", "v1"),
}


@pytest.mark.parametrize("form", sorted(QUALIFIED_FORMS))
def test_get_function_accepts_qualified_forms(lam, named, form):
    make, version, description = QUALIFIED_FORMS[form]
    got = lam.get_function(FunctionName=make(named))
    cfg = got["Configuration"]
    assert cfg["FunctionName"] == named
    assert cfg["Version"] == version
    assert cfg["Description"] == description
    # A qualified read reports the ARN qualified the way it was asked for ($LATEST, the version
    # number, or the alias name), while Version carries the resolved version.
    qualifier = "live" if "alias" in form else version
    assert cfg["FunctionArn"] == function_arn(named, qualifier)
    assert download(got["Code"]["Location"])


@pytest.mark.parametrize("qualifier,version,description",
                         [("1", "1", "v1"), ("live", "1", "v1"), ("$LATEST", "$LATEST", "latest")])
def test_qualifier_parameter(lam, named, qualifier, version, description):
    cfg = lam.get_function_configuration(FunctionName=named, Qualifier=qualifier)
    assert cfg["Version"] == version
    assert cfg["Description"] == description
    assert cfg["FunctionArn"] == function_arn(named, qualifier)


def test_conflicting_qualifiers_are_rejected(lam, named):
    msg = "The derived qualifier from the function name does not match the specified qualifier."
    with expect_error("InvalidParameterValueException", 400, message_contains=msg):
        lam.get_function_configuration(FunctionName=f"{named}:1", Qualifier="live")
    with expect_error("InvalidParameterValueException", 400, message_contains=msg):
        lam.get_function(FunctionName=function_arn(named, "live"), Qualifier="1")
    with expect_error("InvalidParameterValueException", 400, message_contains=msg):
        lam.delete_function(FunctionName=f"{named}:1", Qualifier="2")
    assert version_numbers(lam, named) == ["$LATEST", "1"]


def test_matching_qualifiers_are_accepted(lam, named):
    cfg = lam.get_function_configuration(FunctionName=f"{named}:live", Qualifier="live")
    assert cfg["Version"] == "1"


@pytest.mark.parametrize("form", sorted(UNQUALIFIED_FORMS))
def test_mutating_operations_accept_unqualified_forms(lam, form):
    fn = create_function(lam)
    ident = UNQUALIFIED_FORMS[form](fn.name)
    resp = lam.update_function_configuration(FunctionName=ident, Description=f"via {form}")
    assert resp["FunctionArn"] == function_arn(fn.name)
    wait_active(lam, fn.name)
    new_zip = make_zip(marker=f"{fn.name}-{form}")
    resp = lam.update_function_code(FunctionName=ident, ZipFile=new_zip)
    assert resp["CodeSha256"] == b64sha256(new_zip)
    wait_active(lam, fn.name)
    v = lam.publish_version(FunctionName=ident)
    assert v["Version"] == "1"
    assert v["FunctionArn"] == function_arn(fn.name, "1")
    alias = lam.create_alias(FunctionName=ident, Name="a1", FunctionVersion="1")
    assert alias["AliasArn"] == function_arn(fn.name, "a1")
    assert lam.get_alias(FunctionName=ident, Name="a1")["FunctionVersion"] == "1"
    assert [a["Name"] for a in lam.list_aliases(FunctionName=ident)["Aliases"]] == ["a1"]
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=ident)["Versions"]] \
        == ["$LATEST", "1"]
    lam.delete_alias(FunctionName=ident, Name="a1")
    lam.delete_function(FunctionName=ident)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=fn.name)


# ------------------------------------------------------------------------------------------
# ListFunctions
# ------------------------------------------------------------------------------------------


def test_list_functions_item_matches_configuration(lam):
    fn = create_function(lam, Description="listed", Environment={"Variables": {"A1": "b"}})
    items = [f for f in list_all(lam, "list_functions", "Functions") if f["FunctionName"] == fn.name]
    assert len(items) == 1
    item = items[0]
    cfg = strip_meta(lam.get_function_configuration(FunctionName=fn.name))
    for key, value in cfg.items():
        if key in LIST_OMITTABLE_KEYS:
            continue
        assert item.get(key) == value, f"ListFunctions item differs in {key}"
    assert item["Version"] == "$LATEST"
    assert item["FunctionArn"] == function_arn(fn.name)


def test_list_functions_default_shows_only_latest_and_all_shows_versions(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_code(lam, fn.name, make_zip(marker=fn.name + "-2"))
    publish(lam, fn.name)
    default = [f for f in list_all(lam, "list_functions", "Functions")
               if f["FunctionName"] == fn.name]
    assert [f["Version"] for f in default] == ["$LATEST"]
    everything = [f for f in list_all(lam, "list_functions", "Functions", FunctionVersion="ALL")
                  if f["FunctionName"] == fn.name]
    by_version = {f["Version"]: f for f in everything}
    assert sorted(by_version) == ["$LATEST", "1", "2"]
    assert len(everything) == 3
    assert default[0]["FunctionArn"] == function_arn(fn.name)
    # With FunctionVersion=ALL every item is qualified, $LATEST included.
    assert by_version["$LATEST"]["FunctionArn"] == function_arn(fn.name, "$LATEST")
    assert by_version["1"]["FunctionArn"] == function_arn(fn.name, "1")
    assert by_version["2"]["FunctionArn"] == function_arn(fn.name, "2")
    assert by_version["1"]["CodeSha256"] == b64sha256(fn.zip)


def test_list_functions_marker_pagination(lam):
    prefix = unique("page")
    names = {create_function(lam, f"{prefix}-{i}", wait=False).name for i in range(5)}
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        kwargs = {"MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= 2
        seen.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            break
        assert len(page["Functions"]) == 2, "a non-final page must be full"
        assert pages < 10_000
    assert len(seen) == len(set(seen)), "pagination returned duplicates"
    assert names <= set(seen)
    assert pages >= 3


def test_list_functions_boto3_paginator(lam):
    prefix = unique("pgtr")
    names = {create_function(lam, f"{prefix}-{i}", wait=False).name for i in range(4)}
    paginator = lam.get_paginator("list_functions")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 3}))
    seen = [f["FunctionName"] for p in pages for f in p["Functions"]]
    assert all(len(p["Functions"]) <= 3 for p in pages)
    assert len(seen) == len(set(seen))
    assert names <= set(seen)
    # Client-side MaxItems truncation on top of server pages must also work.
    result = paginator.paginate(PaginationConfig={"PageSize": 2, "MaxItems": 3}).build_full_result()
    assert len(result["Functions"]) == 3
    assert result.get("NextToken")
    rest = paginator.paginate(
        PaginationConfig={"PageSize": 2, "StartingToken": result["NextToken"]}
    ).build_full_result()
    combined = [f["FunctionName"] for f in result["Functions"] + rest["Functions"]]
    assert sorted(combined) == sorted(seen)


def test_list_functions_paginator_with_all_versions(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="second")
    publish(lam, fn.name)
    paginator = lam.get_paginator("list_functions")
    items = [f for page in paginator.paginate(FunctionVersion="ALL",
                                              PaginationConfig={"PageSize": 2})
             for f in page["Functions"] if f["FunctionName"] == fn.name]
    assert sorted(f["Version"] for f in items) == ["$LATEST", "1", "2"]


def test_list_functions_pages_hold_at_most_50(lam):
    existing = len(list_all(lam, "list_functions", "Functions"))
    prefix = unique("fifty")
    for i in range(max(0, 51 - existing)):
        create_function(lam, f"{prefix}-{i}", wait=False)
    page = lam.list_functions(MaxItems=100)
    assert len(page["Functions"]) == 50
    assert page.get("NextMarker")
    page = lam.list_functions()
    assert len(page["Functions"]) == 50
    assert page.get("NextMarker")


# ------------------------------------------------------------------------------------------
# UpdateFunctionCode
# ------------------------------------------------------------------------------------------


def test_update_function_code(lam):
    fn = create_function(lam, Description="keep me", Timeout=9)
    before = lam.get_function_configuration(FunctionName=fn.name)
    new_zip = make_zip({"lambda_function.py": "def handler(e, c):\n    return 2\n",
                        "extra/data.txt": "x" * 1000})
    resp = lam.update_function_code(FunctionName=fn.name, ZipFile=new_zip)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["CodeSha256"] == b64sha256(new_zip)
    assert resp["CodeSize"] == len(new_zip)
    assert resp["Version"] == "$LATEST"
    assert resp["FunctionArn"] == function_arn(fn.name)
    assert resp["RevisionId"] != before["RevisionId"]
    assert UUID_RE.match(resp["RevisionId"])
    assert parse_timestamp(resp["LastModified"]) >= parse_timestamp(before["LastModified"])
    assert resp["LastUpdateStatus"] in ("InProgress", "Successful")
    assert resp["Description"] == "keep me"
    assert resp["Timeout"] == 9
    after = wait_active(lam, fn.name)
    assert after["LastUpdateStatus"] == "Successful"
    assert after["CodeSha256"] == b64sha256(new_zip)
    assert download(lam.get_function(FunctionName=fn.name)["Code"]["Location"]) == new_zip


def test_update_function_code_with_publish(lam):
    fn = create_function(lam)
    new_zip = make_zip(marker=fn.name + "-published")
    lam.update_function_code(FunctionName=fn.name, ZipFile=new_zip, Publish=True)
    wait_active(lam, fn.name)
    assert version_numbers(lam, fn.name) == ["$LATEST", "1"]
    v1 = wait_active(lam, fn.name, qualifier="1")
    assert v1["CodeSha256"] == b64sha256(new_zip)


def test_update_function_code_revision_precondition(lam):
    fn = create_function(lam)
    current = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    stale = "00000000-0000-4000-8000-000000000000"
    with expect_error("PreconditionFailedException", 412, message_contains=(
            "The Revision Id provided does not match the latest Revision Id")):
        lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip(marker="stale"),
                                 RevisionId=stale)
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["CodeSha256"] == b64sha256(fn.zip)
    assert cfg["RevisionId"] == current
    new_zip = make_zip(marker=fn.name + "-ok")
    resp = lam.update_function_code(FunctionName=fn.name, ZipFile=new_zip, RevisionId=current)
    assert resp["CodeSha256"] == b64sha256(new_zip)


def test_update_function_code_dry_run_changes_nothing(lam):
    fn = create_function(lam)
    before = lam.get_function_configuration(FunctionName=fn.name)
    lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip(marker="dry"), DryRun=True)
    after = lam.get_function_configuration(FunctionName=fn.name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]
    assert download(lam.get_function(FunctionName=fn.name)["Code"]["Location"]) == fn.zip


# ------------------------------------------------------------------------------------------
# UpdateFunctionConfiguration
# ------------------------------------------------------------------------------------------


def test_update_function_configuration(lam):
    fn = create_function(lam, Environment={"Variables": {"OLD": "1", "KEEP": "2"}}, Timeout=10)
    before = lam.get_function_configuration(FunctionName=fn.name)
    resp = lam.update_function_configuration(
        FunctionName=fn.name, Description="updated", MemorySize=256, Handler="app.main",
        Runtime="python3.13", Environment={"Variables": {"NEW": "3"}},
        EphemeralStorage={"Size": 1024}, TracingConfig={"Mode": "Active"},
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Description"] == "updated"
    assert resp["MemorySize"] == 256
    assert resp["Handler"] == "app.main"
    assert resp["Runtime"] == "python3.13"
    assert resp["Environment"] == {"Variables": {"NEW": "3"}}, "Environment replaces the map"
    assert resp["EphemeralStorage"] == {"Size": 1024}
    assert resp["TracingConfig"] == {"Mode": "Active"}
    assert resp["Timeout"] == 10, "fields not in the request are kept"
    assert resp["CodeSha256"] == before["CodeSha256"]
    assert resp["CodeSize"] == before["CodeSize"]
    assert resp["RevisionId"] != before["RevisionId"]
    assert resp["Version"] == "$LATEST"
    assert resp["LastUpdateStatus"] in ("InProgress", "Successful")
    assert parse_timestamp(resp["LastModified"]) >= parse_timestamp(before["LastModified"])
    after = wait_active(lam, fn.name)
    assert after["LastUpdateStatus"] == "Successful"
    for key in ("Description", "MemorySize", "Handler", "Runtime", "Environment", "Timeout",
                "EphemeralStorage", "TracingConfig", "CodeSha256"):
        assert after[key] == resp[key], key


def test_update_configuration_revision_precondition(lam):
    fn = create_function(lam, Description="original")
    current = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    with expect_error("PreconditionFailedException", 412):
        lam.update_function_configuration(FunctionName=fn.name, Description="nope",
                                          RevisionId="11111111-2222-4333-8444-555555555555")
    cfg = lam.get_function_configuration(FunctionName=fn.name)
    assert cfg["Description"] == "original"
    assert cfg["RevisionId"] == current
    resp = lam.update_function_configuration(FunctionName=fn.name, Description="yes",
                                             RevisionId=current)
    assert resp["Description"] == "yes"


def test_each_update_changes_revision_id(lam):
    fn = create_function(lam)
    revisions = [lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]]
    for i in range(3):
        revisions.append(update_config(lam, fn.name, Description=f"d{i}")["RevisionId"])
    revisions.append(update_code(lam, fn.name, make_zip(marker="rev"))["RevisionId"])
    assert len(set(revisions)) == len(revisions)


# ------------------------------------------------------------------------------------------
# DeleteFunction
# ------------------------------------------------------------------------------------------


def test_delete_function_removes_function_versions_and_aliases(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="prod", FunctionVersion="1")
    resp = lam.delete_function(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(fn.name)):
        lam.get_function(FunctionName=fn.name)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")
    with expect_error("ResourceNotFoundException", 404):
        lam.list_versions_by_function(FunctionName=fn.name)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_alias(FunctionName=fn.name, Name="prod")
    names = {f["FunctionName"] for f in list_all(lam, "list_functions", "Functions",
                                                 FunctionVersion="ALL")}
    assert fn.name not in names


def test_recreated_function_starts_fresh(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="x")
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="old", FunctionVersion="2")
    lam.delete_function(FunctionName=fn.name)
    again = create_function(lam, fn.name)
    assert again.resp["FunctionArn"] == function_arn(fn.name)
    assert version_numbers(lam, fn.name) == ["$LATEST"]
    assert lam.list_aliases(FunctionName=fn.name)["Aliases"] == []
    assert publish(lam, fn.name)["Version"] == "1"


def test_delete_one_version_with_qualifier(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="two")
    publish(lam, fn.name)
    resp = lam.delete_function(FunctionName=fn.name, Qualifier="1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    assert version_numbers(lam, fn.name) == ["$LATEST", "2"]
    with expect_error("ResourceNotFoundException", 404,
                      message_contains=function_arn(fn.name, "1")):
        lam.get_function(FunctionName=fn.name, Qualifier="1")
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["Description"] == "two"


def test_delete_version_via_qualified_name(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="two")
    publish(lam, fn.name)
    lam.delete_function(FunctionName=function_arn(fn.name, "2"))
    assert version_numbers(lam, fn.name) == ["$LATEST", "1"]


def test_delete_version_used_by_alias_is_refused(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="pinned", FunctionVersion="1")
    with expect_error("ResourceConflictException", 409):
        lam.delete_function(FunctionName=fn.name, Qualifier="1")
    assert version_numbers(lam, fn.name) == ["$LATEST", "1"]
    assert lam.get_alias(FunctionName=fn.name, Name="pinned")["FunctionVersion"] == "1"


def test_delete_version_used_by_alias_routing_is_refused(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    update_config(lam, fn.name, Description="two")
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    with expect_error("ResourceConflictException", 409):
        lam.delete_function(FunctionName=fn.name, Qualifier="2")
    assert version_numbers(lam, fn.name) == ["$LATEST", "1", "2"]


def test_delete_latest_qualifier_is_refused(lam):
    fn = create_function(lam)
    with expect_error("InvalidParameterValueException", 400):
        lam.delete_function(FunctionName=fn.name, Qualifier="$LATEST")
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["Version"] == "$LATEST"


def test_delete_missing_function(lam):
    name = unique("ghost")
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(name)):
        lam.delete_function(FunctionName=name)
