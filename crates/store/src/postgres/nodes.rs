//! [`NodeStore`] on PostgreSQL: membership, heartbeats on the database's clock, reaping of
//! dead nodes and ownership of resources with epochs. Runs `READ COMMITTED` with row locks:
//! heartbeats and claims of different nodes never abort each other.
//!
//! A claim holds its node's row `FOR SHARE` until it commits, and declaring a node dead
//! updates that row: a node is never given a resource after it was declared dead, and a dead
//! node's resources are freed in the same transaction that declares it dead.

use postgres::Row;

use super::PgStore;
use super::connections::Tx;
use super::records::limit;
use crate::Result;
use crate::nodes::{
    Grant, GrantRecord, GrantRequest, NodeRecord, NodeStore, Registration, ResourceLease, WarmNode,
    fair_share,
};

/// The first key of the scopes' advisory locks (the second is the scope's hash): the two-key
/// lock space is apart from the one-key locks other modules take.
const GRANT_LOCK_CLASS: i32 = 0x4b_47; // "KG"

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// One scope of [`NodeStore::sync_grants`], under the scope's lock.
fn sync_grant(tx: &mut Tx<'_>, node_id: &str, live: usize, req: &GrantRequest) -> Result<Grant> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&GRANT_LOCK_CLASS, &req.scope],
    )?;
    let current = tx
        .query_opt(
            "SELECT granted FROM kindling_concurrency_grants WHERE scope = $1 AND node_id = $2",
            &[&req.scope, &node_id],
        )?
        .map_or(0, |r| count(r.get(0)));
    if req.limit == 0 && req.demand == 0 && req.keep == 0 {
        tx.execute(
            "DELETE FROM kindling_concurrency_grants WHERE scope = $1 AND node_id = $2",
            &[&req.scope, &node_id],
        )?;
        return Ok(Grant {
            scope: req.scope.clone(),
            granted: 0,
            target: 0,
        });
    }
    let others = tx.query(
        "SELECT g.granted, g.demand FROM kindling_concurrency_grants g
         JOIN kindling_nodes n ON n.node_id = g.node_id AND n.alive
         WHERE g.scope = $1 AND g.node_id <> $2",
        &[&req.scope, &node_id],
    )?;
    let held: u64 = others.iter().map(|r| u64::from(count(r.get(0)))).sum();
    let demands: Vec<u32> = others.iter().map(|r| count(r.get(1))).collect();
    let target = fair_share(req.limit, live, req.demand, &demands);
    // Never above what is stored: the node's local grant is at most the stored one.
    let base = req.keep.min(current);
    let free = u64::from(req.limit).saturating_sub(held + u64::from(base));
    let granted = if base < target {
        base + u32::try_from(free.min(u64::from(target - base))).unwrap_or(0)
    } else {
        base
    };
    tx.execute(
        "INSERT INTO kindling_concurrency_grants
               (scope, node_id, granted, demand, scope_limit, updated_ms)
             VALUES ($1, $2, $3, $4, $5, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
             ON CONFLICT (scope, node_id) DO UPDATE SET granted = excluded.granted,
                 demand = excluded.demand, scope_limit = excluded.scope_limit,
                 updated_ms = excluded.updated_ms",
        &[
            &req.scope,
            &node_id,
            &i64::from(granted),
            &i64::from(req.demand),
            &i64::from(req.limit),
        ],
    )?;
    Ok(Grant {
        scope: req.scope.clone(),
        granted,
        target,
    })
}

// Times are the database clock in milliseconds since the epoch:
// `(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT` (the statement's time, not the
// transaction's start).

/// Frees what the given nodes held: their asynchronous events' leases, their resources and
/// their concurrency grants.
fn free_held(tx: &mut Tx<'_>, nodes: &[String]) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    tx.execute(
        "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL
         WHERE lease_owner = ANY($1)",
        &[&nodes],
    )?;
    tx.execute(
        "UPDATE kindling_leases SET owner = NULL WHERE owner = ANY($1)",
        &[&nodes],
    )?;
    tx.execute(
        "DELETE FROM kindling_concurrency_grants WHERE node_id = ANY($1)",
        &[&nodes],
    )?;
    Ok(())
}

fn decode_node(r: &Row) -> NodeRecord {
    NodeRecord {
        node_id: r.get(0),
        address: r.get(1),
        incarnation: r.get(2),
        started_ms: r.get(3),
        heartbeat_ms: r.get(4),
        load: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
        alive: r.get(6),
        owned: u64::try_from(r.get::<_, i64>(7)).unwrap_or(0),
        leased_events: u64::try_from(r.get::<_, i64>(8)).unwrap_or(0),
    }
}

