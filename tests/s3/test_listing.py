"""Listings: v2 continuation tokens and v1 markers through botocore's paginators, delimiters
and common prefixes, start-after, and keys that need `encoding-type=url`."""

import pytest
from botocore.exceptions import ClientError

KEYS = [
    "a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "b/c/4.txt", "d/", "d/e f+g.txt",
    "unicode/é☺.txt", "dots/../../up.txt", "x y/z", "%2F/literal", "tab\tkey",
]


@pytest.fixture
def filled(s3, bucket):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def all_keys_v2(s3, bucket, **kwargs):
    keys, prefixes = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kwargs):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def test_v2_pages_of_every_size_list_every_key_once(s3, filled):
    for size in (1, 2, 5, 1000):
        keys, prefixes = all_keys_v2(s3, filled, PaginationConfig={"PageSize": size})
        assert keys == utf8_sorted(KEYS), size
        assert prefixes == []
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=3)
    assert page["KeyCount"] == 3 and page["IsTruncated"] and page["NextContinuationToken"]
    first = page["Contents"][0]
    assert first["Size"] == len(first["Key"].encode())
    assert first["StorageClass"] == "STANDARD" and first["ETag"].startswith('"')


def test_delimiters_roll_keys_into_common_prefixes(s3, filled):
    keys, prefixes = all_keys_v2(s3, filled, Delimiter="/")
    assert keys == utf8_sorted(["a.txt", "tab\tkey"])
    assert prefixes == utf8_sorted(["%2F/", "b/", "d/", "dots/", "unicode/", "x y/"])
    keys, prefixes = all_keys_v2(s3, filled, Prefix="b/", Delimiter="/",
                                 PaginationConfig={"PageSize": 1})
    assert keys == ["b/1.txt", "b/2.txt"] and prefixes == ["b/c/"]
    keys, prefixes = all_keys_v2(s3, filled, Prefix="d/", Delimiter="/")
    assert keys == ["d/", "d/e f+g.txt"] and prefixes == []
    keys, _ = all_keys_v2(s3, filled, StartAfter="b/c/3.txt")
    assert keys == [k for k in utf8_sorted(KEYS) if k.encode() > b"b/c/3.txt"]


def test_v1_markers(s3, filled):
    keys, prefixes = [], []
    for page in s3.get_paginator("list_objects").paginate(
            Bucket=filled, PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == utf8_sorted(KEYS)
    for page in s3.get_paginator("list_objects").paginate(
            Bucket=filled, Delimiter="/", PaginationConfig={"PageSize": 1}):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert prefixes == utf8_sorted(["%2F/", "b/", "d/", "dots/", "unicode/", "x y/"])
    res = s3.list_objects(Bucket=filled, Marker="b/2.txt", MaxKeys=1)
    assert [o["Key"] for o in res["Contents"]] == ["b/c/3.txt"]


def test_raw_keys_without_url_encoding(s3, filled):
    # botocore asks for encoding-type=url itself; without it, keys come back as XML text.
    s3.meta.events.register_first("before-parameter-build.s3.ListObjectsV2", _no_encoding)
    try:
        res = s3.list_objects_v2(Bucket=filled, Prefix="d/")
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", _no_encoding)
    assert [o["Key"] for o in res["Contents"]] == ["d/", "d/e f+g.txt"]


def _no_encoding(params, **_):
    params["EncodingType"] = None
    params.pop("EncodingType", None)


def test_bad_list_parameters(s3, filled):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=filled, ContinuationToken="!!not-a-token!!")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
