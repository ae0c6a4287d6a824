//! Function event sources → the resources samtranslator generates for them.

use serde_json::{Map, Value, json};

use super::function::{Target, assume_role};
use super::{Resources, SamContext, Translated, api, check_properties, get_att, r#ref};

pub(crate) struct EventOutput {
    pub resources: Resources,
    /// Managed policy names the function's role needs.
    pub managed_policies: Vec<String>,
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            to.insert((*k).into(), v.clone());
        }
    }
}

fn permission(target: &Target, principal: &str, source_arn: Value) -> Value {
    json!({"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction",
        "FunctionName": target.name_ref(),
        "Principal": principal,
        "SourceArn": source_arn
    }})
}

pub(crate) fn translate(
    function_id: &str,
    name: &str,
    event: &Value,
    target: &Target,
    ctx: &SamContext,
    template_resources: &Map<String, Value>,
    routes: &mut api::Routes,
) -> Translated<EventOutput> {
    let event = event.as_object().ok_or("Event must be a dictionary.")?;
    let kind = event
        .get("Type")
        .and_then(Value::as_str)
        .ok_or("Event must have a 'Type'.")?;
    let props = match event.get("Properties") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err("Event 'Properties' must be a dictionary.".into()),
    };
    let id = format!("{function_id}{name}");
    let mut resources = Resources::new();
    let mut managed_policies = Vec::new();
    match kind {
        "SQS" => {
            check_properties(
                &props,
                &[
                    "Queue",
                    "BatchSize",
                    "Enabled",
                    "MaximumBatchingWindowInSeconds",
                    "FunctionResponseTypes",
                    "FilterCriteria",
                    "ScalingConfig",
                ],
                "SQS event",
            )?;
            let queue = props
                .get("Queue")
                .ok_or("Missing required property 'Queue'.")?;
            let mut p = Map::new();
            copy(&props, &mut p, &["BatchSize", "Enabled"]);
            p.insert("EventSourceArn".into(), queue.clone());
            p.insert("FunctionName".into(), target.name_ref());
            copy(
                &props,
                &mut p,
                &[
                    "MaximumBatchingWindowInSeconds",
                    "FunctionResponseTypes",
                    "FilterCriteria",
                    "ScalingConfig",
                ],
            );
            resources.insert(id, super::resource("AWS::Lambda::EventSourceMapping", p));
            managed_policies.push("AWSLambdaSQSQueueExecutionRole".to_string());
        }
        "SNS" => {
            check_properties(
                &props,
                &[
                    "Topic",
                    "FilterPolicy",
                    "FilterPolicyScope",
                    "Region",
                    "SqsSubscription",
                    "RedrivePolicy",
                ],
                "SNS event",
            )?;
            let topic = props
                .get("Topic")
                .ok_or("Missing required property 'Topic'.")?
                .clone();
            let subscription_extras = |p: &mut Map<String, Value>| {
                copy(
                    &props,
                    p,
                    &[
                        "Region",
                        "FilterPolicy",
                        "FilterPolicyScope",
                        "RedrivePolicy",
                    ],
                )
            };
            match props.get("SqsSubscription") {
                None | Some(Value::Bool(false)) => {
                    resources.insert(
                        format!("{id}Permission"),
                        permission(target, "sns.amazonaws.com", topic.clone()),
                    );
                    let mut p = Map::new();
                    p.insert("Endpoint".into(), target.arn());
                    p.insert("Protocol".into(), Value::from("lambda"));
                    p.insert("TopicArn".into(), topic);
                    subscription_extras(&mut p);
                    resources.insert(id, super::resource("AWS::SNS::Subscription", p));
                }
                Some(sqs) => {
                    let (queue_arn, queue_url, batch, enabled, policy_id) = match sqs {
                        Value::Bool(true) => {
                            let queue_id = format!("{id}Queue");
                            resources.insert(
                                queue_id.clone(),
                                json!({"Type": "AWS::SQS::Queue", "Properties": {}}),
                            );
                            (
                                get_att(&queue_id, "Arn"),
                                r#ref(&queue_id),
                                Value::from(10),
                                Value::Bool(true),
                                format!("{id}QueuePolicy"),
                            )
                        }
                        Value::Object(m) => {
                            check_properties(
                                m,
                                &[
                                    "QueueArn",
                                    "QueueUrl",
                                    "BatchSize",
                                    "Enabled",
                                    "QueuePolicyLogicalId",
                                ],
                                "SqsSubscription",
                            )?;
                            let arn = m.get("QueueArn").ok_or("No QueueARN provided.")?.clone();
                            let url = m.get("QueueUrl").ok_or("No QueueURL provided.")?.clone();
                            let policy_id = m
                                .get("QueuePolicyLogicalId")
                                .and_then(Value::as_str)
                                .map_or_else(|| format!("{id}QueuePolicy"), str::to_string);
                            (
                                arn,
                                url,
                                m.get("BatchSize").cloned().unwrap_or(Value::from(10)),
                                m.get("Enabled").cloned().unwrap_or(Value::Bool(true)),
                                policy_id,
                            )
                        }
                        _ => {
                            return Err(
                                "'SqsSubscription' must be a boolean or a dictionary.".into()
                            );
                        }
                    };
                    resources.insert(policy_id, json!({"Type": "AWS::SQS::QueuePolicy", "Properties": {
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                            "Action": "sqs:SendMessage", "Effect": "Allow", "Principal": "*",
                            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}
                        }]},
                        "Queues": [queue_url]
                    }}));
                    let mut p = Map::new();
                    p.insert("Endpoint".into(), queue_arn.clone());
                    p.insert("Protocol".into(), Value::from("sqs"));
                    p.insert("TopicArn".into(), topic);
                    subscription_extras(&mut p);
                    resources.insert(id.clone(), super::resource("AWS::SNS::Subscription", p));
                    resources.insert(format!("{id}EventSourceMapping"), json!({"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                        "BatchSize": batch, "Enabled": enabled, "EventSourceArn": queue_arn, "FunctionName": target.name_ref()
                    }}));
                    managed_policies.push("AWSLambdaSQSQueueExecutionRole".to_string());
                }
            }
        }
        "Schedule" | "CloudWatchEvent" | "EventBridgeRule" => {
            let schedule = kind == "Schedule";
            let allowed: &[&str] = if schedule {
                &[
                    "Schedule",
                    "Description",
                    "Enabled",
                    "State",
                    "Name",
                    "Input",
                    "RetryPolicy",
                ]
            } else {
                &[
                    "Pattern",
                    "EventBusName",
                    "Input",
                    "InputPath",
                    "InputTransformer",
                    "State",
                    "Enabled",
                    "RuleName",
                    "RetryPolicy",
                ]
            };
            check_properties(&props, allowed, &format!("{kind} event"))?;
            let mut p = Map::new();
            if schedule {
                copy(&props, &mut p, &["Description"]);
                p.insert(
                    "ScheduleExpression".into(),
                    props
                        .get("Schedule")
                        .ok_or("Missing required property 'Schedule'.")?
                        .clone(),
                );
                copy(&props, &mut p, &["Name"]);
            } else {
                copy(&props, &mut p, &["EventBusName"]);
                p.insert(
                    "EventPattern".into(),
                    props
                        .get("Pattern")
                        .ok_or("Missing required property 'Pattern'.")?
                        .clone(),
                );
                if let Some(n) = props.get("RuleName") {
                    p.insert("Name".into(), n.clone());
                }
            }
            match (props.get("State"), props.get("Enabled")) {
                (Some(_), Some(_)) => {
                    return Err("State and Enabled Properties cannot both be specified.".into());
                }
                (Some(s), None) => {
                    p.insert("State".into(), s.clone());
                }
                (None, Some(Value::Bool(e))) => {
                    p.insert(
                        "State".into(),
                        Value::from(if *e { "ENABLED" } else { "DISABLED" }),
                    );
                }
                (None, Some(_)) => return Err("Enabled must be a boolean.".into()),
                (None, None) => {}
            }
            let target_id: String = format!("{id}LambdaTarget").chars().take(64).collect();
            let mut t = Map::new();
            t.insert("Arn".into(), target.arn());
            t.insert("Id".into(), Value::from(target_id));
            copy(
                &props,
                &mut t,
                &["Input", "InputPath", "InputTransformer", "RetryPolicy"],
            );
            p.insert("Targets".into(), json!([t]));
            resources.insert(id.clone(), super::resource("AWS::Events::Rule", p));
            resources.insert(
                format!("{id}Permission"),
                permission(target, "events.amazonaws.com", get_att(&id, "Arn")),
            );
        }
        "ScheduleV2" => {
            check_properties(
                &props,
                &[
                    "ScheduleExpression",
                    "FlexibleTimeWindow",
                    "Name",
                    "State",
                    "Description",
                    "StartDate",
                    "EndDate",
                    "ScheduleExpressionTimezone",
                    "GroupName",
                    "KmsKeyArn",
                    "Input",
                    "RoleArn",
                    "RetryPolicy",
                    "OmitName",
                    "DeadLetterConfig",
                ],
                "ScheduleV2 event",
            )?;
            if props.contains_key("DeadLetterConfig") {
                return Err("ScheduleV2 property [DeadLetterConfig] is not supported by Kindling's SAM transform.".into());
            }
            let mut p = Map::new();
            p.insert(
                "ScheduleExpression".into(),
                props
                    .get("ScheduleExpression")
                    .ok_or("Missing required property 'ScheduleExpression'.")?
                    .clone(),
            );
            p.insert(
                "FlexibleTimeWindow".into(),
                props
                    .get("FlexibleTimeWindow")
                    .cloned()
                    .unwrap_or(json!({"Mode": "OFF"})),
            );
            match props.get("Name") {
                Some(n) => {
                    p.insert("Name".into(), n.clone());
                }
                None if props.get("OmitName").and_then(Value::as_bool) == Some(true) => {}
                None => {
                    p.insert("Name".into(), Value::from(id.as_str()));
                }
            }
            copy(
                &props,
                &mut p,
                &[
                    "State",
                    "Description",
                    "StartDate",
                    "EndDate",
                    "ScheduleExpressionTimezone",
                    "GroupName",
                    "KmsKeyArn",
                ],
            );
            let role_arn = match props.get("RoleArn") {
                Some(r) => r.clone(),
                None => {
                    let role_id = format!("{id}Role");
                    resources.insert(role_id.clone(), json!({"Type": "AWS::IAM::Role", "Properties": {
                        "AssumeRolePolicyDocument": assume_role("scheduler.amazonaws.com"),
                        "Policies": [{"PolicyName": format!("{id}LambdaPolicy"), "PolicyDocument": {"Statement": [{
                            "Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": target.arn()
                        }]}}]
                    }}));
                    get_att(&role_id, "Arn")
                }
            };
            let mut t = Map::new();
            t.insert("Arn".into(), target.arn());
            t.insert("RoleArn".into(), role_arn);
            copy(&props, &mut t, &["Input", "RetryPolicy"]);
            p.insert("Target".into(), Value::Object(t));
            // The schedule first, then its role (samtranslator's order).
            let mut ordered = Resources::new();
            ordered.insert(id.clone(), super::resource("AWS::Scheduler::Schedule", p));
            ordered.extend(resources);
            resources = ordered;
        }
        "Api" => {
            check_properties(
                &props,
                &["Path", "Method", "RestApiId", "TimeoutInMillis"],
                "Api event",
            )?;
            routes.add_rest(function_id, name, &props, target, template_resources)?;
        }
        "HttpApi" => {
            check_properties(
                &props,
                &[
                    "Path",
                    "Method",
                    "ApiId",
                    "TimeoutInMillis",
                    "PayloadFormatVersion",
                ],
                "HttpApi event",
            )?;
            routes.add_http(function_id, name, &props, target, template_resources)?;
        }
        other => {
            return Err(format!(
                "Event type '{other}' is not supported by Kindling's SAM transform."
            )
            .into());
        }
    }
    let _ = ctx;
    Ok(EventOutput {
        resources,
        managed_policies,
    })
}
