#!/usr/bin/env python3
"""Container-image functions next to zip functions, same binary, same server, same run.

The function is tests/fixtures/rust-echo (lambda_runtime) built statically (crt-static) so it
runs both as a `provided.al2023` zip (`bootstrap`) and as a `FROM scratch` image (`/bootstrap`,
pushed with skopeo into Kindling's registry). Kindling runs with `--isolation namespaces` (images
need it). Measured, alternating zip and image so background load falls on both alike:

* cold start, first invoke after CreateFunction, each function with its own package: the zip
  is unpacked, the image's layers are unpacked into its root (once per image digest);
* cold start of an image whose root is already unpacked (other functions of the same image);
* warm latency: one keep-alive connection, unsigned Invoke (local mode).

Client round trip, and `Init Duration` from the REPORT line (`X-Amz-Log-Type: Tail`).
Usage: images.py --kindling BIN --fn STATIC_BINARY [--cold N] [--warm N] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "images"))

import oci  # noqa: E402

ROLE = "arn:aws:iam::000000000000:role/bench"


class Server:
    """`kindling serve` on a free loopback port with its own data dir."""

    def __init__(self, binary: Path, data_dir: Path, log: Path, extra: list[str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = log
        cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", str(data_dir), *extra]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"kindling did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    """One keep-alive HTTP/1.1 connection to Kindling (unsigned: local mode)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        self.conn.request(method, path, body=body, headers=headers or {})
        res = self.conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()

    def create(self, spec: dict) -> None:
        status, _, body = self.call("POST", "/2015-03-31/functions", json.dumps(spec).encode(),
                                    {"Content-Type": "application/json"})
        if status != 201:
            raise RuntimeError(f"CreateFunction {spec['FunctionName']}: {status} {body[:500]!r}")

    def invoke(self, name: str, tail: bool = False) -> tuple[float, float | None]:
        headers = {"X-Amz-Log-Type": "Tail"} if tail else {}
        t0 = time.perf_counter()
        status, h, body = self.call("POST", f"/2015-03-31/functions/{name}/invocations",
                                    b'{"bench":1}', headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200 or "x-amz-function-error" in h or body != b'{"bench":1}':
            raise RuntimeError(f"invoke {name}: {status} {h} {body[:300]!r}")
        init = None
        if tail:
            log = base64.b64decode(h.get("x-amz-log-result", "")).decode(errors="replace")
            m = re.search(r"Init Duration: ([0-9.]+) ms", log)
            init = float(m.group(1)) if m else None
        return elapsed, init


def zip_of(binary: bytes, marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data, mode in [("bootstrap", binary, 0o755), ("marker.txt", marker.encode(), 0o644)]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def image_layout(tmp: Path, binary: Path, marker: str) -> Path:
    layer = oci.tar_layer([("bootstrap", binary, 0o755), ("var/", None, 0o755),
                           ("var/task/", None, 0o755),
                           ("var/task/marker.txt", marker.encode(), 0o644)])
    layout = tmp / f"img-{marker}"
    oci.write_layout(layout, [layer], {"Entrypoint": ["/bootstrap"], "WorkingDir": "/var/task"},
                     tag="v1")
    return layout


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def row(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<44} (none)"
    return (f"  {label:<44} n={len(values):<4} p50={pct(values, 50):8.2f}  "
            f"p90={pct(values, 90):8.2f}  max={max(values):8.2f}  mean={statistics.fmean(values):8.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", required=True, type=Path)
    ap.add_argument("--fn", required=True, type=Path, help="static rust-echo binary")
    ap.add_argument("--cold", type=int, default=8)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--rev", default="")
    args = ap.parse_args()
    binary = args.fn.read_bytes()
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kindling-bench-images-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "data").mkdir()
        srv = Server(args.kindling, tmp / "data", tmp / "kindling.log", ["--isolation", "namespaces"])
        try:
            registry = f"127.0.0.1:{srv.port}"
            c = Client(srv.port)
            # Images: one per cold sample (distinct digests), plus one shared by the cached runs.
            t0 = time.perf_counter()
            for i in range(args.cold + 1):
                oci.push(image_layout(tmp, args.fn, f"m{i}"), "v1", f"{registry}/bench/echo{i}:v1")
            push_ms = (time.perf_counter() - t0) * 1000 / (args.cold + 1)
            cold = {"zip": [], "image": [], "image-cached": []}
            init = {"zip": [], "image": [], "image-cached": []}
            create = {"zip": [], "image": []}
            shared = f"{registry}/bench/echo{args.cold}:v1"
            # Warm the shared image's root once.
            c.create({"FunctionName": "shared-0", "PackageType": "Image", "Role": ROLE,
                      "Code": {"ImageUri": shared}})
            c.invoke("shared-0")
            for i in range(args.cold):
                time.sleep(0.25)
                t = time.perf_counter()
                c.create({"FunctionName": f"zip-{i}", "Runtime": "provided.al2023",
                          "Handler": "x", "Role": ROLE,
                          "Code": {"ZipFile": base64.b64encode(zip_of(binary, f"z{i}")).decode()}})
                create["zip"].append((time.perf_counter() - t) * 1000)
                ms, d = c.invoke(f"zip-{i}", tail=True)
                cold["zip"].append(ms)
                init["zip"].append(d or 0)
                time.sleep(0.25)
                t = time.perf_counter()
                c.create({"FunctionName": f"img-{i}", "PackageType": "Image", "Role": ROLE,
                          "Code": {"ImageUri": f"{registry}/bench/echo{i}:v1"}})
                create["image"].append((time.perf_counter() - t) * 1000)
                ms, d = c.invoke(f"img-{i}", tail=True)
                cold["image"].append(ms)
                init["image"].append(d or 0)
                time.sleep(0.25)
                c.create({"FunctionName": f"shared-{i + 1}", "PackageType": "Image", "Role": ROLE,
                          "Code": {"ImageUri": shared}})
                ms, d = c.invoke(f"shared-{i + 1}", tail=True)
                cold["image-cached"].append(ms)
                init["image-cached"].append(d or 0)
            warm: dict[str, list[float]] = {"zip": [], "image": []}
            for name in ("zip-0", "img-0"):
                for _ in range(50):
                    c.invoke(name)
            # Alternate blocks so background load falls on both alike.
            block = max(1, args.warm // 10)
            for _ in range(10):
                for kind, name in (("zip", "zip-0"), ("image", "img-0")):
                    for _ in range(block):
                        warm[kind].append(c.invoke(name)[0])
        finally:
            srv.stop()
    out.append(f"Kindling {args.rev}: container-image vs zip, same static rust-echo "
               f"({len(binary) // 1024} KiB, lambda_runtime), --isolation namespaces, "
               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, loadavg {os.getloadavg()[0]:.1f}")
    out.append(f"skopeo copy (oci: -> Kindling's registry), one image: {push_ms:.0f} ms")
    out.append("CreateFunction (ms; zip: verify + store; image: resolve, re-hash and walk every layer)")
    out.append(row("zip", create["zip"]))
    out.append(row("image", create["image"]))
    out.append("Cold start, client round trip (ms)")
    out.append(row("zip (unzip included)", cold["zip"]))
    out.append(row("image (layers unpacked into its root)", cold["image"]))
    out.append(row("image, root already unpacked", cold["image-cached"]))
    out.append("Cold start, Init Duration from REPORT (ms)")
    out.append(row("zip", init["zip"]))
    out.append(row("image", init["image"]))
    out.append(row("image, root already unpacked", init["image-cached"]))
    out.append("Warm invoke, one keep-alive client, Python http.client (ms)")
    out.append(row("zip", warm["zip"]))
    out.append(row("image", warm["image"]))
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
