//! Several Kindling nodes on one database: membership with heartbeats and the resources each
//! node owns, behind the [`NodeStore`] trait (PostgreSQL only: an SQLite store has one node).
//!
//! Times are the database's clock. A node is alive while its heartbeats keep coming; any node
//! declares dead a node whose last heartbeat is older than the dead-after bound, and in the
//! same transaction frees what it held: its asynchronous events' leases and the resources it
//! owned. Ownership of a resource (an event source mapping, a schedule) carries an *epoch*
//! that grows with every change of owner; writes made for a resource name the epoch they were
//! made under, and the store refuses them once another node took over.
//!
//! Concurrency limits hold for the whole cluster through *grants*: each live node holds, per
//! scope ([`UNRESERVED_SCOPE`], or [`function_scope`] for a function with reserved
//! concurrency), a number of slots it admits invocations against without asking anyone. The
//! grants of live nodes in a scope never add up to more than the scope's limit (each change
//! of a scope's grants is serialized by a lock on the scope); they are moved to where the
//! demand is by [`NodeStore::sync_grants`], and a node's grants end with the node.

use crate::Result;

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    /// Where the node serves Kindling's API (`host:port`).
    pub address: String,
    pub incarnation: i64,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    /// Invocations in flight at its last heartbeat.
    pub load: u64,
    pub alive: bool,
    /// Resources (mappings, schedules) it owns.
    pub owned: u64,
    /// Asynchronous events it has leased.
    pub leased_events: u64,
}

/// A resource's owner and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLease {
    pub resource: String,
    pub owner: Option<String>,
    pub epoch: i64,
}

/// A live node's advertised warm invoke targets (see [`NodeStore::advertise_warm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmNode {
    pub node_id: String,
    /// Where the node serves Kindling's API (`host:port`).
    pub address: String,
    pub targets: Vec<String>,
}

/// The database clock and this node's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub incarnation: i64,
    pub db_now_ms: i64,
}

/// The grant scope of the account's unreserved pool.
pub const UNRESERVED_SCOPE: &str = "unreserved";

/// The grant scope of a function's reserved concurrency (a `:` never appears in a name).
pub fn function_scope(function: &str) -> String {
    format!("function:{function}")
}

/// What a node asks of a scope's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub scope: String,
    /// The scope's cluster-wide limit as the node knows it.
    pub limit: u32,
    /// How many slots the node would use: its peak in flight since its last round plus the
    /// invocations it refused meanwhile.
    pub demand: u32,
    /// The grant the node already applies locally, never below its invocations in flight:
    /// the store never sets the grant lower (a node gives slots back before it asks the
    /// store, and uses new ones only after the store granted them).
    pub keep: u32,
}

/// A node's grant in a scope after [`NodeStore::sync_grants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: String,
    pub granted: u32,
    /// The node's fair share of the scope given every live node's demand: the node gives
    /// back what it holds beyond it (down to its in-flight count) at its next round.
    pub target: u32,
}

/// A grant as stored (live nodes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub scope: String,
    pub node_id: String,
    pub granted: u32,
    pub demand: u32,
    pub limit: u32,
}

/// A node's fair share of `limit` slots: water-filling over the live nodes' demands (`mine`
/// and `others`). When the demands fit, each node gets its demand plus an equal part of the
/// rest (`live` nodes, a remainder stays free for whoever asks first); when they do not,
/// every node gets `min(demand, level)` with the highest level whose total fits. The shares
/// of all nodes never add up to more than `limit`.
pub fn fair_share(limit: u32, live: usize, mine: u32, others: &[u32]) -> u32 {
    let limit = u64::from(limit);
    let total: u64 = others.iter().map(|d| u64::from(*d)).sum::<u64>() + u64::from(mine);
    let share = if total <= limit {
        let live = u64::try_from(live.max(others.len() + 1)).unwrap_or(u64::MAX);
        u64::from(mine) + (limit - total) / live
    } else {
        let mut demands: Vec<u64> = others.iter().map(|d| u64::from(*d)).collect();
        demands.push(u64::from(mine));
        demands.sort_unstable();
        let mut remaining = limit;
        let mut left = demands.len() as u64;
        let mut level = u64::MAX;
        for d in demands {
            if d * left <= remaining {
                remaining -= d;
                left -= 1;
            } else {
                level = remaining / left;
                break;
            }
        }
        u64::from(mine).min(level)
    };
    u32::try_from(share).unwrap_or(u32::MAX)
}

