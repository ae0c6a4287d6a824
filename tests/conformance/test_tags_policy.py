"""TagResource / UntagResource / ListTags and AddPermission / GetPolicy / RemovePermission."""

from __future__ import annotations

import json

import pytest

from support import (
    ACCOUNT,
    UUID_RE,
    create_function,
    expect_error,
    function_arn,
    publish,
    unique,
    update_config,
)


# ------------------------------------------------------------------------------------------
# Tags
# ------------------------------------------------------------------------------------------


def test_tags_lifecycle(lam):
    fn = create_function(lam, Tags={"team": "a", "stage": "dev"})
    listed = lam.list_tags(Resource=fn.arn)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert listed["Tags"] == {"team": "a", "stage": "dev"}

    resp = lam.tag_resource(Resource=fn.arn, Tags={"stage": "prod", "cost-center": "42"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=fn.arn)["Tags"] == \
        {"team": "a", "stage": "prod", "cost-center": "42"}

    resp = lam.untag_resource(Resource=fn.arn, TagKeys=["team", "cost-center", "not-there"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=fn.arn)["Tags"] == {"stage": "prod"}
    assert lam.get_function(FunctionName=fn.name)["Tags"] == {"stage": "prod"}


def test_tags_with_special_characters(lam):
    fn = create_function(lam)
    tags = {"aws-cdk:path": "Stack/Fn/Resource", "a b": "c=d+e@f", "unicodé": "välue", "e": ""}
    lam.tag_resource(Resource=fn.arn, Tags=tags)
    assert lam.list_tags(Resource=fn.arn)["Tags"] == tags
    lam.untag_resource(Resource=fn.arn, TagKeys=["aws-cdk:path", "a b"])
    assert lam.list_tags(Resource=fn.arn)["Tags"] == {"unicodé": "välue", "e": ""}


def test_tags_survive_configuration_updates_and_publish(lam):
    fn = create_function(lam, Tags={"keep": "me"})
    update_config(lam, fn.name, Description="changed")
    publish(lam, fn.name)
    assert lam.list_tags(Resource=fn.arn)["Tags"] == {"keep": "me"}


def test_function_without_tags_lists_empty(lam):
    fn = create_function(lam)
    assert lam.list_tags(Resource=fn.arn)["Tags"] == {}


def test_tags_on_missing_function(lam):
    arn = function_arn(unique("notags"))
    with expect_error("ResourceNotFoundException", 404):
        lam.list_tags(Resource=arn)
    with expect_error("ResourceNotFoundException", 404):
        lam.tag_resource(Resource=arn, Tags={"a": "b"})
    with expect_error("ResourceNotFoundException", 404):
        lam.untag_resource(Resource=arn, TagKeys=["a"])


@pytest.mark.parametrize("qualifier", ["1", "$LATEST", "live"])
def test_tags_on_versions_and_aliases_are_refused(lam, qualifier):
    fn = create_function(lam, Tags={"k": "v"})
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    with expect_error("InvalidParameterValueException", 400, message_contains=(
            "Tags on function aliases and versions are not supported")):
        lam.tag_resource(Resource=function_arn(fn.name, qualifier), Tags={"x": "y"})
    assert lam.list_tags(Resource=fn.arn)["Tags"] == {"k": "v"}


def test_tag_resource_with_a_non_lambda_arn(lam):
    with expect_error("ValidationException", 400, message_contains="at 'resource'"):
        lam.tag_resource(Resource="arn:aws:something", Tags={"a": "b"})


def test_tags_are_deleted_with_the_function(lam):
    fn = create_function(lam, Tags={"old": "tag"})
    lam.delete_function(FunctionName=fn.name)
    again = create_function(lam, fn.name)
    assert lam.list_tags(Resource=again.arn)["Tags"] == {}


# ------------------------------------------------------------------------------------------
# Resource-based policy
# ------------------------------------------------------------------------------------------


def test_add_permission_service_principal_statement(lam):
    fn = create_function(lam)
    resp = lam.add_permission(
        FunctionName=fn.name, StatementId="s3-invoke", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket",
        SourceAccount="123456789012",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    statement = json.loads(resp["Statement"])
    assert statement == {
        "Sid": "s3-invoke",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": function_arn(fn.name),
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": "123456789012"},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
        },
    }


def test_add_permission_account_principal_and_get_policy(lam):
    fn = create_function(lam)
    lam.add_permission(FunctionName=fn.name, StatementId="xaccount",
                       Action="lambda:InvokeFunction", Principal="111122223333")
    lam.add_permission(FunctionName=fn.name, StatementId="sns",
                       Action="lambda:InvokeFunction", Principal="sns.amazonaws.com")
    resp = lam.get_policy(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert UUID_RE.match(resp["RevisionId"])
    policy = json.loads(resp["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert policy["Id"] == "default"
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert sorted(by_sid) == ["sns", "xaccount"]
    assert by_sid["xaccount"] == {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "lambda:InvokeFunction",
        "Resource": function_arn(fn.name),
    }
    assert by_sid["sns"]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert by_sid["sns"]["Effect"] == "Allow"


def test_remove_permission(lam):
    fn = create_function(lam)
    lam.add_permission(FunctionName=fn.name, StatementId="one",
                       Action="lambda:InvokeFunction", Principal="events.amazonaws.com")
    lam.add_permission(FunctionName=fn.name, StatementId="two",
                       Action="lambda:GetFunction", Principal=ACCOUNT)
    resp = lam.remove_permission(FunctionName=fn.name, StatementId="one")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fn.name)["Policy"])
            ["Statement"]]
    assert sids == ["two"]
    lam.remove_permission(FunctionName=fn.name, StatementId="two")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn.name)


def test_get_policy_without_policy(lam):
    fn = create_function(lam)
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn.name)
    with expect_error("ResourceNotFoundException", 404):
        lam.remove_permission(FunctionName=fn.name, StatementId="none")


