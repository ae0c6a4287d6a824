"""`kindling serve --store-pool-size`: how many connections a node keeps open to the shared
PostgreSQL at most (each node also holds one for its change listener), so that several nodes
fit in the server's `max_connections`; a size of 0 or an absurd one is refused at start."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

from conftest import PG, _binary, psql


def connections(database: str) -> dict[str, int]:
    """Open connections to `database` by application name (the pool's are `kindling`)."""
    rows = psql("SELECT application_name, count(*) FROM pg_stat_activity "
                f"WHERE datname = '{database}' GROUP BY application_name")
    return {name: int(n) for name, n in (r.split("|") for r in rows.splitlines() if r)}


def test_a_node_keeps_at_most_its_pool_size_of_connections(start_node, failover_database):
    node = start_node(extra=["--store-pool-size", "2"])
    lam = node.client("lambda")
    # Sixteen callers at once: a pool of the default size (16) would open a connection each.
    peak = 0
    with ThreadPoolExecutor(16) as pool:
        for _ in range(10):
            list(pool.map(lambda _: lam.list_functions(), range(16)))
            peak = max(peak, connections(failover_database).get("kindling", 0))
    held = connections(failover_database)
    assert 1 <= peak <= 2 and held.get("kindling", 0) <= 2, (peak, held)
    assert held.get("kindling-listener") == 1, held


def test_pool_sizes_out_of_range_are_refused(failover_database, tmp_path):
    host = PG.split("@", 1)[1]
    for size in ["0", "1001", "lots"]:
        res = subprocess.run([str(_binary()), "serve", "--store",
                              f"postgres://postgres@{host}/{failover_database}",
                              "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
                              "--store-pool-size", size],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 2, res
        assert "--store-pool-size" in res.stderr, res.stderr
        assert "from 1 to 1000" in res.stderr, res.stderr
