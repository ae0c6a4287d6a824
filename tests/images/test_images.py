"""Container-image functions without Docker: images written as OCI layouts here, pushed to
Kindling's registry with skopeo, created and updated with boto3, invoked; the registry's
protocol errors; a corrupt layer refused at create."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

import oci

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/image-fn"


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def error_code(body: bytes) -> str:
    return json.loads(body)["errors"][0]["code"]


def invoke(lam, name: str, event: dict) -> dict:
    res = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = json.loads(res["Payload"].read())
    assert "FunctionError" not in res, payload
    return payload


def rust_layout(tmp: Path, binary: Path, marker: str, tag: str) -> Path:
    """`FROM scratch` + the static lambda_runtime binary as /bootstrap."""
    layer = oci.tar_layer([
        ("bootstrap", binary, 0o755),
        ("var/", None, 0o755),
        ("var/task/", None, 0o755),
        ("var/task/marker.txt", marker.encode(), 0o644),
    ])
    layout = tmp / f"rust-{tag}"
    oci.write_layout(layout, [layer], {
        "Entrypoint": ["/bootstrap"], "WorkingDir": "/var/task",
        "Env": ["IMAGE_VAR=from-the-image", "PATH=/usr/bin:/bin"],
    }, tag=tag)
    return layout


def test_registry_speaks_the_distribution_protocol(server, registry):
    base = server.url
    status, headers, _ = http("GET", f"{base}/v2/")
    assert status == 200
    assert headers.get("docker-distribution-api-version") == "registry/2.0"
    missing = "sha256:" + "0" * 64
    status, _, body = http("GET", f"{base}/v2/proto/blobs/{missing}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")
    status, _, body = http("HEAD", f"{base}/v2/proto/blobs/{missing}")
    assert status == 404
    status, _, body = http("GET", f"{base}/v2/proto/blobs/sha256:nothex")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    # A monolithic upload whose content does not match its digest.
    status, _, body = http("POST", f"{base}/v2/proto/blobs/uploads/?digest={missing}", b"data",
                           {"Content-Type": "application/octet-stream"})
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    status, _, body = http("GET", f"{base}/v2/proto/manifests/latest")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    status, _, body = http("GET", f"{base}/v2/UPPER/tags/list")
    assert (status, error_code(body)) == (400, "NAME_INVALID")
    # API Gateway v2's paths stay API Gateway's (its list of HTTP APIs, not a registry error).
    status, _, body = http("GET", f"{base}/v2/apis")
    assert status == 200 and "items" in json.loads(body), (status, body)
    # ...while a repository named like one of its resources is the registry's.
    status, _, body = http("GET", f"{base}/v2/apis/manifests/latest")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    # Chunked upload with Content-Range, then the blob by HEAD.
    data = b"0123456789" * 100
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = http("POST", f"{base}/v2/proto/blobs/uploads/")
    assert status == 202
    location = f"{base}{headers['location']}"
    status, headers, _ = http("PATCH", location, data[:600], {"Content-Range": "0-599"})
    assert (status, headers["range"]) == (202, "0-599")
    status, _, body = http("PATCH", location, data[600:], {"Content-Range": "100-499"})
    assert (status, error_code(body)) == (416, "BLOB_UPLOAD_INVALID")
    status, _, _ = http("PATCH", location, data[600:], {"Content-Range": "600-999"})
    assert status == 202
    status, headers, _ = http("PUT", f"{location}?digest={digest}")
    assert status == 201 and headers["docker-content-digest"] == digest
    status, headers, _ = http("HEAD", f"{base}/v2/proto/blobs/{digest}")
    assert status == 200 and headers["content-length"] == "1000"


def test_scratch_rust_image_runs_and_updates(server, registry, lam, static_echo, tmp_path):
    v1 = rust_layout(tmp_path, static_echo, "image-v1", "v1")
    oci.push(v1, "v1", f"{registry}/kindling/rust-echo:v1")
    port = registry.rsplit(":", 1)[1]
    uri = f"{ACCOUNT}.dkr.ecr.us-east-1.localhost:{port}/kindling/rust-echo:v1"
    created = lam.create_function(FunctionName="img-rust", PackageType="Image",
                                  Code={"ImageUri": uri}, Role=ROLE, Timeout=30)
    assert created["PackageType"] == "Image"
    assert "Runtime" not in created and "Handler" not in created
    got = lam.get_function(FunctionName="img-rust")
    assert got["Code"]["RepositoryType"] == "ECR"
    assert got["Code"]["ImageUri"] == uri
    resolved = got["Code"]["ResolvedImageUri"]
    assert resolved.startswith(f"{ACCOUNT}.dkr.ecr.us-east-1.localhost:{port}/kindling/rust-echo@sha256:")
    assert got["Configuration"]["CodeSha256"] == resolved.rsplit(":", 1)[1]

    assert invoke(lam, "img-rust", {"hello": "image"}) == {"hello": "image"}
    info = invoke(lam, "img-rust", {"env": ["IMAGE_VAR", "AWS_LAMBDA_FUNCTION_NAME"]})
    assert info["marker"] == "image-v1"
    assert info["env"] == {"IMAGE_VAR": "from-the-image", "AWS_LAMBDA_FUNCTION_NAME": "img-rust"}

    v2 = rust_layout(tmp_path, static_echo, "image-v2", "v2")
    oci.push(v2, "v2", f"{registry}/kindling/rust-echo:v2")
    plain = f"{registry}/kindling/rust-echo:v2"
    updated = lam.update_function_code(FunctionName="img-rust", ImageUri=plain)
    assert updated["CodeSha256"] != got["Configuration"]["CodeSha256"]
    lam.get_waiter("function_updated_v2").wait(FunctionName="img-rust")
    assert invoke(lam, "img-rust", {"info": True})["marker"] == "image-v2"

    # ImageConfig overrides: the working directory and an environment from the function.
    lam.update_function_configuration(FunctionName="img-rust",
                                      ImageConfig={"WorkingDirectory": "/var/task"},
                                      Environment={"Variables": {"IMAGE_VAR": "from-the-function"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName="img-rust")
    info = invoke(lam, "img-rust", {"env": "IMAGE_VAR"})
    assert info["env"] == {"IMAGE_VAR": "from-the-function"}
    conf = lam.get_function_configuration(FunctionName="img-rust")
    assert conf["ImageConfigResponse"]["ImageConfig"] == {"WorkingDirectory": "/var/task"}


def python_layout(tmp: Path, handler_source: str) -> Path:
    """An image carrying this host's Python (relocated to /usr/local), awslambdaric, a handler."""
    # The interpreter running this test (a venv's python is a link to it), not a PATH shim.
    real_python = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    ver = f"python{sysconfig.get_python_version()}"
    skip = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
            "__pycache__", "dist-packages"}
    entries: list[tuple[str, object, int]] = [("usr/", None, 0o755), ("usr/local/", None, 0o755),
                                             ("usr/local/bin/", None, 0o755),
                                             ("usr/local/lib/", None, 0o755)]
    entries.append(("usr/local/bin/python3", real_python, 0o755))
    libs: set[Path] = set(oci.ldd(real_python))
    for p in sorted(stdlib.rglob("*")):
        rel = p.relative_to(stdlib)
        if any(part in skip or part.startswith("config-") for part in rel.parts):
            continue
        inside = f"usr/local/lib/{ver}/{rel.as_posix()}"
        if p.is_dir():
            entries.append((inside + "/", None, 0o755))
        elif p.is_file():
            entries.append((inside, p, 0o644))
            if p.suffix == ".so":
                libs.update(oci.ldd(p))
    for name in ["awslambdaric", "simplejson", "snapshot_restore_py.py"]:
        src = site / name
        dest = f"usr/local/lib/{ver}/site-packages/{name}"
        if src.is_dir():
            for p in sorted(src.rglob("*")):
                if "__pycache__" in p.parts:
                    continue
                inside = f"{dest}/{p.relative_to(src).as_posix()}"
                entries.append((inside + "/", None, 0o755) if p.is_dir() else (inside, p, 0o644))
                if p.suffix == ".so":
                    libs.update(oci.ldd(p))
        else:
            entries.append((dest, src, 0o644))
    for so in site.glob("runtime_client*.so"):
        entries.append((f"usr/local/lib/{ver}/site-packages/{so.name}", so, 0o755))
        libs.update(oci.ldd(so))
    base = []
    for lib in sorted(libs):
        if lib.name.startswith("ld-linux"):
            base.append((str(lib).lstrip("/"), Path(os.path.realpath(lib)), 0o755))
        else:
            base.append((f"usr/local/lib/{lib.name}", Path(os.path.realpath(lib)), 0o755))
    base_layer = oci.tar_layer([("lib64/", None, 0o755)] + base + entries)
    app_layer = oci.tar_layer([("var/", None, 0o755), ("var/task/", None, 0o755),
                               ("var/task/app.py", handler_source.encode(), 0o644)])
    layout = tmp / "python"
    oci.write_layout(layout, [base_layer, app_layer], {
        "Entrypoint": ["/usr/local/bin/python3", "-m", "awslambdaric"],
        "Cmd": ["app.handler"],
        "WorkingDir": "/var/task",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=/usr/local/lib",
                "PYTHONHOME=/usr/local"],
    }, tag="v1")
    return layout


