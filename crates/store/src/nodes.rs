//! Several Kindling nodes on one database: membership with heartbeats and the resources each
//! node owns, behind the [`NodeStore`] trait (PostgreSQL only: an SQLite store has one node).
//!
//! Times are the database's clock. A node is alive while its heartbeats keep coming; any node
//! declares dead a node whose last heartbeat is older than the dead-after bound, and in the
//! same transaction frees what it held: its asynchronous events' leases and the resources it
//! owned. Ownership of a resource (an event source mapping, a schedule) carries an *epoch*
//! that grows with every change of owner; writes made for a resource name the epoch they were
//! made under, and the store refuses them once another node took over.

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

/// The database clock and this node's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub incarnation: i64,
    pub db_now_ms: i64,
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
}
