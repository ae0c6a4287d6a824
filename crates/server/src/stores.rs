//! Which store each service keeps its state in: SQLite (`<data-dir>/state.db`) for a node
//! alone, or the PostgreSQL database every node of a cluster shares (`--store postgres://`).

use std::sync::Arc;
use std::time::Duration;

use kindling_store::nodes::NodeStore;
use kindling_store::{
    ApiStore, MappingStore, ObjectStore, PgStore, QueueStore, ScheduleStore, SharedObjectBytes,
    SqliteStore, StackStore,
};

/// How long a node trusts what it cached of records other nodes may change (queue records,
/// compiled API deployments), and how often an SQS long poll looks again for messages other
/// nodes sent.
pub const SHARED_REFRESH: Duration = Duration::from_secs(1);

/// The services' stores.
#[derive(Clone)]
pub struct ServiceStores {
    pub queues: Arc<dyn QueueStore>,
    pub mappings: Arc<dyn MappingStore>,
    pub apis: Arc<dyn ApiStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub stacks: Arc<dyn StackStore>,
    pub schedules: Arc<dyn ScheduleStore>,
    /// `Some` when other nodes share the store.
    pub nodes: Option<Arc<dyn NodeStore>>,
    /// Where S3 object bytes live when other nodes share the store (`None`: the node's files).
    pub object_bytes: Option<Arc<dyn SharedObjectBytes>>,
}

impl ServiceStores {
    pub fn new(sqlite: &Arc<SqliteStore>, shared: Option<&Arc<PgStore>>) -> Self {
        match shared {
            Some(pg) => Self {
                queues: pg.clone(),
                mappings: pg.clone(),
                apis: pg.clone(),
                objects: pg.clone(),
                stacks: pg.clone(),
                schedules: pg.clone(),
                nodes: Some(pg.clone()),
                object_bytes: Some(pg.clone()),
            },
            None => Self {
                queues: sqlite.clone(),
                mappings: sqlite.clone(),
                apis: sqlite.clone(),
                objects: sqlite.clone(),
                stacks: sqlite.clone(),
                schedules: sqlite.clone(),
                nodes: None,
                object_bytes: None,
            },
        }
    }

    /// How long cached shared records are trusted (`None`: this node is the only writer).
    pub fn refresh(&self) -> Option<Duration> {
        self.nodes.as_ref().map(|_| SHARED_REFRESH)
    }
}
