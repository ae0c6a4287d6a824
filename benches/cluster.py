#!/usr/bin/env python3
"""Several Kindling nodes on one PostgreSQL (`benches/run --cluster`).

A fresh PostgreSQL database per run (the local server, `--pg`, default
postgres://postgres@127.0.0.1:5432), dropped afterwards. Release `kindling serve` nodes with
`--isolation process`, the warm Rust echo function (echo-rs, lambda_runtime) and the Rust load
generator (`kindling-bench load` / `kindling-bench events`).

1. Warm invoke, one node on `--store postgres://...` next to one on the SQLite default (same
   binary, both up at once, measured in alternating turns): single-client p50/p99 and
   throughput at 4 and 16 clients, with the server's CPU per invoke. The warm path does not
   touch the database, so the rows should be equal within noise.
2. Database round trips, counted by PostgreSQL and by the kernel, not by Kindling:
   transactions (`pg_stat_database` xact_commit + xact_rollback of the bench database) and
   the client -> PostgreSQL TCP segments carrying data (`ss -ti` data_segs_out of the node's
   connections; each statement round trip is at least one), per warm invoke and per
   asynchronous event (accepted, leased, run, finished), minus the background (heartbeats,
   the change listener, pollers) measured over an idle interval of the same length.
   PostgreSQL publishes a backend's counters up to 10 s late (PG 15: at most once per second
   while busy, within PGSTAT_IDLE_INTERVAL once idle): every window ends with an idle settle
   of that length, and so does the idle interval.
3. Asynchronous invocation with 1, 2 and 3 nodes on this machine, all on one database, the
   Event invokes spread over the nodes: accepted (202) per second while sending, executions
   per second (REPORT lines in the nodes' log files: no database read), time to drain, and
   CPU per event of the nodes (with their environments), of PostgreSQL's backends for the
   bench database and of the client; commits/s and WAL fsyncs/s. What bounds it and what
   that predicts for N machines is printed with the arithmetic.

4. Statements, from PostgreSQL's own log (`log_min_duration_statement = 0` on the bench
   database only): every statement fresh nodes send per warm invoke and per event, by kind,
   with its execution time, for one node and for three: the exact round trips.

CPU time per operation is printed everywhere: wall-clock rates move with the machine's load
(printed with the load average); CPU per operation moves much less.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
FN = "echo-rs"
INVOKE = f"/2015-03-31/functions/{FN}/invocations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(pg: str, sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", f"{pg}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {out.stderr}")
    return out.stdout.strip()


# --- /proc ------------------------------------------------------------------------------------

def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime ticks) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        out[int(name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return out


def tree_ticks(table: dict[int, tuple[int, int]], roots: list[int]) -> int:
    """CPU ticks of `roots` and all their descendants (live ones)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def pg_segments(pids: set[int]) -> dict[str, int]:
    """data_segs_out of each TCP connection to PostgreSQL owned by one of `pids`."""
    out = subprocess.run(["ss", "-tinpH", "state", "established", "( dport = :5432 )"],
                         capture_output=True, text=True, timeout=30).stdout
    segs: dict[str, int] = {}
    key = None
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):
            m = re.search(r"(\S+:\d+)\s+\S+:5432\s+users:.*?pid=(\d+)", line)
            key = m.group(1) if m and int(m.group(2)) in pids else None
            continue
        if key:
            m = re.search(r"data_segs_out:(\d+)", line)
            segs[key] = int(m.group(1)) if m else 0
    return segs


# --- nodes ------------------------------------------------------------------------------------

