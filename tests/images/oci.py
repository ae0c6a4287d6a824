"""Writes OCI image layouts (`oci:` for skopeo) from files, the way `docker build` would lay
an image out, without Docker: gzip'd tar layers, an image config, a manifest, `index.json`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_layer(entries: list[tuple[str, object, int]]) -> tuple[bytes, bytes]:
    """(gzip'd tar, raw tar) of entries: (path, bytes | Path | None for a directory | ("link", target), mode)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            info.mtime = 0
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                data = content.read_bytes() if isinstance(content, Path) else content
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw_bytes = raw.getvalue()
    return gzip.compress(raw_bytes, compresslevel=1, mtime=0), raw_bytes


def write_layout(dest: Path, layers: list[bytes | tuple[bytes, bytes]], config: dict, tag: str = "latest") -> str:
    """Writes an OCI layout at `dest` with `layers` (gzip'd tar, raw tar); returns the manifest digest."""
    if dest.exists():
        shutil.rmtree(dest)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha256(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    descriptors, diff_ids = [], []
    for layer in layers:
        gz, raw = layer if isinstance(layer, tuple) else (layer, gzip.decompress(layer))
        descriptors.append({"mediaType": OCI_LAYER, "digest": put(gz), "size": len(gz)})
        diff_ids.append(sha256(raw))
    cfg = {"architecture": "amd64", "os": "linux", "config": config,
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg_bytes = json.dumps(cfg).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": put(cfg_bytes), "size": len(cfg_bytes)},
                "layers": descriptors}
    m_bytes = json.dumps(manifest).encode()
    m_digest = put(m_bytes)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (dest / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": m_digest, "size": len(m_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    return m_digest


def push(layout: Path, tag: str, target: str, creds: str | None = None) -> None:
    """`skopeo copy oci:<layout>:<tag> docker://<target> --dest-tls-verify=false`."""
    cmd = ["skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker://{target}",
           "--dest-tls-verify=false"]
    if creds:
        cmd += ["--dest-creds", creds]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, HOME=str(layout.parent)))
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo copy failed ({proc.returncode}): {proc.stderr[-3000:]}")


def ldd(path: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(Path(parts[2]))
        elif parts and parts[0].startswith("/"):
            libs.append(Path(parts[0]))
    return libs


def scratch_image(binary: Path, layout: Path, tag: str, marker: str = "") -> str:
    """A `FROM scratch` image: `binary` as /bootstrap (its ENTRYPOINT), WORKDIR /var/task."""
    entries: list[tuple[str, object, int]] = [("bootstrap", binary, 0o755), ("var/", None, 0o755),
                                              ("var/task/", None, 0o755)]
    if marker:
        entries.append(("var/task/marker.txt", marker.encode(), 0o644))
    return write_layout(layout, [tar_layer(entries)],
                        {"Entrypoint": ["/bootstrap"], "WorkingDir": "/var/task"}, tag=tag)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write a FROM-scratch OCI image layout around a "
                                             "static executable (its /bootstrap entry point).")
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--layout", required=True, type=Path)
    ap.add_argument("--tag", default="latest")
    a = ap.parse_args()
    print(scratch_image(a.binary, a.layout, a.tag))
