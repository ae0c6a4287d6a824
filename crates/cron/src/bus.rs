//! Event buses: rules with an event pattern (`AWS::Events::Rule` with `EventPattern`) kept
//! with the scheduled ones, and [`Cron::put_event`], which wraps an entry of `PutEvents` in
//! EventBridge's envelope (`version`, `id`, `detail-type`, `source`, `account`, `time`,
//! `region`, `resources`, `detail`), matches it against every enabled rule of its bus
//! (`kindling-filter`, EventBridge's pattern syntax) and hands it to each matching rule's
//! targets through [`Fire`](crate::Fire) (Lambda targets: stored as an asynchronous
//! invocation before `PutEvents` answers).
//!
//! A target's `Input` replaces the event; `InputPath` (`$` or `$.a.b`) selects part of it.

use serde_json::Value;

use crate::{Cron, CronError, Kind, MAX_EVENT_AGE_S, ScheduleRecord, Target, civil, now_ms};

/// One entry of `PutEvents`, validated by the wire.
#[derive(Debug, Clone)]
pub struct PutEvent {
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    pub detail: Value,
    pub resources: Vec<String>,
    /// Event time (epoch milliseconds); now when absent.
    pub time_ms: Option<i64>,
}

/// Why a target's input could not be made from a matched event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BusError(pub String);

/// The bus name of `default`, a name, or a bus ARN.
pub fn bus_name(name_or_arn: &str) -> &str {
    name_or_arn
        .rsplit_once(":event-bus/")
        .map_or(name_or_arn, |(_, n)| n)
}

/// Checks an `InputPath`: `$`, or `$.` followed by dot-separated keys.
pub fn check_input_path(path: &str) -> Result<(), BusError> {
    if path == "$" {
        return Ok(());
    }
    let ok = path
        .strip_prefix("$.")
        .is_some_and(|rest| rest.split('.').all(|k| !k.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(BusError(format!(
            "InputPath {path} is not valid: Kindling supports \"$\" and \"$.key.key…\""
        )))
    }
}

fn select<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "$" {
        return Some(event);
    }
    path.strip_prefix("$.")?
        .split('.')
        .try_fold(event, |v, k| v.get(k))
}

impl Cron {
    /// Creates or replaces a rule that matches events put on `bus` against `pattern`.
    pub async fn put_pattern_rule(
        &self,
        arn: &str,
        bus: &str,
        pattern: &str,
        enabled: bool,
        targets: Vec<Target>,
        max_event_age_s: Option<i64>,
    ) -> Result<ScheduleRecord, CronError> {
        kindling_filter::Pattern::parse_str(pattern)?;
        let rec = ScheduleRecord {
            arn: arn.to_string(),
            kind: Kind::Rule,
            expression: String::new(),
            enabled,
            targets,
            max_event_age_s: max_event_age_s
                .unwrap_or(MAX_EVENT_AGE_S)
                .clamp(60, MAX_EVENT_AGE_S),
            start_ms: now_ms(),
            next_fire_ms: None,
            pattern: Some(pattern.to_string()),
            bus: bus_name(bus).to_string(),
        };
        self.persist(&rec).await?;
        Ok(rec)
    }

    /// The enabled pattern rules of `bus` that match `event`.
    pub fn matching(&self, bus: &str, event: &Value) -> Vec<ScheduleRecord> {
        let bus = bus_name(bus);
        self.schedules()
            .values()
            .filter(|r| r.enabled && r.bus == bus)
            .filter(|r| {
                r.pattern.as_deref().is_some_and(|p| {
                    kindling_filter::Pattern::parse_str(p).is_ok_and(|p| p.matches(event))
                })
            })
            .cloned()
            .collect()
    }