class Node:
    def __init__(self, binary: str, work: str, name: str, store: str | None):
        self.name = name
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.data = os.path.join(work, name)
        self.log = open(os.path.join(work, f"{name}.log"), "wb")
        cmd = [binary, "serve", "--listen", self.addr, "--data-dir", self.data,
               "--isolation", "process"]
        if store:
            cmd += ["--store", store]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.report_offsets: dict[str, int] = {}
        self.reports = 0
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"node {name} did not start (see {self.log.name})")
                time.sleep(0.05)

    def count_reports(self) -> int:
        """REPORT lines of echo-rs in this node's log files (read incrementally)."""
        root = os.path.join(self.data, "logs", FN)
        for dirpath, _, files in os.walk(root):
            for f in files:
                path = os.path.join(dirpath, f)
                off = self.report_offsets.get(path, 0)
                try:
                    with open(path, "rb") as fh:
                        fh.seek(off)
                        chunk = fh.read()
                except OSError:
                    continue
                # Count whole lines only.
                end = chunk.rfind(b"\n") + 1
                self.reports += chunk[:end].count(b"REPORT RequestId")
                self.report_offsets[path] = off + end
        return self.reports

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- measurements -----------------------------------------------------------------------------

LOAD = re.compile(r"ok=(\d+) .*?rps=(\d+) p50=([\d.]+)us p90=([\d.]+)us p99=([\d.]+)us"
                  r".*?cpu/inv: server=([\d.]+)us children=([\d.]+)us client=([\d.]+)us"
                  r".*?foreign=(\d+)%(.*)")
EVENTS = re.compile(r"accepted=(\d+) accepted_total=(\d+) other=(\d+) rate=(\d+) "
                    r"p50=([\w.]+)us p99=([\w.]+)us ?(.*)")