def test_python_image_with_awslambdaric(server, registry, lam, tmp_path):
    handler = (
        "import os, sys\n"
        "def handler(event, context):\n"
        "    print('image-log-line', event.get('a'))\n"
        "    return {'echo': event, 'python': sys.version.split()[0],\n"
        "            'fn': context.function_name, 'cwd': os.getcwd()}\n"
        "def other(event, context):\n"
        "    return 'other handler'\n"
    )
    layout = python_layout(tmp_path, handler)
    oci.push(layout, "v1", f"{registry}/kindling/python-ric:v1")
    lam.create_function(FunctionName="img-python", PackageType="Image",
                        Code={"ImageUri": f"{registry}/kindling/python-ric:v1"}, Role=ROLE,
                        Timeout=60, MemorySize=256)
    out = invoke(lam, "img-python", {"a": 1})
    assert out["echo"] == {"a": 1}
    assert out["fn"] == "img-python"
    assert out["cwd"] == "/var/task"
    # Its log lines are in the function's log group, as a zip function's are.
    logs = boto3.client("logs")
    group = "/aws/lambda/img-python"
    lines = wait_for_lines(logs, group, lambda ms: any("image-log-line 1" in m for m in ms)
                           and any(m.startswith("REPORT RequestId") for m in ms))
    assert any(m.startswith("START RequestId") for m in lines)
    # ImageConfig.Command picks another handler, as on Lambda; LoggingConfig is honoured.
    lam.update_function_configuration(FunctionName="img-python",
                                      ImageConfig={"Command": ["app.other"]},
                                      LoggingConfig={"LogFormat": "JSON"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="img-python")
    assert invoke(lam, "img-python", {}) == "other handler"
    lines = wait_for_lines(logs, group, lambda ms: any('"platform.report"' in m for m in ms))
    assert any('"platform.start"' in m for m in lines)


def wait_for_lines(logs, group: str, done, timeout: float = 20.0) -> list[str]:
    """The group's messages once `done(messages)` holds (log lines reach the file within
    milliseconds of the invocation; polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            messages = [e["message"] for p in pages for e in p["events"]]
        except logs.exceptions.ResourceNotFoundException:
            messages = []
        if done(messages):
            return messages
        if time.monotonic() > deadline:
            raise AssertionError(f"{group}: expected lines not found in {messages!r}")
        time.sleep(0.2)


def test_bad_images_are_refused_at_create(server, registry, lam, static_echo, tmp_path):
    port = registry.rsplit(":", 1)[1]
    # A layer whose bytes are what the manifest says (the digest matches) but not a tar.gz.
    good = gzip.compress(b"x" * 10000)
    corrupt = good[: len(good) // 2]
    layout = tmp_path / "corrupt"
    oci.write_layout(layout, [(corrupt, b"x")], {"Entrypoint": ["/bootstrap"]}, tag="bad")
    oci.push(layout, "bad", f"{registry}/kindling/corrupt:bad")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(FunctionName="img-corrupt", PackageType="Image",
                            Code={"ImageUri": f"{registry}/kindling/corrupt:bad"}, Role=ROLE)
    assert "corrupt" in str(e.value), e.value
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(FunctionName="img-missing", PackageType="Image",
                            Code={"ImageUri": f"{registry}/kindling/nothing:v1"}, Role=ROLE)
    assert "does not exist" in str(e.value)
    v1 = rust_layout(tmp_path, static_echo, "x", "v1")
    oci.push(v1, "v1", f"{registry}/kindling/refusals:v1")
    uri = f"{ACCOUNT}.dkr.ecr.us-east-1.localhost:{port}/kindling/refusals:v1"
    for extra, word in [({"Runtime": "python3.12"}, "Runtime"), ({"Handler": "a.b"}, "Handler"),
                        ({"Layers": [f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:l:1"]}, "Layers")]:
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.create_function(FunctionName="img-refused", PackageType="Image",
                                Code={"ImageUri": uri}, Role=ROLE, **extra)
        assert word in str(e.value)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_function(FunctionName="img-refused", PackageType="Image",
                            Code={"ImageUri": "docker.io/library/alpine:3"}, Role=ROLE)


def test_shared_mode_registry_wants_an_operators_key(static_echo, tmp_path):
    """`--shared`: pushing needs Basic credentials (an operator's key id and secret); a server in
    process isolation resolves images but refuses to run them, saying why."""
    import boto3
    import support
    from botocore.config import Config

    from harness import kindling_binary

    creds = tmp_path / "credentials"
    creds.write_text("AKIDIMAGES s3cretimages\n")
    srv = support.KindlingServer(kindling_binary(), tmp_path / "data", tmp_path / "kindling.log",
                                 extra_args=["--shared", "--credentials", str(creds),
                                             "--isolation", "process"])
    srv.start()
    try:
        registry = srv.url.split("://", 1)[1]
        status, headers, body = http("GET", f"{srv.url}/v2/")
        assert (status, error_code(body)) == (401, "UNAUTHORIZED")
        assert headers["www-authenticate"].startswith("Basic ")
        layout = rust_layout(tmp_path, static_echo, "shared", "v1")
        with pytest.raises(RuntimeError, match="(?i)unauthorized|authentication"):
            oci.push(layout, "v1", f"{registry}/shared/app:v1")
        with pytest.raises(RuntimeError):
            oci.push(layout, "v1", f"{registry}/shared/app:v1", creds="AKIDIMAGES:wrong")
        oci.push(layout, "v1", f"{registry}/shared/app:v1", creds="AKIDIMAGES:s3cretimages")
        lam = boto3.client("lambda", endpoint_url=srv.url, aws_access_key_id="AKIDIMAGES",
                           aws_secret_access_key="s3cretimages",
                           config=Config(retries={"max_attempts": 1}))
        lam.create_function(FunctionName="img-shared", PackageType="Image",
                            Code={"ImageUri": f"{registry}/shared/app:v1"}, Role=ROLE)
        res = lam.invoke(FunctionName="img-shared", Payload=b"{}")
        assert res["FunctionError"] == "Unhandled"
        payload = json.loads(res["Payload"].read())
        assert "namespaces isolation" in payload["errorMessage"], payload
    finally:
        support.stop_cleanly(srv)