/// Cluster membership and resource ownership. Each method is one transaction.
pub trait NodeStore: Send + Sync + 'static {
    /// Registers a node (a new one, or a restart of one): a new incarnation, alive, heartbeat
    /// now. Whatever an earlier incarnation held is freed first (it stopped).
    fn register_node(&self, node_id: &str, address: &str, load: u64) -> Result<Registration>;
    /// Records a heartbeat; `false` when the node was declared dead meanwhile (it must stop
    /// what it owned and register again).
    fn heartbeat(&self, node_id: &str, incarnation: i64, load: u64) -> Result<bool>;
    /// Declares dead every alive node whose last heartbeat is older than `dead_after_ms`, and
    /// frees their event leases and resources; returns their ids.
    fn reap_dead_nodes(&self, dead_after_ms: i64) -> Result<Vec<String>>;
    /// A clean stop: the node is marked gone and what it held is freed at once.
    fn leave_node(&self, node_id: &str, incarnation: i64) -> Result<()>;
    /// Every node, alive first, then by id.
    fn nodes(&self) -> Result<Vec<NodeRecord>>;
    /// Takes free resources among `resources` for the node (while it is alive at
    /// `incarnation`) until it owns `share` of them; returns those of `resources` it owns,
    /// with their epochs; `None` when the node is not alive at `incarnation` (declared dead:
    /// it must register again). Nothing is taken from another live owner.
    fn claim_resources(
        &self,
        node_id: &str,
        incarnation: i64,
        resources: &[String],
        share: usize,
    ) -> Result<Option<Vec<(String, i64)>>>;
    /// Gives up resources the node owns at the given epochs.
    fn release_resources(&self, node_id: &str, resources: &[(String, i64)]) -> Result<()>;
    /// Every resource's owner and epoch.
    fn resource_leases(&self) -> Result<Vec<ResourceLease>>;
    /// Stores a schedule's document if `node_id` still owns `resource` at `epoch`; `false`
    /// (nothing written) once it does not.
    fn put_schedule_owned(
        &self,
        id: &str,
        document: &str,
        resource: &str,
        node_id: &str,
        epoch: i64,
    ) -> Result<bool>;
    /// Records a stream source's next position for mapping `uuid` (as
    /// `MappingStore::set_source_position`) if `node_id` still owns `resource` at `epoch`;
    /// `false` (nothing written) once it does not, so a deposed owner cannot move a position
    /// back.
    fn set_source_position_owned(
        &self,
        uuid: &str,
        source: &str,
        position: i64,
        resource: &str,
        node_id: &str,
        epoch: i64,
    ) -> Result<bool>;
    /// Replaces the set of invoke targets the node holds warm environments for, while it is
    /// alive at `incarnation` (`false`, nothing written, once it is not).
    fn advertise_warm(&self, node_id: &str, incarnation: i64, targets: &[String]) -> Result<bool>;
    /// Every live node's latest advertised set (only the current incarnation's; nodes
    /// advertising nothing are left out), by node id.
    fn warm_nodes(&self) -> Result<Vec<WarmNode>>;
    /// The token nodes put in the hop header of the invokes they forward to each other (made
    /// once, with the schema).
    fn route_token(&self) -> Result<String>;
    /// Moves the node's concurrency grants towards its fair share, one scope at a time under
    /// the scope's lock: records its demand, sets its grant to `keep` (never higher than the
    /// stored grant), then grows it towards its [`fair_share`] from the slots no live node
    /// holds. The sum of live nodes' grants in a scope never exceeds the limit the request
    /// names. A request with `limit`, `demand` and `keep` all 0 deletes the node's grant.
    /// `None` when the node is not alive at `incarnation` (it must register again).
    fn sync_grants(
        &self,
        node_id: &str,
        incarnation: i64,
        requests: &[GrantRequest],
    ) -> Result<Option<Vec<Grant>>>;
    /// Every live node's grants, by scope and node.
    fn concurrency_grants(&self) -> Result<Vec<GrantRecord>>;
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn fair_shares_follow_demand_and_never_exceed_the_limit() {
        // Demands fit: each gets its demand plus an equal part of the rest.
        assert_eq!(fair_share(10, 3, 0, &[0, 0]), 3);
        assert_eq!(fair_share(10, 3, 4, &[0, 0]), 6);
        // All demand on one node: it gets the whole limit, the idle ones nothing.
        assert_eq!(fair_share(10, 3, 25, &[0, 0]), 10);
        assert_eq!(fair_share(10, 3, 0, &[25, 0]), 0);
        // Contention: water-filling.
        assert_eq!(fair_share(10, 3, 2, &[20, 20]), 2);
        assert_eq!(fair_share(10, 3, 20, &[2, 20]), 4);
        // No live node but this one known: alone.
        assert_eq!(fair_share(4, 0, 1, &[]), 4);
        for limit in 0..12u32 {
            for a in 0..14u32 {
                for b in 0..14u32 {
                    for c in 0..14u32 {
                        let d = [a, b, c];
                        let total: u32 = (0..3)
                            .map(|i| {
                                let others: Vec<u32> =
                                    (0..3).filter(|j| *j != i).map(|j| d[j]).collect();
                                fair_share(limit, 3, d[i], &others)
                            })
                            .sum();
                        assert!(total <= limit, "{limit} {d:?} -> {total}");
                    }
                }
            }
        }
    }
}