def run_child(cmd: list[str], timeout: float) -> tuple[str, float]:
    """Runs a command; returns its stdout and its CPU seconds (the only child reaped meanwhile:
    the nodes are reaped when they stop)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:2]} failed: {out.stdout}{out.stderr}")
    return out.stdout, cpu


def load(bench: str, node: Node, extra: list[str]) -> dict:
    out, _ = run_child([bench, "load", "--addr", node.addr, "--pid", str(node.proc.pid),
                        "--path", INVOKE, *extra], timeout=300)
    m = LOAD.search(out)
    if not m:
        raise RuntimeError(f"unexpected load output: {out}")
    ok, rps, p50, _p90, p99, srv, children, client, foreign, err = m.groups()
    if int(ok) == 0:
        raise RuntimeError(f"no successful invoke: {err.strip()}")
    return {"ok": int(ok), "rps": float(rps), "p50": float(p50), "p99": float(p99),
            "cpu": float(srv) + float(children), "srv": float(srv), "foreign": int(foreign)}


def events(bench: str, nodes: list[Node], conns: int, secs: float, warmup_ms: int = 300) -> dict:
    out, cpu = run_child([bench, "events", "--addrs", ",".join(n.addr for n in nodes),
                          "--path", INVOKE, "--conns", str(conns), "--secs", str(secs),
                          "--warmup-ms", str(warmup_ms)], timeout=secs + 120)
    m = EVENTS.search(out)
    if not m:
        raise RuntimeError(f"unexpected events output: {out}")
    acc, total, other, rate, p50, p99, err = m.groups()
    return {"accepted": int(acc), "total": int(total), "other": int(other), "rate": float(rate),
            "p50": float(p50), "p99": float(p99), "error": err.strip(), "client_cpu": cpu}


class Snap:
    """Counters of the bench database, the nodes and the machine at one moment."""

    def __init__(self, pg: str, db: str, nodes: list[Node]):
        row = psql(pg, f"""
            SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'),
                   (SELECT tup_inserted FROM pg_stat_database WHERE datname = '{db}'),
                   (SELECT tup_updated FROM pg_stat_database WHERE datname = '{db}'),
                   (SELECT tup_deleted FROM pg_stat_database WHERE datname = '{db}'),
                   (SELECT wal_sync FROM pg_stat_wal),
                   (SELECT wal_records FROM pg_stat_wal),
                   (SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity
                     WHERE datname = '{db}')""").split("|")
        self.xact, self.ins, self.upd, self.dele, self.wal_sync, self.wal_records = (
            int(x or 0) for x in row[:6])
        table = proc_table()
        self.backend_ticks = {int(p): table[int(p)][1] for p in row[6].split(",")
                              if p and int(p) in table}
        self.node_ticks = tree_ticks(table, [n.proc.pid for n in nodes])
        self.segs = pg_segments({n.proc.pid for n in nodes})
        self.busy, self.total = machine_busy_ticks()
        self.reports = sum(n.count_reports() for n in nodes)
        self.t = time.monotonic()


class Delta:
    def __init__(self, a: Snap, b: Snap):
        self.secs = b.t - a.t
        self.xact = b.xact - a.xact
        self.rows = (b.ins - a.ins, b.upd - a.upd, b.dele - a.dele)
        self.wal_sync = b.wal_sync - a.wal_sync
        self.wal_records = b.wal_records - a.wal_records
        # Backends alive at both ends (the pools keep their connections).
        self.pg_cpu = sum(b.backend_ticks[p] - a.backend_ticks.get(p, 0)
                          for p in b.backend_ticks) / TICK
        self.node_cpu = (b.node_ticks - a.node_ticks) / TICK
        self.segs = sum(v - a.segs.get(k, 0) for k, v in b.segs.items())
        self.machine_cpu = (b.busy - a.busy) / TICK
        self.machine_total = (b.total - a.total) / TICK
        self.reports = b.reports - a.reports


def settle(secs: float):
    time.sleep(secs)


# --- the benchmark ----------------------------------------------------------------------------

def warm_compare(args, sqlite: Node, pgnode: Node, lines: list[str]):
    rows: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgres": {}}
    pairs = [("sqlite", sqlite), ("postgres", pgnode)]
    for rep in range(args.reps):
        # Alternate which store goes first, so that a trend in the machine's load falls on both.
        for name, node in (pairs if rep % 2 == 0 else pairs[::-1]):
            r = rows[name]
            lat = load(args.bench, node, ["--warmup", str(args.warmup), "--n", str(args.n)])
            for k in ("p50", "p99", "srv", "cpu"):
                r.setdefault(f"lat_{k}", []).append(lat[k])
            for c in (4, 16):
                tp = load(args.bench, node, ["--conns", str(c), "--secs", str(args.secs)])
                r.setdefault(f"rps{c}", []).append(tp["rps"])
                r.setdefault(f"cpu{c}", []).append(tp["cpu"])
                r.setdefault("foreign", []).append(tp["foreign"])
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in rows.items()}
    lines += [
        f"1. WARM INVOKE of {FN} on one node, --store sqlite (default) next to --store postgres://",
        f"   medians of {args.reps} alternating repetitions: {args.n} requests single-client, "
        f"{args.secs} s per throughput level; cpu/inv = node + function CPU per invoke",
        "",
        f"   {'store':9} {'p50 us':>8} {'p99 us':>9} {'cpu/inv us':>11} {'rps 4cl':>8} "
        f"{'cpu/inv':>8} {'rps 16cl':>9} {'cpu/inv':>8} {'frgn %':>7}",
    ]
    for n in ("sqlite", "postgres"):
        m = med[n]
        lines.append(f"   {n:9} {m['lat_p50']:8.1f} {m['lat_p99']:9.1f} {m['lat_cpu']:11.1f} "
                     f"{m['rps4']:8.0f} {m['cpu4']:8.1f} {m['rps16']:9.0f} {m['cpu16']:8.1f} "
                     f"{m['foreign']:7.0f}")
    s, p = med["sqlite"], med["postgres"]
    lines += [
        "",
        "   all runs (sqlite / postgres): p50 "
        f"{[round(x, 1) for x in rows['sqlite']['lat_p50']]} / "
        f"{[round(x, 1) for x in rows['postgres']['lat_p50']]}; rps 4cl "
        f"{rows['sqlite']['rps4']} / {rows['postgres']['rps4']}",
        f"   postgres - sqlite: p50 {p['lat_p50'] - s['lat_p50']:+.1f} us, CPU/invoke "
        f"{p['cpu4'] - s['cpu4']:+.1f} us at 4 clients "
        f"({100 * (p['cpu4'] - s['cpu4']) / s['cpu4']:+.1f} %), "
        f"{p['cpu16'] - s['cpu16']:+.1f} us at 16 clients",
        "",
    ]
    return med


def round_trips(args, pg: str, db: str, node: Node, lines: list[str]):
    nodes = [node]
    window = args.rt_secs
    settle(args.settle)
    # Background: the idle node, over the same length as a window (work + settle).
    a = Snap(pg, db, nodes)
    time.sleep(window + args.settle)
    idle = Delta(a, Snap(pg, db, nodes))
    bg_xact, bg_segs = idle.xact / idle.secs, idle.segs / idle.secs

    # Warm invokes (4 clients).
    a = Snap(pg, db, nodes)
    tp = load(args.bench, node, ["--conns", "4", "--secs", str(window), "--warmup-ms", "0"])
    settle(args.settle)
    warm = Delta(a, Snap(pg, db, nodes))
    # Every invoke that ran (REPORT lines), the load generator's start-up included.
    n_warm = warm.reports

    # Asynchronous events (16 clients), then until every accepted event ran.
    settle(args.settle)
    a = Snap(pg, db, nodes)
    ev = events(args.bench, nodes, 16, window, warmup_ms=0)
    drained = wait_drained(nodes, a.reports + ev["total"], args.drain_timeout)
    settle(args.settle)
    asy = Delta(a, Snap(pg, db, nodes))
    n_ev = ev["total"]

    def per(d: Delta, n: int, bg: float, what: str) -> float:
        return (getattr(d, what) - bg * d.secs) / max(n, 1)

    w_x, w_s = per(warm, n_warm, bg_xact, "xact"), per(warm, n_warm, bg_segs, "segs")
    e_x, e_s = per(asy, n_ev, bg_xact, "xact"), per(asy, n_ev, bg_segs, "segs")
    ins, upd, dele = (r / max(n_ev, 1) for r in asy.rows)
    lines += [
        "2. DATABASE ROUND TRIPS (one node on PostgreSQL; counted by PostgreSQL and the kernel)",
        f"   background (idle node, {idle.secs:.1f} s): {bg_xact:.2f} transactions/s, "
        f"{bg_segs:.2f} client->PostgreSQL data segments/s (heartbeats, listener, pollers)",
        f"   warm invokes: {n_warm} ({tp['rps']:.0f}/s at 4 clients) in {warm.secs:.1f} s: "
        f"{warm.xact} transactions, {warm.segs} segments",
        f"     per warm invoke, background subtracted: {w_x:+.4f} transactions, {w_s:+.4f} "
        f"segments   (target 0 transactions): {'PASS' if abs(w_x) < 0.01 else 'MISS'}",
        f"   async events: {n_ev} accepted ({ev['rate']:.0f}/s at 16 clients), "
        f"{'all ran' if drained else 'NOT ALL RAN within the deadline'}, {asy.secs:.1f} s: "
        f"{asy.xact} transactions, {asy.segs} segments",
        f"     per event, background subtracted: {e_x:.2f} transactions, {e_s:.2f} segments   "
        f"(target <= 2 transactions): {'PASS' if e_x <= 2 else 'MISS'}",
        f"     rows per event: {ins:.2f} inserted, {upd:.2f} updated, {dele:.2f} deleted; "
        f"PostgreSQL backend CPU {1e6 * per(asy, n_ev, idle.pg_cpu / idle.secs, 'pg_cpu'):.1f} "
        "us/event",
        "   (a transaction is BEGIN, statements, COMMIT: 3+ round trips when it is explicit, 1 "
        "when a statement commits on its own; segments bound the round trips from above, one "
        "per write the client makes)",
        "",
    ]
    return {"warm_xact": w_x, "event_xact": e_x, "event_segs": e_s,
            # The idle node's background, per second (subtracted in section 3, per node).
            "bg_xact": bg_xact, "bg_node_cpu": idle.node_cpu / idle.secs,
            "bg_pg_cpu": idle.pg_cpu / idle.secs}


def wait_drained(nodes: list[Node], target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(n.count_reports() for n in nodes) >= target:
            return True
        time.sleep(0.25)
    return False


def warm_node(args, nodes: list[Node]):
    """Each node starts environments for 16 concurrent invokes (synchronous invokes run on the
    node that takes them) and runs a few events first, so that no window pays cold starts."""
    for n in nodes:
        load(args.bench, n, ["--conns", "16", "--secs", "1", "--warmup-ms", "200"])
    for n in nodes:
        before = sum(x.count_reports() for x in nodes)
        ev = events(args.bench, [n], 4, 1.0, warmup_ms=0)
        wait_drained(nodes, before + ev["total"], args.drain_timeout)


def scaling(args, pg: str, db: str, binary: str, work: str, first: Node, lines: list[str],
            started: list[Node], rt: dict):
    nodes = [first]
    rows = []
    for k in (1, 2, 3):
        while len(nodes) < k:
            nodes.append(Node(binary, work, f"node{len(nodes) + 1}", f"{pg}/{db}"))
            started.append(nodes[-1])
        warm_node(args, nodes)
        settle(2)
        a = Snap(pg, db, nodes)
        ev = events(args.bench, nodes, args.event_conns, args.event_secs)
        b = Snap(pg, db, nodes)
        drained = wait_drained(nodes, a.reports + ev["total"], args.drain_timeout)
        c = Snap(pg, db, nodes)
        send, full = Delta(a, b), Delta(a, c)
        n = max(ev["total"], 1)
        # Minus the idle background of k nodes (section 2) over the window.
        bg_secs = k * full.secs
        rows.append({
            "k": k, "rate": ev["rate"], "p50": ev["p50"], "p99": ev["p99"], "other": ev["other"],
            "exec_send": send.reports / send.secs, "drain": full.secs, "drained": drained,
            "exec_all": full.reports / full.secs, "total": ev["total"],
            "node_us": 1e6 * (full.node_cpu - rt["bg_node_cpu"] * bg_secs) / n,
            "pg_us": 1e6 * (full.pg_cpu - rt["bg_pg_cpu"] * bg_secs) / n,
            "client_us": 1e6 * ev["client_cpu"] / n,
            "xact_ev": (full.xact - rt["bg_xact"] * bg_secs) / n,
            "commits_s": full.xact / full.secs,
            "fsync_s": full.wal_sync / full.secs, "fsync_ev": full.wal_sync / n,
            "machine": 100 * full.machine_cpu / max(full.machine_total, 1e-9),
            "ours": 100 * (full.node_cpu + full.pg_cpu + ev["client_cpu"])
                    / max(full.machine_total, 1e-9),
            "error": ev["error"],
        })
    lines += [
        "3. ASYNC (Event) INVOCATION, 1-3 nodes on this machine, one database, "
        f"{args.event_conns} clients spread over the nodes, {args.event_secs} s of sending, "
        "then until all ran",
        "   (CPU and transactions per event: the idle nodes' background of section 2 subtracted)",
        "",
        f"   {'nodes':>5} {'202/s':>7} {'202 p50':>8} {'p99 ms':>7} {'exec/s':>7} "
        f"{'exec/s':>7} {'drain s':>8} {'node':>6} {'pg':>6} {'client':>6} {'xact':>5} "
        f"{'commit/s':>9} {'fsync/s':>8} {'cpu %':>6}",
        f"   {'':>5} {'(send)':>7} {'ms':>8} {'':>7} {'(send)':>7} {'(all)':>7} {'':>8} "
        f"{'us/ev':>6} {'us/ev':>6} {'us/ev':>6} {'/ev':>5} {'':>9} {'(server)':>8} "
        f"{'ours/all':>6}",
    ]
    for r in rows:
        lines.append(
            f"   {r['k']:>5} {r['rate']:7.0f} {r['p50'] / 1000:8.2f} {r['p99'] / 1000:7.1f} "
            f"{r['exec_send']:7.0f} {r['exec_all']:7.0f} {r['drain']:8.1f} {r['node_us']:6.0f} "
            f"{r['pg_us']:6.0f} {r['client_us']:6.0f} {r['xact_ev']:5.2f} {r['commits_s']:9.0f} "
            f"{r['fsync_s']:8.0f} {r['ours']:3.0f}/{r['machine']:<3.0f}"
            + ("" if r["drained"] else "  NOT DRAINED")
            + (f"  non-202 {r['other']}: {r['error']}" if r["other"] else ""))
    for n in nodes[1:]:
        n.stop()
    return rows


STMT = re.compile(r"@(\S+) LOG:  duration: ([\d.]+) ms  (?:statement|execute [^:]*): (.*)")


def log_statements(path: str, start: int, end: int, db: str) -> dict[str, list[float]]:
    """Statements the server logged for `db` between two offsets of its log, by kind (the
    statement's first words): [count, milliseconds executing]."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    kinds: dict[str, list[float]] = {}
    for line in text.splitlines():
        m = STMT.search(line)
        if m and m.group(1) == db:
            k = kinds.setdefault(" ".join(m.group(3).split())[:64], [0, 0.0])
            k[0] += 1
            k[1] += float(m.group(2))
    return kinds


def statement_breakdown(args, pg: str, db: str, binary: str, work: str, lines: list[str],
                        started: list[Node]):
    """Every statement fresh nodes send, from PostgreSQL's own log (`log_min_duration_statement
    = 0` set on the bench database only, so only sessions opened afterwards log): what a warm
    invoke and an asynchronous event cost in round trips and execution time, statement by
    statement, with one node and with three."""
    path = args.pg_log
    if not path or not os.access(path, os.R_OK):
        lines += ["4. STATEMENTS: skipped (PostgreSQL's log is not readable: --pg-log)", ""]
        return
    secs = args.stmt_secs
    res = {}
    psql(pg, f"ALTER DATABASE {db} SET log_min_duration_statement = 0")
    try:
        nodes: list[Node] = []
        for k in (1, 3):
            while len(nodes) < k:
                nodes.append(Node(binary, work, f"stmts{len(nodes) + 1}", f"{pg}/{db}"))
                started.append(nodes[-1])
            for n in nodes:
                load(args.bench, n, ["--warmup", "100", "--n", "100"])
            warm_node(args, nodes)
            time.sleep(1)
            o0, t0 = os.path.getsize(path), time.monotonic()
            time.sleep(secs)
            o1, t1 = os.path.getsize(path), time.monotonic()
            r = {"idle": (log_statements(path, o0, o1, db), t1 - t0)}
            if k == 1:
                r0 = nodes[0].count_reports()
                load(args.bench, nodes[0], ["--conns", "4", "--secs", str(secs), "--warmup-ms", "0"])
                time.sleep(0.5)
                o2, t2 = os.path.getsize(path), time.monotonic()
                n_warm = nodes[0].count_reports() - r0
                r["warm"] = (log_statements(path, o1, o2, db), t2 - t1, n_warm)
                o1, t1 = o2, t2
            r0 = sum(n.count_reports() for n in nodes)
            ev = events(args.bench, nodes, 16, secs, warmup_ms=0)
            drained = wait_drained(nodes, r0 + ev["total"], args.drain_timeout)
            time.sleep(0.5)
            o3, t3 = os.path.getsize(path), time.monotonic()
            r["async"] = (log_statements(path, o1, o3, db), t3 - t1, ev["total"], drained)
            res[k] = r
        for n in nodes:
            n.stop()
    finally:
        psql(pg, f"ALTER DATABASE {db} RESET log_min_duration_statement")

    def net(r: dict, what: str) -> dict[str, tuple[float, float]]:
        idle, idle_secs = r["idle"]
        kinds, secs_, n = r[what][:3]
        out = {}
        for key, (c, ms) in kinds.items():
            bc, bms = idle.get(key, (0, 0.0))
            f = secs_ / idle_secs
            out[key] = ((c - bc * f) / max(n, 1), (ms - bms * f) / max(n, 1))
        return {k_: v for k_, v in out.items() if abs(v[0]) >= 0.02}

    idle1, idle1_secs = res[1]["idle"]
    w = net(res[1], "warm")
    a1, a3 = net(res[1], "async"), net(res[3], "async")
    lines += [
        "4. STATEMENTS, from PostgreSQL's own log (log_min_duration_statement = 0 on the bench "
        "database, fresh nodes): every statement is one round trip; us/ev = the server's execution "
        "time per event (a COMMIT's includes waiting for its WAL flush)",
        f"   background of one idle node: {sum(c for c, _ in idle1.values()) / idle1_secs:.1f} "
        "statements/s: " + "; ".join(
            f"{c / idle1_secs:.2f}/s {k_[:36]}"
            for k_, (c, _) in sorted(idle1.items(), key=lambda kv: -kv[1][0])[:4]),
        f"   per warm invoke ({res[1]['warm'][2]} invokes at 4 clients, one node), background "
        f"subtracted: {sum(c for c, _ in w.values()):+.4f} statements",
        "   per async event (16 clients for "
        f"{secs} s; {res[1]['async'][2]} events on 1 node, {res[3]['async'][2]} on 3 nodes"
        f"{'' if res[1]['async'][3] and res[3]['async'][3] else ', NOT ALL RAN'}), "
        "background subtracted:",
        f"     {'1 node':>14} {'3 nodes':>14}",
        f"     {'stmts':>6} {'us/ev':>7} {'stmts':>6} {'us/ev':>7}",
    ]
    for key in sorted(set(a1) | set(a3), key=lambda k_: -a1.get(k_, (0, 0))[0]):
        c1, m1 = a1.get(key, (0.0, 0.0))
        c3, m3 = a3.get(key, (0.0, 0.0))
        lines.append(f"     {c1:6.3f} {1000 * m1:7.1f} {c3:6.3f} {1000 * m3:7.1f}  {key}")
    lines.append(
        f"     {sum(c for c, _ in a1.values()):6.2f} {1000 * sum(m for _, m in a1.values()):7.1f} "
        f"{sum(c for c, _ in a3.values()):6.2f} {1000 * sum(m for _, m in a3.values()):7.1f}  "
        "in all")
    lines.append("")


def predict(rows: list[dict], rt: dict, lines: list[str]):
    one = rows[0]
    best = max(rows, key=lambda r: r["exec_all"])
    node_us = statistics.median(r["node_us"] for r in rows)
    pg_us = statistics.median(r["pg_us"] for r in rows)
    total_us = node_us + pg_us + statistics.median(r["client_us"] for r in rows)
    per_machine = CORES * 1e6 / node_us
    db_bound = CORES * 1e6 / pg_us
    xact_ev = statistics.median(r["xact_ev"] for r in rows)
    lines += [
        "",
        "   what bounds it here: every node, PostgreSQL and the client share this machine's "
        f"{CORES} cores:",
        f"     CPU per event ~ {node_us:.0f} us (node + function) + {pg_us:.0f} us (PostgreSQL "
        f"backends) + client = {total_us:.0f} us -> at most {CORES * 1e6 / total_us:.0f} "
        f"events/s on {CORES} idle cores; measured {best['exec_all']:.0f}/s "
        f"({best['k']} node(s)) with {best['machine']:.0f} % of the machine busy, "
        f"{best['ours']:.0f} % of it ours",
        "     more nodes on the same cores add no CPU, so 1 -> 3 nodes here should stay flat "
        f"(1 node: {one['exec_all']:.0f}/s, {rows[-1]['k']} nodes: {rows[-1]['exec_all']:.0f}/s)",
        "   what that predicts for N machines (one node per machine, PostgreSQL on its own "
        f"{CORES}-core machine):",
        f"     a node: {CORES} cores / {node_us:.0f} us = ~{per_machine:.0f} events/s",
        f"     the database: {CORES} cores / {pg_us:.0f} us = ~{db_bound:.0f} events/s, at "
        f"{xact_ev:.2f} transactions per event = ~{db_bound * xact_ev:.0f} commits/s "
        f"(group commit: {statistics.median(r['fsync_ev'] for r in rows):.3f} WAL fsyncs per "
        "event measured, so the disk's fsync rate is not the limit before its CPU)",
        f"     -> throughput grows with N until N ~ {db_bound / per_machine:.1f} machines "
        f"(~{db_bound:.0f} events/s), then PostgreSQL's CPU bounds it; a bigger database "
        "machine moves that line proportionally to its cores",
        f"     warm synchronous invokes add nothing to the database ({rt['warm_xact']:+.4f} "
        "transactions per invoke): they scale with the nodes alone",
        "",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindling", required=True)
    ap.add_argument("--bench", required=True, help="kindling-bench")
    ap.add_argument("--rust-fn", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rev", default="unknown")
    ap.add_argument("--pg", default=os.environ.get("KINDLING_BENCH_PG",
                                                   "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--n", type=int)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--secs", type=int)
    ap.add_argument("--rt-secs", type=int, help="window of the round-trip counts")
    ap.add_argument("--settle", type=float, default=11.0,
                    help="idle seconds after a window (PostgreSQL publishes counters late)")
    ap.add_argument("--event-conns", type=int, default=16)
    ap.add_argument("--event-secs", type=float)
    ap.add_argument("--drain-timeout", type=float, default=180)
    ap.add_argument("--pg-log", default="/var/log/postgresql/postgresql-15-main.log",
                    help="PostgreSQL's log (statement breakdown; '' to skip)")
    ap.add_argument("--stmt-secs", type=int, default=2)
    args = ap.parse_args()
    q = args.quick
    args.reps = args.reps or (2 if q else 3)
    args.n = args.n or (2000 if q else 5000)
    args.secs = args.secs or (2 if q else 3)
    args.rt_secs = args.rt_secs or (3 if q else 5)
    args.event_secs = args.event_secs or (3.0 if q else 5.0)

    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = tempfile.mkdtemp(prefix="kindling-bench-cluster-")
    db = f"kindling_bench_{uuid.uuid4().hex[:10]}"
    psql(args.pg, f"CREATE DATABASE {db}")
    nodes: list[Node] = []
    try:
        store = f"{args.pg}/{db}"
        sqlite = Node(args.kindling, work, "sqlite", None)
        nodes.append(sqlite)
        pgnode = Node(args.kindling, work, "node1", store)
        nodes.append(pgnode)
        for n in (sqlite, pgnode):
            subprocess.run([args.bench, "deploy", "--addr", n.addr, "--rust-fn", args.rust_fn],
                           check=True, capture_output=True, timeout=180)
            load(args.bench, n, ["--warmup", "200", "--n", "500"])
        lines: list[str] = []
        print("[cluster] 1. warm invoke, sqlite vs postgres", file=sys.stderr)
        warm_compare(args, sqlite, pgnode, lines)
        sqlite.stop()
        print("[cluster] 2. database round trips", file=sys.stderr)
        rt = round_trips(args, args.pg, db, pgnode, lines)
        print("[cluster] 3. async with 1, 2, 3 nodes", file=sys.stderr)
        rows = scaling(args, args.pg, db, args.kindling, work, pgnode, lines, nodes, rt)
        predict(rows, rt, lines)
        pgnode.stop()
        print("[cluster] 4. statements (server log)", file=sys.stderr)
        statement_breakdown(args, args.pg, db, args.kindling, work, lines, nodes)
        load1 = os.getloadavg()
        head = [
            f"SEVERAL NODES ON ONE POSTGRESQL - Kindling {args.rev}, --isolation process, "
            f"PostgreSQL {psql(args.pg, 'SHOW server_version')} on 127.0.0.1 "
            f"(synchronous_commit {psql(args.pg, 'SHOW synchronous_commit')}), "
            f"fresh database per run",
            f"{started}; {CORES} cores; load average {load0[0]:.1f} at the start, "
            f"{load1[0]:.1f} at the end (frgn / cpu %: the machine's other users)"
            + ("; --quick" if q else ""),
            "",
        ]
        text = "\n".join(head + lines) + "\n"
        print(text)
        with open(args.out, "w") as f:
            f.write(text)
    finally:
        for n in nodes:
            n.stop()
        for n in nodes:
            n.log.close()
        try:
            psql(args.pg, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        except RuntimeError as e:
            print(f"[cluster] could not drop {db}: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
