"""Helpers for the tests that run the bootstraps under the real server (test_server_*.py).

They reuse the end-to-end suite's server harness (tests/e2e/kindling_e2e.py): the real
`kindling serve` on a free port with a temporary data directory, driven through boto3.
"""

import base64
import io
import json
import os
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import kindling_e2e as k  # noqa: E402

ROLE = k.ROLE
unique = k.unique
wait_for = k.wait_for

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "_X_AMZN_TRACE_ID"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    path = Path(env) if env else REPO / "target" / "debug" / "kindling"
    if not path.is_file():
        raise RuntimeError(f"kindling binary not found at {path}: build it with "
                           "`cargo build -p kindling-server` or set KINDLING_BIN")
    return path


def start_server(tmp_path_factory, *args: str) -> "k.KindlingServer":
    logs = tmp_path_factory.mktemp("server-log")
    srv = k.KindlingServer(binary(), tmp_path_factory.mktemp("data"), logs / "kindling.log",
                           ["--idle-timeout", "600", *args])
    return srv.start()


def client(url: str):
    return k.make_client(url, read_timeout=180)


def zip_files(files: dict, trees=()) -> bytes:
    """A deployment package from {path: text|bytes} and (directory, prefix) trees."""
    return k.make_zip(files, [(Path(src), prefix) for src, prefix in trees])


def zip_tree(directory: str) -> bytes:
    """Every file under `directory`, at the zip's root (an unpacked jar as Lambda unzips it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, _, names in sorted(os.walk(directory)):
            for name in sorted(names):
                full = os.path.join(root, name)
                zf.write(full, os.path.relpath(full, directory))
    return buf.getvalue()


def create(lam, runtime: str, handler: str, code: bytes, name: str | None = None, **kwargs) -> str:
    name = name or unique("rt")
    params = {"FunctionName": name, "Runtime": runtime, "Role": ROLE, "Handler": handler,
              "Code": {"ZipFile": code}, "Timeout": 60, "MemorySize": 512}
    params.update(kwargs)
    lam.create_function(**params)
    k.wait_active(lam, name)
    return name


def invoke(lam, name: str, payload=None, tail: bool = True) -> "k.Invocation":
    return k.invoke(lam, name, payload if payload is not None else {}, tail=tail)


def log_lines(inv) -> list[str]:
    return (inv.log or "").splitlines()


def api_error(fn, *args, **kwargs) -> tuple[str, int, str]:
    """Calls a boto3 operation expecting an API error; returns (code, status, message)."""
    from botocore.exceptions import ClientError

    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return k.error_info(e)
    raise AssertionError(f"expected an API error from {fn}")


def host_jdk_majors() -> set[int]:
    """Feature versions of the JDKs under /usr/lib/jvm (as Kindling finds them)."""
    majors = set()
    for home in Path("/usr/lib/jvm").glob("*"):
        release = home / "release"
        if (home / "bin" / "java").exists() and release.is_file():
            for line in release.read_text().splitlines():
                if line.startswith("JAVA_VERSION="):
                    v = line.split("=", 1)[1].strip('"')
                    first = v.split(".")[0]
                    majors.add(int(v.split(".")[1]) if first == "1" else int(first.split("-")[0]))
    return majors


def decode_log(result: str | None) -> str:
    return base64.b64decode(result).decode() if result else ""


__all__ = ["json"]
