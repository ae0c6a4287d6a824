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
use crate::nodes::{NodeRecord, NodeStore, Registration, ResourceLease};

// Times are the database clock in milliseconds since the epoch:
// `(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT` (the statement's time, not the
// transaction's start).

/// Frees what the given nodes held: their asynchronous events' leases and their resources.
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
            // Locks the lease row: a takeover waits for this write, or this write sees it.
            let owns = c
                .query_opt(
                    "SELECT 1 FROM kindling_leases
                     WHERE resource = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
                    &[&resource, &node_id, &epoch],
                )?
                .is_some();
            if !owns {
                return Ok(false);
            }
            c.execute(
                "UPDATE cron_schedules SET document = $2 WHERE id = $1",
                &[&id, &document],
            )?;
            Ok(true)
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
            // Locks the lease row: a takeover waits for this write, or this write sees it.
            let owns = c
                .query_opt(
                    "SELECT 1 FROM kindling_leases
                     WHERE resource = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
                    &[&resource, &node_id, &epoch],
                )?
                .is_some();
            if !owns {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO event_source_offsets (mapping_uuid, source, position)
                 SELECT $1, $2, $3
                 WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = $1)
                 ON CONFLICT (mapping_uuid, source) DO UPDATE SET position = excluded.position",
                &[&uuid, &source, &position],
            )?;
            Ok(true)
        })
    }
}