fn load(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl NodeStore for PgStore {
    fn register_node(&self, node_id: &str, address: &str, load_now: u64) -> Result<Registration> {
        self.queue(|c| {
            // An earlier incarnation of this node stopped: what it held is free.
            free_held(c, &[node_id.to_string()])?;
            let row = c.query_one(
                "INSERT INTO kindling_nodes
                       (node_id, address, incarnation, started_ms, heartbeat_ms, load, alive)
                     VALUES ($1, $2, 1, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, $3, TRUE)
                     ON CONFLICT (node_id) DO UPDATE SET address = excluded.address,
                         incarnation = kindling_nodes.incarnation + 1,
                         started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms,
                         load = excluded.load, alive = TRUE, died_ms = NULL
                     RETURNING incarnation, heartbeat_ms",
                &[&node_id, &address, &load(load_now)],
            )?;
            Ok(Registration {
                incarnation: row.get(0),
                db_now_ms: row.get(1),
            })
        })
    }

    fn heartbeat(&self, node_id: &str, incarnation: i64, load_now: u64) -> Result<bool> {
        self.queue(|c| {
            Ok(c.execute(
                "UPDATE kindling_nodes SET heartbeat_ms = (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, load = $3
                     WHERE node_id = $1 AND incarnation = $2 AND alive",
                &[&node_id, &incarnation, &load(load_now)],
            )? == 1)
        })
    }

    fn reap_dead_nodes(&self, dead_after_ms: i64) -> Result<Vec<String>> {
        self.queue(|c| {
            let dead: Vec<String> = c
                .query(
                    "UPDATE kindling_nodes SET alive = FALSE, died_ms = (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
                         WHERE alive AND heartbeat_ms < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - $1
                         RETURNING node_id",
                    &[&dead_after_ms],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            free_held(c, &dead)?;
            Ok(dead)
        })
    }

    fn leave_node(&self, node_id: &str, incarnation: i64) -> Result<()> {
        self.queue(|c| {
            let n = c.execute(
                "UPDATE kindling_nodes SET alive = FALSE, died_ms = (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
                     WHERE node_id = $1 AND incarnation = $2 AND alive",
                &[&node_id, &incarnation],
            )?;
            if n == 1 {
                free_held(c, &[node_id.to_string()])?;
            }
            Ok(())
        })
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT n.node_id, n.address, n.incarnation, n.started_ms, n.heartbeat_ms, n.load,
                        n.alive,
                        (SELECT COUNT(*) FROM kindling_leases l WHERE l.owner = n.node_id),
                        (SELECT COUNT(*) FROM async_events e WHERE e.lease_owner = n.node_id)
                 FROM kindling_nodes n ORDER BY n.alive DESC, n.node_id",
                &[],
            )?
            .iter()
            .map(decode_node)
            .collect())
        })
    }

    fn claim_resources(
        &self,
        node_id: &str,
        incarnation: i64,
        resources: &[String],
        share: usize,
    ) -> Result<Option<Vec<(String, i64)>>> {
        self.queue(|c| {
            // Holds the node's row: it cannot be declared dead before this claim commits.
            let alive = c
                .query_opt(
                    "SELECT 1 FROM kindling_nodes
                     WHERE node_id = $1 AND incarnation = $2 AND alive FOR SHARE",
                    &[&node_id, &incarnation],
                )?
                .is_some();
            if !alive {
                return Ok(None);
            }
            c.execute(
                "INSERT INTO kindling_leases (resource) SELECT unnest($1::TEXT[])
                 ON CONFLICT (resource) DO NOTHING",
                &[&resources],
            )?;
            let owned: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM kindling_leases WHERE owner = $1 AND resource = ANY($2)",
                    &[&node_id, &resources],
                )?
                .get(0);
            let want = limit(share).saturating_sub(owned);
            if want > 0 {
                c.execute(
                    "UPDATE kindling_leases SET owner = $1, epoch = epoch + 1,
                             acquired_ms = (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
                         WHERE resource IN (
                           SELECT resource FROM kindling_leases
                           WHERE resource = ANY($2) AND owner IS NULL
                           ORDER BY resource LIMIT $3 FOR UPDATE SKIP LOCKED)",
                    &[&node_id, &resources, &want],
                )?;
            }
            Ok(Some(
                c.query(
                    "SELECT resource, epoch FROM kindling_leases
                     WHERE owner = $1 AND resource = ANY($2) ORDER BY resource",
                    &[&node_id, &resources],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            ))
        })
    }

    fn release_resources(&self, node_id: &str, resources: &[(String, i64)]) -> Result<()> {
        self.queue(|c| {
            for (resource, epoch) in resources {
                c.execute(
                    "UPDATE kindling_leases SET owner = NULL
                     WHERE resource = $1 AND owner = $2 AND epoch = $3",
                    &[resource, &node_id, epoch],
                )?;
            }
            Ok(())
        })
    }

    fn resource_leases(&self) -> Result<Vec<ResourceLease>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT resource, owner, epoch FROM kindling_leases ORDER BY resource",
                &[],
            )?
            .iter()
            .map(|r| ResourceLease {
                resource: r.get(0),
                owner: r.get(1),
                epoch: r.get(2),
            })
            .collect())
        })
    }

    fn put_schedule_owned(
        &self,
        id: &str,
        document: &str,
        resource: &str,
        node_id: &str,
        epoch: i64,
    ) -> Result<bool> {
        self.queue(|c| {
            write_owned(c, resource, node_id, epoch, |c| {
                c.execute(
                    "UPDATE cron_schedules SET document = $2 WHERE id = $1",
                    &[&id, &document],
                )?;
                Ok(())
            })
        })
    }

    fn set_source_position_owned(
        &self,
        uuid: &str,
        source: &str,
        position: i64,
        resource: &str,
        node_id: &str,
        epoch: i64,
    ) -> Result<bool> {
        self.queue(|c| {
            write_owned(c, resource, node_id, epoch, |c| {
                c.execute(
                    super::mappings::SET_SOURCE_POSITION,
                    &[&uuid, &source, &position],
                )?;
                Ok(())
            })
        })
    }

    fn sync_grants(
        &self,
        node_id: &str,
        incarnation: i64,
        requests: &[GrantRequest],
    ) -> Result<Option<Vec<Grant>>> {
        let mut sorted: Vec<&GrantRequest> = requests.iter().collect();
        // One lock order for every transaction: scopes by name.
        sorted.sort_by(|a, b| a.scope.cmp(&b.scope));
        self.queue(|c| {
            // Holds the node's row: it cannot be declared dead (and its grants freed) before
            // this commits.
            let alive = c
                .query_opt(
                    "SELECT 1 FROM kindling_nodes
                     WHERE node_id = $1 AND incarnation = $2 AND alive FOR SHARE",
                    &[&node_id, &incarnation],
                )?
                .is_some();
            if !alive {
                return Ok(None);
            }
            let live: i64 = c
                .query_one("SELECT COUNT(*) FROM kindling_nodes WHERE alive", &[])?
                .get(0);
            let live = usize::try_from(live).unwrap_or(1);
            let mut out = Vec::with_capacity(sorted.len());
            for req in &sorted {
                out.push(sync_grant(c, node_id, live, req)?);
            }
            Ok(Some(out))
        })
    }

    fn concurrency_grants(&self) -> Result<Vec<GrantRecord>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT g.scope, g.node_id, g.granted, g.demand, g.scope_limit
                 FROM kindling_concurrency_grants g
                 JOIN kindling_nodes n ON n.node_id = g.node_id AND n.alive
                 ORDER BY g.scope, g.node_id",
                &[],
            )?
            .iter()
            .map(|r| GrantRecord {
                scope: r.get(0),
                node_id: r.get(1),
                granted: count(r.get(2)),
                demand: count(r.get(3)),
                limit: count(r.get(4)),
            })
            .collect())
        })
    }

    fn advertise_warm(&self, node_id: &str, incarnation: i64, targets: &[String]) -> Result<bool> {
        self.queue(|c| {
            Ok(c.execute(
                "INSERT INTO kindling_warm (node_id, incarnation, targets, updated_ms)
                 SELECT node_id, incarnation, $3, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
                 FROM kindling_nodes WHERE node_id = $1 AND incarnation = $2 AND alive
                 ON CONFLICT (node_id) DO UPDATE SET incarnation = excluded.incarnation,
                     targets = excluded.targets, updated_ms = excluded.updated_ms",
                &[&node_id, &incarnation, &targets],
            )? == 1)
        })
    }

    fn warm_nodes(&self) -> Result<Vec<WarmNode>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT n.node_id, n.address, w.targets
                 FROM kindling_warm w
                 JOIN kindling_nodes n ON n.node_id = w.node_id AND n.incarnation = w.incarnation
                 WHERE n.alive AND cardinality(w.targets) > 0
                 ORDER BY n.node_id",
                &[],
            )?
            .iter()
            .map(|r| WarmNode {
                node_id: r.get(0),
                address: r.get(1),
                targets: r.get(2),
            })
            .collect())
        })
    }

    fn route_token(&self) -> Result<String> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT value FROM kindling_cluster_settings WHERE name = 'route_token'",
                &[],
            )?
            .get(0))
        })
    }
}

/// Runs `write` only if `node_id` still holds `resource` at `epoch` (and says whether it did),
/// locking the lease row for the rest of the transaction: a takeover waits for the caller's
/// write, or the caller sees the takeover and writes nothing.
fn write_owned(
    tx: &mut Tx<'_>,
    resource: &str,
    node_id: &str,
    epoch: i64,
    write: impl FnOnce(&mut Tx<'_>) -> Result<()>,
) -> Result<bool> {
    let owned = tx
        .query_opt(
            "SELECT 1 FROM kindling_leases
             WHERE resource = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
            &[&resource, &node_id, &epoch],
        )?
        .is_some();
    if owned {
        write(tx)?;
    }
    Ok(owned)
}
