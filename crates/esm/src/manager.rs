//! The manager: keeps running pollers in line with the stored mappings. It moves states on
//! (Creating/Enabling/Updating → Enabled or Disabled, Disabling → Disabled, Deleting → gone),
//! starts pollers for mappings that should poll, restarts them when a mapping changed, and stops
//! them when a mapping is disabled, deleted, or went with its function.
//!
//! Nodes sharing a database (`kindling-cluster`): a mapping polls only on the node that owns
//! it (`esm:<uuid>`, claimed up to a fair share and kept until that node dies). A guard stops a
//! runner as soon as its node no longer owns the mapping at the runner's epoch (fenced, or
//! declared dead), without waiting for the manager's next round or the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kindling_model::esm::{MappingRecord, MappingState, SourceKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Inner, blocking};

/// How long a stopping runner may take to finish its batches before it is left behind.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How often a runner's guard checks that its node still owns the mapping.
const OWNERSHIP_CHECK: Duration = Duration::from_millis(200);

struct Runner {
    /// The record's `last_modified_ms` and the ownership epoch the runner was started with.
    version: (i64, i64),
    stop: Arc<watch::Sender<bool>>,
    handle: JoinHandle<()>,
    guard: Option<JoinHandle<()>>,
}

impl Runner {
    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(g) = &self.guard {
            g.abort();
        }
        let mut handle = self.handle;
        if tokio::time::timeout(STOP_WAIT, &mut handle).await.is_err() {
            handle.abort();
        }
    }
}

pub(crate) async fn run(inner: Arc<Inner>, shutdown: impl std::future::Future<Output = ()>) {
    let mut runners: HashMap<String, Runner> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        if !inner.cluster().healthy() && !runners.is_empty() {
            tracing::warn!(
                "this node is fenced from the shared database: stopping its event source mappings"
            );
            for (_, r) in runners.drain() {
                r.stop().await;
            }
        }
        if let Err(e) = reconcile(&inner, &mut runners).await {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "reconciling event source mappings failed"
            );
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(inner.config.reconcile_interval) => {}
        }
    }
    for (_, r) in runners.drain() {
        r.stop().await;
    }
    tracing::info!("event source mapping pollers stopped");
}

/// The settled state of a mapping in a transient one.
fn settled(rec: &MappingRecord) -> Option<MappingState> {
    match rec.state {
        MappingState::Creating | MappingState::Updating | MappingState::Enabling if rec.enabled => {
            Some(MappingState::Enabled)
        }
        MappingState::Creating
        | MappingState::Updating
        | MappingState::Enabling
        | MappingState::Disabling => Some(MappingState::Disabled),
        _ => None,
    }
}

async fn reconcile(inner: &Arc<Inner>, runners: &mut HashMap<String, Runner>) -> crate::Result<()> {
    let store = Arc::clone(&inner.store);
    let mappings = blocking(move || store.mappings()).await?;
    let live: std::collections::HashSet<&str> = mappings.iter().map(|m| m.uuid.as_str()).collect();
    let gone: Vec<String> = runners
        .keys()
        .filter(|k| !live.contains(k.as_str()))
        .cloned()
        .collect();
    for uuid in gone {
        if let Some(r) = runners.remove(&uuid) {
            tracing::info!(mapping = %uuid, "event source mapping removed: stopping its pollers");
            r.stop().await;
        }
    }
    let mut settled_recs = Vec::with_capacity(mappings.len());
    for rec in mappings {
        if rec.state == MappingState::Deleting {
            if let Some(r) = runners.remove(&rec.uuid) {
                r.stop().await;
            }
            let store = Arc::clone(&inner.store);
            let uuid = rec.uuid.clone();
            blocking(move || store.delete_mapping(&uuid)).await?;
            continue;
        }
        let rec = match settled(&rec) {
            Some(state) => match settle(inner, &rec, state).await? {
                Some(r) => r,
                None => continue,
            },
            None => rec,
        };
        settled_recs.push(rec);
    }
    let polling: Vec<String> = settled_recs
        .iter()
        .filter(|r| r.polling())
        .map(|r| r.uuid.clone())
        .collect();
    let owned = inner.cluster().owned("esm", &polling).await;
    for rec in settled_recs {
        let epoch = owned.get(&rec.uuid).copied();
        let want = rec.polling() && epoch.is_some();
        let version = (rec.last_modified_ms, epoch.unwrap_or(0));
        match runners.get(&rec.uuid) {
            Some(r) if want && r.version == version => {}
            Some(_) => {
                if let Some(r) = runners.remove(&rec.uuid) {
                    r.stop().await;
                }
                if want {
                    runners.insert(rec.uuid.clone(), start(inner, rec, version.1));
                }
            }
            None if want => {
                runners.insert(rec.uuid.clone(), start(inner, rec, version.1));
            }
            None => {}
        }
    }
    Ok(())
}

/// Moves a mapping to its settled state unless the client changed it meanwhile; returns the
/// record as stored.
async fn settle(
    inner: &Arc<Inner>,
    seen: &MappingRecord,
    state: MappingState,
) -> crate::Result<Option<MappingRecord>> {
    let _guard = inner.write.lock().await;
    let store = Arc::clone(&inner.store);
    let uuid = seen.uuid.clone();
    let Some(mut rec) = blocking(move || store.mapping(&uuid)).await? else {
        return Ok(None);
    };
    if rec.last_modified_ms != seen.last_modified_ms || rec.state != seen.state {
        return Ok(Some(rec));
    }
    rec.state = state;
    let store = Arc::clone(&inner.store);
    let r = rec.clone();
    match blocking(move || store.put_mapping(&r)).await {
        Ok(()) => Ok(Some(rec)),
        Err(crate::EsmError::Store(kindling_store::StoreError::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

fn start(inner: &Arc<Inner>, rec: MappingRecord, epoch: i64) -> Runner {
    let (tx, rx) = watch::channel(false);
    let stop = Arc::new(tx);
    let version = (rec.last_modified_ms, epoch);
    let guard = inner.cluster().is_shared().then(|| {
        let (cluster, stop, uuid) = (inner.cluster().clone(), Arc::clone(&stop), rec.uuid.clone());
        tokio::spawn(async move {
            while cluster.still_owns("esm", &uuid, epoch) {
                tokio::time::sleep(OWNERSHIP_CHECK).await;
            }
            tracing::warn!(mapping = %uuid, "this node no longer owns the event source mapping: its pollers stop");
            let _ = stop.send(true);
        })
    });
    let inner = Arc::clone(inner);
    let handle = tokio::spawn(async move {
        match rec.kind {
            SourceKind::Sqs => crate::sqs::run(inner, rec, rx).await,
            SourceKind::RabbitMq => crate::rabbit::run(inner, rec, rx).await,
            SourceKind::Kafka => crate::kafka::run(inner, rec, epoch, rx).await,
        }
    });
    Runner {
        version,
        stop,
        handle,
        guard,
    }
}
