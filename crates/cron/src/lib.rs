//! Scheduled rules (`AWS::Events::Rule` with a `ScheduleExpression`) and schedules
//! (`AWS::Scheduler::Schedule`) run by Kindling: [`Expression`] computes ticks; [`Cron`] keeps
//! each schedule durably with the next tick it owes and fires its targets through [`Fire`].
//!
//! *Missed ticks* (Kindling was down): each tick not yet delivered is delivered late, with its
//! own `time`, while it is younger than the target's maximum event age (EventBridge's retry
//! window, 24 h by default); older ticks are dropped, as EventBridge drops events past their
//! age. A tick is recorded as done only after its targets were handed over (at-least-once:
//! a crash in between delivers it again).
//!
//! *Several nodes* on one database ([`Cron::set_cluster`]): every node reloads the schedules
//! each round; a schedule fires only on the node that owns it (`schedule:<arn>`, with an
//! epoch), and the tick it delivered is recorded only while that node still owns it at that
//! epoch (a node that lost it stops). A fenced node fires nothing; when an owner dies, another
//! node takes its schedules over from the last recorded tick.

pub mod bus;
mod civil;
pub mod expr;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kindling_store::ScheduleStore;
use serde::{Deserialize, Serialize};

pub use bus::{BusError, PutEvent};
pub use expr::{ExprError, Expression};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Default and largest maximum event age (EventBridge: 24 hours).
pub const MAX_EVENT_AGE_S: i64 = 86_400;

/// Whose schedule this is: EventBridge rules send a "Scheduled Event"; Scheduler sends the
/// target's input.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Kind {
    Rule,
    Schedule,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub arn: String,
    /// A constant JSON input (else the scheduled event, or `{}` for Scheduler).
    pub input: Option<String>,
    /// A JSON path (`$`, `$.detail.a`) selecting what of a matched event is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
}

/// A schedule as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// The rule's or schedule's ARN.
    pub arn: String,
    pub kind: Kind,
    pub expression: String,
    pub enabled: bool,
    pub targets: Vec<Target>,
    pub max_event_age_s: i64,
    /// Rates count from here.
    pub start_ms: i64,
    /// The next tick owed (`None`: none left, a one-time schedule that ran, or a rule
    /// matching an event pattern).
    pub next_fire_ms: Option<i64>,
    /// A rule's event pattern (EventBridge syntax): the rule matches events put on its bus
    /// instead of (or besides) running on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The rule's event bus (`default` unless named).
    #[serde(default = "default_bus")]
    pub bus: String,
}

fn default_bus() -> String {
    "default".into()
}

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Expression(#[from] ExprError),
    #[error("the schedule store failed: {0}")]
    Store(#[from] kindling_store::StoreError),
    #[error("the schedule store task failed")]
    Task,
    #[error("Event pattern is not valid. Reason: {0}")]
    Pattern(#[from] kindling_filter::PatternError),
}

/// Delivers a tick's payload to one target.
pub trait Fire: Send + Sync + 'static {
    fn fire<'a>(
        &'a self,
        target: &'a Target,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Wall-clock milliseconds (a function so tests can drive time through [`Cron::run_due`]).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct Inner {
    store: Arc<dyn ScheduleStore>,
    fire: Arc<dyn Fire>,
    region: String,
    account: String,
    schedules: Mutex<HashMap<String, ScheduleRecord>>,
    wake: tokio::sync::Notify,
    cluster: std::sync::OnceLock<kindling_cluster::Cluster>,
}

/// How often a node of a cluster reloads schedules and claims its share of them.
const CLUSTER_ROUND: Duration = Duration::from_secs(1);

/// The schedules and their runner.
#[derive(Clone)]
pub struct Cron {
    inner: Arc<Inner>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> kindling_store::Result<T> + Send + 'static,
) -> Result<T, CronError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(CronError::Task),
    }
}

