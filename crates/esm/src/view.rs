//! A mapping as Lambda answers it (`EventSourceMappingConfiguration`).

use kindling_model::esm::{MappingRecord, SourceKind};
use serde_json::{Map, Value, json};

/// The rendered configuration of `rec`; `function_arn` is qualified when the mapping is.
pub fn render(rec: &MappingRecord, function_arn: &str, mapping_arn: &str) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("UUID", json!(rec.uuid));
    put("BatchSize", json!(rec.batch_size));
    put(
        "MaximumBatchingWindowInSeconds",
        json!(rec.maximum_batching_window_in_seconds),
    );
    if let Some(arn) = &rec.event_source_arn {
        put("EventSourceArn", json!(arn));
    }
    if let Some(filters) = &rec.filters {
        let list: Vec<Value> = filters.iter().map(|p| json!({ "Pattern": p })).collect();
        put("FilterCriteria", json!({ "Filters": list }));
    }
    put("FunctionArn", json!(function_arn));
    // An epoch number in seconds, as Lambda's `Date` shape is on the wire.
    put("LastModified", json!(rec.last_modified_ms as f64 / 1000.0));
    put(
        "LastProcessingResult",
        json!(
            rec.last_processing_result
                .as_deref()
                .unwrap_or("No records processed")
        ),
    );
    put("State", json!(rec.state.as_str()));
    put("StateTransitionReason", json!(rec.state_transition_reason));
    put("FunctionResponseTypes", json!(rec.function_response_types));
    if let Some(c) = rec.maximum_concurrency {
        put("ScalingConfig", json!({ "MaximumConcurrency": c }));
    }
    if let Some(p) = &rec.starting_position {
        put("StartingPosition", json!(p));
    }
    if let Some(t) = rec.starting_position_timestamp {
        put("StartingPositionTimestamp", json!(t));
    }
    if !rec.topics.is_empty() {
        put("Topics", json!(rec.topics));
    }
    if !rec.queues.is_empty() {
        put("Queues", json!(rec.queues));
    }
    if !rec.source_access_configurations.is_empty() {
        let list: Vec<Value> = rec
            .source_access_configurations
            .iter()
            .map(|(t, u)| json!({ "Type": t, "URI": u }))
            .collect();
        put("SourceAccessConfigurations", json!(list));
    }
    if rec.kind == SourceKind::Kafka {
        put(
            "SelfManagedEventSource",
            json!({ "Endpoints": { "KAFKA_BOOTSTRAP_SERVERS": rec.kafka_bootstrap_servers } }),
        );
        if let Some(g) = &rec.consumer_group_id {
            put(
                "SelfManagedKafkaEventSourceConfig",
                json!({ "ConsumerGroupId": g }),
            );
        }
        put(
            "DestinationConfig",
            json!({ "OnFailure": rec.on_failure.as_ref().map_or(json!({}), |d| json!({ "Destination": d })) }),
        );
        put(
            "MaximumRetryAttempts",
            json!(rec.maximum_retry_attempts.unwrap_or(-1)),
        );
    }
    put("EventSourceMappingArn", json!(mapping_arn));
    Value::Object(m)
}
