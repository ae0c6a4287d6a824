"""Helpers of the front-door suite: functions from source, zips with vendored packages
(Powertools), public URLs, polling."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid
import zipfile
from pathlib import Path

import support

ACCOUNT = support.ACCOUNT

# Powertools for AWS Lambda (Python), vendored into function zips. Pinned major: the resolver
# classes and their event shapes are what the tests exercise.
POWERTOOLS = os.environ.get("KINDLING_POWERTOOLS_SPEC", "aws-lambda-powertools>=3,<4")

_vendor_lock = threading.Lock()
_vendored: dict[str, Path] = {}


def unique(prefix: str = "fd") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def vendor(spec: str, into: Path) -> Path:
    """`pip install --target` of `spec` (once per directory and process); returns the directory.
    The packages are pure Python, so the host's pip picks what the runtime can import."""
    with _vendor_lock:
        if spec in _vendored:
            return _vendored[spec]
        target = into / ("vendor-" + uuid.uuid4().hex[:8])
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(target), spec]
        subprocess.run(cmd, check=True, timeout=600)
        _vendored[spec] = target
        return target


def zip_with(files: dict[str, str | bytes], vendored: Path | None = None) -> bytes:
    """A deployment package: `files` at the root, plus every file under `vendored`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if vendored is not None:
            for path in sorted(vendored.rglob("*")):
                rel = path.relative_to(vendored)
                if path.is_file() and "__pycache__" not in rel.parts:
                    z.write(path, rel.as_posix())
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def powertools_zip(app_source: str, workdir: Path, extra: dict[str, str | bytes] | None = None) -> bytes:
    """A zip of `app.py` (handler `app.handler`) with Powertools vendored next to it — the way
    a Powertools app is packaged for Lambda without a layer. The API Gateway suites build their
    apps with the same helper."""
    files = {"app.py": app_source, **(extra or {})}
    return zip_with(files, vendor(POWERTOOLS, workdir))


def create_python_function(lam, source: str | None = None, *, zip_bytes: bytes | None = None,
                           name: str | None = None, **kwargs) -> str:
    """Creates a Python function with handler `app.handler` and waits until it is Active."""
    name = name or unique()
    if zip_bytes is None:
        zip_bytes = zip_with({"app.py": source or ""})
    support.create_function(lam, name, zip_bytes=zip_bytes, Handler="app.handler", **kwargs)
    return name


def public_url(lam, name: str, qualifier: str | None = None, **config) -> str:
    """Creates an AuthType NONE URL and the resource-policy statement it needs; its URL."""
    q = {"Qualifier": qualifier} if qualifier else {}
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE", **config, **q)
    lam.add_permission(FunctionName=name, StatementId="public-url", Principal="*",
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE", **q)
    return url["FunctionUrl"]
