"""Durability and bounded memory: a server killed mid-upload shows no partial object after a
restart (and leaves no stray file), completed objects survive, and large uploads and
downloads stream through a bounded amount of server memory."""

import hashlib
import http.client
import os
import signal
import time
from pathlib import Path

import pytest

import s3support

MB = s3support.MB


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "s3" / "blobs").rglob("*") if p.is_file()]


def test_a_crash_mid_upload_leaves_no_partial_object(server_factory, tmp_path):
    data_dir = tmp_path / "crash"
    srv = server_factory(data_dir=data_dir)
    c = s3support.client("s3", srv.url)
    c.create_bucket(Bucket="crash-test")
    c.put_object(Bucket="crash-test", Key="kept.txt", Body=b"committed before the crash")

    host, port = srv.url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("PUT", "/crash-test/partial.bin")
    conn.putheader("Content-Length", str(64 * MB))
    conn.endheaders()
    for _ in range(16):
        conn.send(b"p" * MB)
    # The bytes are on their way to a temporary file; the process dies now.
    deadline = time.monotonic() + 10
    tmp_dir = data_dir / "s3" / "tmp"
    while not any(tmp_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(tmp_dir.iterdir()), "the upload never reached a temporary file"
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    srv.proc = None
    conn.close()

    srv2 = server_factory(data_dir=data_dir)
    c2 = s3support.client("s3", srv2.url)
    keys = [o["Key"] for o in c2.list_objects_v2(Bucket="crash-test").get("Contents", [])]
    assert keys == ["kept.txt"]
    assert c2.get_object(Bucket="crash-test", Key="kept.txt")["Body"].read() == b"committed before the crash"
    assert s3support.raw(srv2.url, "HEAD", "/crash-test/partial.bin").status == 404
    assert list(tmp_dir.iterdir()) == []
    assert len(blob_files(data_dir)) == 1
    s3support.empty_and_delete(c2, "crash-test")


@pytest.mark.slow
def test_large_transfers_stream_through_bounded_memory(server_factory):
    srv = server_factory()
    c = s3support.client("s3", srv.url)
    c.create_bucket(Bucket="big-transfers")
    size = 512 * MB
    block = hashlib.sha256(b"seed").digest() * (MB // 32)
    before = peak_rss_kib(srv.proc.pid)
    res = s3support.raw(srv.url, "PUT", "/big-transfers/half-gig.bin",
                        headers={"Content-Length": str(size)},
                        chunks=iter([block] * (size // MB)))
    assert res.status == 200, res
    expect = hashlib.md5()
    for _ in range(size // MB):
        expect.update(block)
    assert res.headers["etag"] == f'"{expect.hexdigest()}"'
    host, port = srv.url.split("://")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.request("GET", "/big-transfers/half-gig.bin")
    got = conn.getresponse()
    assert got.status == 200 and int(got.headers["Content-Length"]) == size
    seen = hashlib.md5()
    total = 0
    while chunk := got.read(4 * MB):
        seen.update(chunk)
        total += len(chunk)
    conn.close()
    assert total == size and seen.hexdigest() == expect.hexdigest()
    grown_mib = (peak_rss_kib(srv.proc.pid) - before) / 1024
    print(f"server peak RSS grew by {grown_mib:.1f} MiB for a {size // MB} MiB upload and download")
    assert grown_mib < 64, f"server memory grew by {grown_mib:.0f} MiB"
    c.delete_object(Bucket="big-transfers", Key="half-gig.bin")
    c.delete_bucket(Bucket="big-transfers")
