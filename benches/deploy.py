#!/usr/bin/env python3
"""Deploy benchmark: the seed-shaped SAM application (tests/deploy/sam_app) deployed to one
Kindling by `kindling deploy` and by the SAM CLI (`sam deploy --resolve-s3`), fresh (a new stack
each time) and as a no-change redeploy, in turns so the machine's load falls on both alike.

    benches/deploy.py --kindling target/release/kindling [--reps 5] [--out FILE]

Needs the SAM CLI and python3.11 (for `sam build`) on PATH. Prints a table of wall-clock times
(median, min, max) and the target check (kindling deploy of the application in <= 2 s)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "tests" / "deploy" / "sam_app"
TARGET_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], cwd: Path, env: dict, ok_codes=(0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--rev", default="")
    args = ap.parse_args()
    args.kindling = str(Path(args.kindling).resolve())

    work = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    app = work / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(".aws-sam"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, SAM_CLI_TELEMETRY="0",
               KINDLING_ENDPOINT=f"http://127.0.0.1:{port}", NO_PROXY="127.0.0.1,localhost")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    log = open(work / "kindling.log", "wb")
    server = subprocess.Popen([args.kindling, "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", str(work / "data")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("kindling did not start")
                time.sleep(0.05)
        build_s = timed(["sam", "build"], app, env)
        built = app / ".aws-sam" / "build" / "template.yaml"
        # Warm the SAM CLI's managed bucket stack once (its first creation is not a deploy).
        timed(["sam", "deploy", "--template-file", str(built), "--stack-name", "warmup",
               "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
               "--no-progressbar"], app, env)
        rows: dict[str, list[float]] = {k: [] for k in (
            "kindling deploy (fresh)", "kindling deploy (no change)",
            "sam deploy (fresh)", "sam deploy (no change)")}
        for i in range(args.reps):
            k_stack, s_stack = f"k{i}", f"s{i}"
            rows["kindling deploy (fresh)"].append(timed(
                [args.kindling, "deploy", "-t", str(built), "--stack-name", k_stack], app, env))
            rows["sam deploy (fresh)"].append(timed(
                ["sam", "deploy", "--template-file", str(built), "--stack-name", s_stack,
                 "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
                 "--no-progressbar"], app, env))
            rows["kindling deploy (no change)"].append(timed(
                [args.kindling, "deploy", "-t", str(built), "--stack-name", k_stack], app, env))
            rows["sam deploy (no change)"].append(timed(
                ["sam", "deploy", "--template-file", str(built), "--stack-name", s_stack,
                 "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset",
                 "--no-progressbar", "--no-fail-on-empty-changeset"], app, env))
            if i == 0:
                listed = subprocess.run(
                    [sys.executable, "-m", "awscli", "cloudformation", "list-stack-resources",
                     "--stack-name", k_stack, "--query", "StackResourceSummaries[].ResourceType",
                     "--output", "json"], env=env, capture_output=True, text=True, check=True)
                types = json.loads(listed.stdout)
            for stack in (k_stack, s_stack):
                timed([args.kindling, "delete-stack", "--stack-name", stack], app, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
    counts: dict[str, int] = {}
    for t in types:
        counts[t.split("::", 1)[1]] = counts.get(t.split("::", 1)[1], 0) + 1
    resources = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    lines = [
        f"Deploy benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, rev {args.rev}, "
        f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)",
        f"Application: tests/deploy/sam_app, {len(types)} resources after the SAM transform "
        f"({resources}); `sam build` took {build_s:.1f} s (not counted)",
        "Both clients deploy the same built template to the same Kindling, in turns; wall clock of the "
        "whole command (packaging, upload, change set, execution, outputs).",
        "",
        f"{'command':<30} {'n':>3} {'median s':>9} {'min s':>7} {'max s':>7}",
    ]
    for name, values in rows.items():
        lines.append(f"{name:<30} {len(values):>3} {statistics.median(values):>9.2f} "
                     f"{min(values):>7.2f} {max(values):>7.2f}")
    fresh = statistics.median(rows["kindling deploy (fresh)"])
    sam_fresh = statistics.median(rows["sam deploy (fresh)"])
    lines += [
        "",
        f"kindling deploy vs sam deploy (fresh, median): {sam_fresh / fresh:.1f}x faster",
        f"target: kindling deploy of the application <= {TARGET_S:.0f} s: "
        f"{'PASS' if fresh <= TARGET_S else 'MISS'} ({fresh:.2f} s)",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