    /// Puts one event on its bus: returns its id and how many targets it was handed to.
    pub async fn put_event(&self, e: PutEvent) -> (String, usize) {
        let id = uuid::Uuid::new_v4().to_string();
        let bus = bus_name(&e.bus).to_string();
        let event = serde_json::json!({
            "version": "0",
            "id": id,
            "detail-type": e.detail_type,
            "source": e.source,
            "account": self.account(),
            "time": civil::iso8601(e.time_ms.unwrap_or_else(now_ms)),
            "region": self.region(),
            "resources": e.resources,
            "detail": e.detail,
        });
        let mut delivered = 0;
        for rule in self.matching(&bus, &event) {
            for target in &rule.targets {
                let payload = match (&target.input, &target.input_path) {
                    (Some(input), _) => input.clone().into_bytes(),
                    (None, Some(path)) => select(&event, path)
                        .map_or_else(|| b"null".to_vec(), |v| v.to_string().into_bytes()),
                    (None, None) => event.to_string().into_bytes(),
                };
                match self.inner.fire.fire(target, payload).await {
                    Ok(()) => delivered += 1,
                    Err(err) => {
                        tracing::warn!(rule = %rule.arn, target = %target.arn, error = %err, "event not delivered to a rule's target");
                    }
                }
            }
        }
        (id, delivered)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use kindling_store::SqliteStore;
    use serde_json::json;

    use super::*;
    use crate::{BoxFuture, Fire};

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String)>>);

    impl Fire for Recorder {
        fn fire<'a>(&'a self, t: &'a Target, p: Vec<u8>) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .expect("lock")
                    .push((t.id.clone(), String::from_utf8_lossy(&p).into_owned()));
                Ok(())
            })
        }
    }

    fn target(id: &str, input_path: Option<&str>) -> Target {
        Target {
            id: id.into(),
            arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            input: None,
            input_path: input_path.map(str::to_string),
        }
    }

    fn event(source: &str, detail: Value) -> PutEvent {
        PutEvent {
            bus: "default".into(),
            source: source.into(),
            detail_type: "Order Placed".into(),
            detail,
            resources: vec![],
            time_ms: Some(0),
        }
    }

    #[tokio::test]
    async fn events_reach_the_targets_of_matching_rules_only() {
        let store = Arc::new(SqliteStore::in_memory().expect("db"));
        let rec = Arc::new(Recorder::default());
        let cron = Cron::open(store.clone(), rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("open");
        let pattern = r#"{"source":[{"prefix":"shop."}],"detail":{"amount":[{"numeric":[">",100]}],"state":[{"anything-but":"test"}]}}"#;
        cron.put_pattern_rule(
            "arn:aws:events:us-east-1:000000000000:rule/big",
            "default",
            pattern,
            true,
            vec![
                target("whole", None),
                target("part", Some("$.detail.amount")),
            ],
            None,
        )
        .await
        .expect("rule");
        assert!(
            cron.put_pattern_rule("x", "default", r#"{"source":"x"}"#, true, vec![], None)
                .await
                .is_err()
        );
        let (_, n) = cron
            .put_event(event(
                "shop.orders",
                json!({"amount": 150, "state": "live"}),
            ))
            .await;
        assert_eq!(n, 2);
        for miss in [
            event("shop.orders", json!({"amount": 50, "state": "live"})),
            event("shop.orders", json!({"amount": 500, "state": "test"})),
            event("bank", json!({"amount": 500, "state": "live"})),
        ] {
            assert_eq!(cron.put_event(miss).await.1, 0);
        }
        let fired = rec.0.lock().expect("lock").clone();
        let whole: Value = serde_json::from_str(&fired[0].1).expect("json");
        assert_eq!(whole["detail-type"], "Order Placed");
        assert_eq!(whole["source"], "shop.orders");
        assert_eq!(whole["account"], "000000000000");
        assert_eq!(whole["region"], "us-east-1");
        assert_eq!(whole["time"], "1970-01-01T00:00:00Z");
        assert_eq!(whole["version"], "0");
        assert_eq!(fired[1], ("part".to_string(), "150".to_string()));
        // Rules survive a restart; a rule on another bus does not see the default bus.
        let reopened = Cron::open(store, rec.clone(), "us-east-1", "000000000000")
            .await
            .expect("reopen");
        let ev = json!({"source": "shop.x", "detail": {"amount": 101, "state": "a"}});
        assert_eq!(reopened.matching("default", &ev).len(), 1);
        assert_eq!(reopened.matching("other", &ev).len(), 0);
        assert_eq!(
            reopened
                .matching(
                    "arn:aws:events:us-east-1:000000000000:event-bus/default",
                    &ev
                )
                .len(),
            1
        );
        assert!(check_input_path("$.detail.a").is_ok());
        assert!(check_input_path("$..a").is_err());
    }
}