def test_add_permission_wildcard_principal(lam):
    fn = create_function(lam)
    resp = lam.add_permission(FunctionName=fn.name, StatementId="anyone",
                              Action="lambda:InvokeFunction", Principal="*",
                              SourceAccount=ACCOUNT)
    statement = json.loads(resp["Statement"])
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}


def test_add_permission_invalid_statement_id(lam_raw):
    fn = create_function(lam_raw)
    with expect_error("ValidationException", 400, message_contains="at 'statementId'"):
        lam_raw.add_permission(FunctionName=fn.name, StatementId="example.com",
                               Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")


def test_remove_unknown_statement(lam):
    fn = create_function(lam)
    lam.add_permission(FunctionName=fn.name, StatementId="keep",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    with expect_error("ResourceNotFoundException", 404,
                      message_contains="Statement nope is not found in resource policy."):
        lam.remove_permission(FunctionName=fn.name, StatementId="nope")
    sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fn.name)["Policy"])
            ["Statement"]]
    assert sids == ["keep"]


def test_duplicate_statement_id_conflicts(lam):
    fn = create_function(lam)
    lam.add_permission(FunctionName=fn.name, StatementId="dup",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    with expect_error("ResourceConflictException", 409,
                      message_contains="The statement id (dup) provided already exists."):
        lam.add_permission(FunctionName=fn.name, StatementId="dup",
                           Action="lambda:InvokeFunction", Principal="sns.amazonaws.com")
    statements = json.loads(lam.get_policy(FunctionName=fn.name)["Policy"])["Statement"]
    assert len(statements) == 1
    assert statements[0]["Principal"] == {"Service": "s3.amazonaws.com"}


def test_add_permission_stale_revision(lam):
    fn = create_function(lam)
    with expect_error("PreconditionFailedException", 412, message_contains=(
            "The Revision Id provided does not match the latest Revision Id")):
        lam.add_permission(FunctionName=fn.name, StatementId="rev",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                           RevisionId="00000000-0000-4000-8000-000000000002")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn.name)
    # The current function RevisionId is accepted, and the statement is then added.
    current = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    lam.add_permission(FunctionName=fn.name, StatementId="rev", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", RevisionId=current)
    with expect_error("PreconditionFailedException", 412):
        lam.remove_permission(FunctionName=fn.name, StatementId="rev",
                              RevisionId="00000000-0000-4000-8000-000000000003")
    sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fn.name)["Policy"])
            ["Statement"]]
    assert sids == ["rev"]


def test_permissions_per_qualifier(lam):
    fn = create_function(lam)
    publish(lam, fn.name)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    resp = lam.add_permission(FunctionName=fn.name, Qualifier="live", StatementId="alias-only",
                              Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    assert json.loads(resp["Statement"])["Resource"] == function_arn(fn.name, "live")
    qualified = json.loads(lam.get_policy(FunctionName=fn.name, Qualifier="live")["Policy"])
    assert [s["Sid"] for s in qualified["Statement"]] == ["alias-only"]
    # The alias policy is separate from the unqualified function's policy.
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn.name)
    # name:qualifier form addresses the same policy.
    same = json.loads(lam.get_policy(FunctionName=f"{fn.name}:live")["Policy"])
    assert same == qualified
    lam.remove_permission(FunctionName=fn.name, Qualifier="live", StatementId="alias-only")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn.name, Qualifier="live")
    # Unknown alias / version qualifiers are not found.
    with expect_error("ResourceNotFoundException", 404, message_contains=(
            f"Cannot find alias arn: {function_arn(fn.name, 'nosuch')}")):
        lam.add_permission(FunctionName=fn.name, Qualifier="nosuch", StatementId="x",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    with expect_error("ResourceNotFoundException", 404,
                      message_contains=function_arn(fn.name, "42")):
        lam.add_permission(FunctionName=fn.name, Qualifier="42", StatementId="x",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")


def test_add_permission_cannot_target_latest(lam):
    fn = create_function(lam)
    with expect_error("InvalidParameterValueException", 400,
                      message_contains="We currently do not support adding policies for $LATEST."):
        lam.add_permission(FunctionName=fn.name, Qualifier="$LATEST", StatementId="latest",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")


def test_add_permission_invalid_action(lam_raw):
    fn = create_function(lam_raw)
    with expect_error({"ValidationException": 400, "InvalidParameterValueException": 400}):
        lam_raw.add_permission(FunctionName=fn.name, StatementId="bad",
                               Action="s3:GetObject", Principal="s3.amazonaws.com")
    with expect_error("ResourceNotFoundException", 404):
        lam_raw.get_policy(FunctionName=fn.name)


def test_policy_on_missing_function(lam):
    name = unique("nopolicy")
    with expect_error("ResourceNotFoundException", 404, message_contains=function_arn(name)):
        lam.add_permission(FunctionName=name, StatementId="x", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com")
    with expect_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=name)
    with expect_error("ResourceNotFoundException", 404):
        lam.remove_permission(FunctionName=name, StatementId="x")


@pytest.mark.parametrize("ident", ["full-arn", "partial-arn"])
def test_policy_accepts_arn_forms(lam, ident):
    fn = create_function(lam)
    name = function_arn(fn.name) if ident == "full-arn" else f"{ACCOUNT}:function:{fn.name}"
    lam.add_permission(FunctionName=name, StatementId="arnform",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert policy["Statement"][0]["Resource"] == function_arn(fn.name)
    lam.remove_permission(FunctionName=name, StatementId="arnform")
