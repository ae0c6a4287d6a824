//! SAM's `DeploymentPreference`: CodeDeploy's part, carried out by Kindling. When an alias
//! with a traffic shifting configuration moves to a new version, the update keeps the old
//! version as the alias's main version and gives the new one a growing weight
//! (`AdditionalVersionWeights`) — `Canary10Percent5Minutes`: 10 % for 5 minutes, then all;
//! `Linear10PercentEvery1Minute`: 10 % more every minute — and only then points the alias at
//! the new version. As with CodeDeploy, the stack's update waits for the shift; a first
//! deployment (the alias's create) and a rollback move at once.
//!
//! Not supported, and said so: lifecycle hooks (`Hooks.PreTraffic`/`PostTraffic`: they report
//! to CodeDeploy's API, which Kindling does not serve) fail the update with a reason;
//! CloudWatch alarms (`Alarms`) are not evaluated (the alias event says so).
//! `AWS::CodeDeploy::Application` and `DeploymentGroup` are recorded only.

use serde_json::{Map, Value, json};

use super::props::string;
use super::{Kindling, Outcome, lambda};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};
use kindling_cfn_template::{TrafficShifting, TrafficShiftingKind};

/// The weights (percent of traffic to the new version) and how many minutes each lasts.
pub fn steps(kind: TrafficShiftingKind) -> Vec<(u32, u32)> {
    match kind {
        TrafficShiftingKind::AllAtOnce => Vec::new(),
        TrafficShiftingKind::Canary { percent, minutes } => {
            if percent == 0 || percent >= 100 {
                Vec::new()
            } else {
                vec![(percent, minutes)]
            }
        }
        TrafficShiftingKind::Linear {
            percent,
            every_minutes,
        } => {
            if percent == 0 {
                return Vec::new();
            }
            (1..)
                .map(|i| i * percent)
                .take_while(|w| *w < 100)
                .map(|w| (w, every_minutes))
                .collect()
        }
    }
}

/// A CodeDeploy application or deployment group: recorded, nothing to run.
pub fn recorded(
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    existing: Option<&str>,
) -> Provisioned {
    let name = existing.map(str::to_string).unwrap_or_else(|| {
        string(props, "ApplicationName")
            .filter(|_| ctx.resource_type == "AWS::CodeDeploy::Application")
            .or_else(|| string(props, "DeploymentGroupName"))
            .unwrap_or_else(|| ctx.physical_name.clone())
    });
    let mut p = Provisioned::named(name);
    p.note = Some(
        "Recorded only: Kindling shifts alias traffic itself (no CodeDeploy deployments)".into(),
    );
    p
}

fn with_weight(
    new: &Map<String, Value>,
    old_version: &str,
    version: &str,
    percent: u32,
) -> Map<String, Value> {
    let mut p = new.clone();
    p.insert("FunctionVersion".into(), Value::String(old_version.into()));
    p.insert(
        "RoutingConfig".into(),
        json!({"AdditionalVersionWeights": [
            {"FunctionVersion": version, "FunctionWeight": f64::from(percent) / 100.0}
        ]}),
    );
    p
}

/// Updates an alias under a traffic shifting configuration.
pub async fn shift_alias(
    k: &Kindling,
    t: &TrafficShifting,
    arn: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let from = string(old, "FunctionVersion");
    let to = string(new, "FunctionVersion");
    let plan = match (&from, &to) {
        (Some(a), Some(b)) if a != b => steps(t.kind),
        _ => Vec::new(),
    };
    if plan.is_empty() {
        return lambda::update_alias(k, arn, old, new).await;
    }
    if t.pre_traffic_hook.is_some() || t.post_traffic_hook.is_some() {
        return Err(ProvisionError::new(format!(
            "DeploymentPreference {}: Kindling does not run lifecycle hooks (Hooks.PreTraffic/PostTraffic report to CodeDeploy, which Kindling does not serve); remove the hooks to shift traffic",
            t.config_name
        )));
    }
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    for (percent, minutes) in plan {
        // Provisioned concurrency (never on a weighted alias) is applied with the last step.
        let mut step = with_weight(new, &from, &to, percent);
        step.remove("ProvisionedConcurrencyConfig");
        lambda::update_alias(k, arn, &Map::new(), &step).await?;
        tracing::info!(alias = arn, version = %to, percent, "alias traffic shifted");
        tokio::time::sleep(k.shift_minute * minutes).await;
    }
    let mut done = lambda::update_alias(k, arn, old, new).await?;
    done.note = Some(format!(
        "Traffic shifted from version {from} to {to} by Kindling ({}); CloudWatch alarms are not evaluated",
        t.config_name
    ));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(
            steps(TrafficShiftingKind::Canary {
                percent: 10,
                minutes: 5
            }),
            vec![(10, 5)]
        );
        let linear = steps(TrafficShiftingKind::Linear {
            percent: 10,
            every_minutes: 1,
        });
        assert_eq!(linear.len(), 9);
        assert_eq!(linear[0], (10, 1));
        assert_eq!(linear[8], (90, 1));
        assert!(steps(TrafficShiftingKind::AllAtOnce).is_empty());
        let p = with_weight(&Map::new(), "1", "2", 10);
        assert_eq!(p["FunctionVersion"], "1");
        assert_eq!(
            p["RoutingConfig"]["AdditionalVersionWeights"][0]["FunctionWeight"],
            0.1
        );
    }
}