impl Cron {
    /// Loads every schedule.
    pub async fn open(
        store: Arc<dyn ScheduleStore>,
        fire: Arc<dyn Fire>,
        region: &str,
        account: &str,
    ) -> Result<Self, CronError> {
        let s = Arc::clone(&store);
        let docs = blocking(move || s.schedules()).await?;
        let mut schedules = HashMap::new();
        for d in docs {
            match serde_json::from_str::<ScheduleRecord>(&d) {
                Ok(r) => {
                    schedules.insert(r.arn.clone(), r);
                }
                Err(e) => tracing::warn!(error = %e, "unreadable schedule record skipped"),
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                fire,
                region: region.to_string(),
                account: account.to_string(),
                schedules: Mutex::new(schedules),
                wake: tokio::sync::Notify::new(),
                cluster: std::sync::OnceLock::new(),
            }),
        })
    }

    fn schedules(&self) -> MutexGuard<'_, HashMap<String, ScheduleRecord>> {
        match self.inner.schedules.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Fires only the schedules this node owns in `cluster` (set before [`Self::start`]).
    pub fn set_cluster(&self, cluster: kindling_cluster::Cluster) {
        let _ = self.inner.cluster.set(cluster);
    }

    fn shared_cluster(&self) -> Option<&kindling_cluster::Cluster> {
        self.inner.cluster.get().filter(|c| c.is_shared())
    }

    /// Replaces the schedules held in memory with the stored ones (other nodes write too).
    async fn reload(&self) -> Result<(), CronError> {
        let store = Arc::clone(&self.inner.store);
        let docs = blocking(move || store.schedules()).await?;
        let mut fresh = HashMap::new();
        for d in docs {
            if let Ok(r) = serde_json::from_str::<ScheduleRecord>(&d) {
                fresh.insert(r.arn.clone(), r);
            }
        }
        *self.schedules() = fresh;
        Ok(())
    }

    /// The schedules this node may fire, with the epochs it owns them at (all, alone).
    async fn owned(&self) -> Result<Option<HashMap<String, i64>>, CronError> {
        let Some(cluster) = self.shared_cluster() else {
            return Ok(None);
        };
        self.reload().await?;
        let mut arns: Vec<String> = self
            .schedules()
            .values()
            .filter(|r| r.enabled && r.next_fire_ms.is_some())
            .map(|r| r.arn.clone())
            .collect();
        arns.sort();
        Ok(Some(
            cluster.owned("schedule", &arns).await.into_iter().collect(),
        ))
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn account(&self) -> &str {
        &self.inner.account
    }

    async fn persist(&self, rec: &ScheduleRecord) -> Result<(), CronError> {
        let doc = serde_json::to_string(rec).map_err(|_| CronError::Task)?;
        let store = Arc::clone(&self.inner.store);
        let id = rec.arn.clone();
        blocking(move || store.put_schedule(&id, &doc)).await?;
        self.schedules().insert(rec.arn.clone(), rec.clone());
        Ok(())
    }

    /// Records a delivered tick: alone, as any write; in a cluster, only while this node still
    /// owns the schedule at `epoch` (`false`: nothing written).
    async fn persist_tick(
        &self,
        rec: &ScheduleRecord,
        epoch: Option<i64>,
    ) -> Result<bool, CronError> {
        let (Some(cluster), Some(epoch)) = (self.shared_cluster(), epoch) else {
            self.persist(rec).await?;
            return Ok(true);
        };
        let doc = serde_json::to_string(rec).map_err(|_| CronError::Task)?;
        let written = cluster
            .put_owned_schedule(&rec.arn, &doc, epoch, || Ok(()))
            .await
            .map_err(|e| match e {
                kindling_cluster::ClusterError::Store(s) => CronError::Store(s),
                kindling_cluster::ClusterError::Task => CronError::Task,
            })?;
        if written {
            self.schedules().insert(rec.arn.clone(), rec.clone());
        }
        Ok(written)
    }

    /// Creates or replaces a schedule (its ticks count from now; an unchanged expression
    /// keeps its next tick).
    pub async fn put(
        &self,
        arn: &str,
        kind: Kind,
        expression: &str,
        enabled: bool,
        targets: Vec<Target>,
        max_event_age_s: Option<i64>,
    ) -> Result<ScheduleRecord, CronError> {
        let parsed = Expression::parse(expression)?;
        let now = now_ms();
        let previous = self.schedules().get(arn).cloned();
        let (start_ms, next_fire_ms) = match previous {
            Some(p) if p.expression == expression => (p.start_ms, p.next_fire_ms),
            _ => (now, parsed.next_after(now, now)),
        };
        let rec = ScheduleRecord {
            arn: arn.to_string(),
            kind,
            expression: expression.to_string(),
            enabled,
            targets,
            max_event_age_s: max_event_age_s
                .unwrap_or(MAX_EVENT_AGE_S)
                .clamp(60, MAX_EVENT_AGE_S),
            start_ms,
            next_fire_ms,
            pattern: None,
            bus: default_bus(),
        };
        self.persist(&rec).await?;
        self.inner.wake.notify_one();
        Ok(rec)
    }

    pub async fn delete(&self, arn: &str) -> Result<(), CronError> {
        let store = Arc::clone(&self.inner.store);
        let id = arn.to_string();
        blocking(move || store.delete_schedule(&id)).await?;
        self.schedules().remove(arn);
        Ok(())
    }

    pub fn get(&self, arn: &str) -> Option<ScheduleRecord> {
        self.schedules().get(arn).cloned()
    }

    fn payload(&self, rec: &ScheduleRecord, target: &Target, tick_ms: i64) -> Vec<u8> {
        if let Some(input) = &target.input {
            return input.clone().into_bytes();
        }
        match rec.kind {
            Kind::Schedule => b"{}".to_vec(),
            Kind::Rule => serde_json::json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.inner.account,
                "time": civil::iso8601(tick_ms),
                "region": self.inner.region,
                "resources": [rec.arn],
                "detail": {},
            })
            .to_string()
            .into_bytes(),
        }
    }

    /// Fires every tick due at `now` (late ones within their maximum age); returns how many
    /// ticks were delivered and the earliest tick still owed.
    pub async fn run_due(&self, now: i64) -> Result<(usize, Option<i64>), CronError> {
        let owned = self.owned().await?;
        let may_fire = |arn: &str| owned.as_ref().is_none_or(|o| o.contains_key(arn));
        let due: Vec<ScheduleRecord> = self
            .schedules()
            .values()
            .filter(|r| r.enabled && r.next_fire_ms.is_some_and(|t| t <= now))
            .filter(|r| may_fire(&r.arn))
            .cloned()
            .collect();
        let mut delivered = 0;
        for mut rec in due {
            let Ok(expr) = Expression::parse(&rec.expression) else {
                continue;
            };
            let epoch = owned.as_ref().and_then(|o| o.get(&rec.arn).copied());
            while let Some(tick) = rec.next_fire_ms.filter(|t| *t <= now) {
                if let (Some(cluster), Some(epoch)) = (self.shared_cluster(), epoch)
                    && !cluster.still_owns("schedule", &rec.arn, epoch)
                {
                    tracing::warn!(schedule = %rec.arn, "this node no longer owns the schedule: not firing it");
                    break;
                }
                if now - tick <= rec.max_event_age_s * 1000 {
                    for target in &rec.targets {
                        let payload = self.payload(&rec, target, tick);
                        if let Err(e) = self.inner.fire.fire(target, payload).await {
                            tracing::warn!(schedule = %rec.arn, target = %target.arn, error = %e, "schedule target not invoked");
                        }
                    }
                    delivered += 1;
                } else {
                    tracing::info!(schedule = %rec.arn, tick, "tick older than the maximum event age dropped");
                }
                rec.next_fire_ms = expr.next_after(tick, rec.start_ms);
                // The schedule may have been replaced or deleted meanwhile.
                let current = self.get(&rec.arn);
                match current {
                    Some(c) if c.expression == rec.expression && c.start_ms == rec.start_ms => {
                        let mut updated = c;
                        updated.next_fire_ms = rec.next_fire_ms;
                        if !self.persist_tick(&updated, epoch).await? {
                            tracing::warn!(schedule = %rec.arn, "another node took the schedule over: its tick was not recorded here");
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
        let next = self
            .schedules()
            .values()
            .filter(|r| r.enabled)
            .filter_map(|r| r.next_fire_ms)
            .min();
        Ok((delivered, next))
    }

    /// Runs schedules until `shutdown` resolves.
    pub fn start(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            loop {
                let woken = me.inner.wake.notified();
                let next = match me.run_due(now_ms()).await {
                    Ok((_, next)) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "schedules: store failed; retrying");
                        Some(now_ms() + 1000)
                    }
                };
                let most = if me.shared_cluster().is_some() {
                    CLUSTER_ROUND
                } else {
                    Duration::from_secs(60)
                };
                let wait = next.map_or(most, |t| {
                    Duration::from_millis(u64::try_from((t - now_ms()).max(0)).unwrap_or(0))
                        .min(most)
                });
                tokio::select! {
                    () = &mut shutdown => return,
                    () = woken => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_store::SqliteStore;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String)>>);

    impl Fire for Recorder {
        fn fire<'a>(
            &'a self,
            t: &'a Target,
            payload: Vec<u8>,
        ) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                self.0.lock().expect("lock").push((
                    t.arn.clone(),
                    String::from_utf8_lossy(&payload).into_owned(),
                ));
                Ok(())
            })
        }
    }

    fn target() -> Vec<Target> {
        vec![Target {
            id: "t".into(),
            arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            input: None,
            input_path: None,
        }]
    }

    #[tokio::test]
    async fn missed_ticks_are_delivered_within_the_maximum_age_and_survive_a_restart() {
        let store = Arc::new(SqliteStore::in_memory().expect("db"));
        let rec = Arc::new(Recorder::default());
        let cron = Cron::open(store.clone(), rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("open");
        let s = cron
            .put(
                "arn:aws:events:us-east-1:000000000000:rule/r",
                Kind::Rule,
                "rate(1 minute)",
                true,
                target(),
                Some(300),
            )
            .await
            .expect("put");
        let first = s.next_fire_ms.expect("tick");
        // Kindling comes back 10 minutes after the first tick: only the ticks of the last
        // 5 minutes (the maximum event age) are delivered, each with its own time.
        let now = first + 10 * 60_000;
        let reopened = Cron::open(store.clone(), rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("reopen");
        let (n, next) = reopened.run_due(now).await.expect("run");
        assert_eq!(n, 6);
        assert_eq!(next, Some(first + 11 * 60_000));
        let fired = rec.0.lock().expect("lock").clone();
        let event: serde_json::Value = serde_json::from_str(&fired[0].1).expect("json");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["time"], civil::iso8601(first + 5 * 60_000));
        // Nothing more until the next tick, also after another restart.
        let again = Cron::open(store, rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("reopen");
        assert_eq!(again.run_due(now + 1).await.expect("run").0, 0);
    }

    #[tokio::test]
    async fn one_time_schedules_fire_once_with_their_input() {
        let store = Arc::new(SqliteStore::in_memory().expect("db"));
        let rec = Arc::new(Recorder::default());
        let cron = Cron::open(store, rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("open");
        let mut t = target();
        t[0].input = Some("{\"hello\":1}".into());
        let s = cron
            .put(
                "arn:aws:scheduler:us-east-1:000000000000:schedule/default/s",
                Kind::Schedule,
                "at(2030-01-01T00:00:00)",
                true,
                t,
                None,
            )
            .await
            .expect("put");
        let tick = s.next_fire_ms.expect("tick");
        assert_eq!(cron.run_due(tick - 1).await.expect("run").0, 0);
        assert_eq!(cron.run_due(tick).await.expect("run"), (1, None));
        assert_eq!(cron.run_due(tick + 60_000).await.expect("run").0, 0);
        assert_eq!(rec.0.lock().expect("lock")[0].1, "{\"hello\":1}");
        assert!(
            cron.put("x", Kind::Rule, "rate(5 weeks)", true, target(), None)
                .await
                .is_err()
        );
    }
}
