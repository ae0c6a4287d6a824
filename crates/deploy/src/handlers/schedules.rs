//! AWS::Events::Rule (scheduled rules, and rules matching an `EventPattern` against the
//! events put on their bus) and AWS::Scheduler::Schedule over Kindling's durable schedule
//! runner.

use kindling_cron::{Cron, Kind, Target};
use serde_json::{Map, Value};

use super::props::{document, number, string, text};
use super::{Kindling, Outcome, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

fn cron(k: &Kindling) -> Result<&Cron, ProvisionError> {
    k.cron
        .as_ref()
        .ok_or_else(|| ProvisionError::new("this Kindling runs no schedules"))
}

fn rule_arn(k: &Kindling, props: &Map<String, Value>, name: &str) -> String {
    match string(props, "EventBusName").filter(|b| b != "default") {
        Some(bus) => format!(
            "arn:aws:events:{}:{}:rule/{bus}/{name}",
            k.region, k.account_id
        ),
        None => format!("arn:aws:events:{}:{}:rule/{name}", k.region, k.account_id),
    }
}

fn schedule_arn(k: &Kindling, props: &Map<String, Value>, name: &str) -> String {
    let group = string(props, "GroupName").unwrap_or_else(|| "default".into());
    format!(
        "arn:aws:scheduler:{}:{}:schedule/{group}/{name}",
        k.region, k.account_id
    )
}

fn enabled(props: &Map<String, Value>) -> bool {
    string(props, "State").is_none_or(|s| s != "DISABLED")
}

fn max_age(target: &Value) -> Option<i64> {
    target
        .get("RetryPolicy")
        .and_then(|r| r.get("MaximumEventAgeInSeconds"))
        .and_then(number)
}

fn target(t: &Value, default_id: &str) -> Result<Target, ProvisionError> {
    let arn = t
        .get("Arn")
        .and_then(text)
        .ok_or_else(|| ProvisionError::new("Every target needs an Arn"))?;
    if !["arn:aws:lambda:", "arn:aws:sqs:", "arn:aws:sns:"]
        .iter()
        .any(|p| arn.starts_with(p))
    {
        return Err(ProvisionError::new(format!(
            "Kindling delivers events to Lambda functions, SQS queues and SNS topics only, not to {arn}"
        )));
    }
    if t.get("InputTransformer").is_some() {
        return Err(ProvisionError::new(
            "Kindling does not support InputTransformer on targets (Input and InputPath are supported)",
        ));
    }
    let input_path = t.get("InputPath").and_then(text);
    if let Some(p) = &input_path {
        kindling_cron::bus::check_input_path(p).map_err(|e| ProvisionError::new(e.0))?;
    }
    Ok(Target {
        id: t
            .get("Id")
            .and_then(text)
            .unwrap_or_else(|| default_id.to_string()),
        arn,
        input: t.get("Input").map(document),
        input_path,
    })
}

pub async fn put_rule(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    existing: Option<&str>,
) -> Outcome {
    let cron = cron(k)?;
    let expression = string(props, "ScheduleExpression");
    let pattern = props.get("EventPattern").map(document);
    let name = existing
        .map(str::to_string)
        .or_else(|| string(props, "Name"))
        .unwrap_or_else(|| generated(ctx, 64));
    let list = props
        .get("Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let targets = list
        .iter()
        .map(|t| target(t, "Target"))
        .collect::<Result<Vec<_>, _>>()?;
    let arn = rule_arn(k, props, &name);
    let age = list.first().and_then(max_age);
    match (expression, pattern) {
        (Some(expression), None) => {
            cron.put(&arn, Kind::Rule, &expression, enabled(props), targets, age)
                .await
        }
        (None, Some(pattern)) => {
            let bus = string(props, "EventBusName").unwrap_or_else(|| "default".into());
            cron.put_pattern_rule(&arn, &bus, &pattern, enabled(props), targets, age)
                .await
        }
        _ => {
            return Err(ProvisionError::new(
                "A rule needs either a ScheduleExpression or an EventPattern (Kindling runs rules with one of them, not both)",
            ));
        }
    }
    .map_err(|e| ProvisionError::new(e.to_string()))?;
    Ok(Provisioned::named(name).attr("Arn", arn))
}

pub async fn delete_rule(
    k: &Kindling,
    name: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    cron(k)?
        .delete(&rule_arn(k, props, name))
        .await
        .map_err(|e| ProvisionError::new(e.to_string()))
}

pub async fn put_schedule(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    existing: Option<&str>,
) -> Outcome {
    let cron = cron(k)?;
    let expression = super::props::required(props, "ScheduleExpression")?;
    if let Some(tz) = string(props, "ScheduleExpressionTimezone")
        && tz != "UTC"
        && tz != "Etc/UTC"
    {
        return Err(ProvisionError::new(format!(
            "Kindling runs schedules in UTC only (ScheduleExpressionTimezone {tz})"
        )));
    }
    let name = existing
        .map(str::to_string)
        .or_else(|| string(props, "Name"))
        .unwrap_or_else(|| generated(ctx, 64));
    let t = props
        .get("Target")
        .ok_or_else(|| ProvisionError::new("Property Target cannot be empty."))?;
    let arn = schedule_arn(k, props, &name);
    cron.put(
        &arn,
        Kind::Schedule,
        &expression,
        enabled(props),
        vec![target(t, "Target")?],
        max_age(t),
    )
    .await
    .map_err(|e| ProvisionError::new(e.to_string()))?;
    Ok(Provisioned::named(name).attr("Arn", arn))
}

pub async fn delete_schedule(
    k: &Kindling,
    name: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    cron(k)?
        .delete(&schedule_arn(k, props, name))
        .await
        .map_err(|e| ProvisionError::new(e.to_string()))
}
