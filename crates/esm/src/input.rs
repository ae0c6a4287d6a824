//! Request bodies of Create/UpdateEventSourceMapping, as Lambda's JSON names them.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterInput {
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteriaInput {
    pub filters: Option<Vec<FilterInput>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingConfigInput {
    pub maximum_concurrency: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OnFailureInput {
    pub destination: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfigInput {
    pub on_success: Option<OnFailureInput>,
    pub on_failure: Option<OnFailureInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SelfManagedEventSourceInput {
    pub endpoints: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceAccessConfigurationInput {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    #[serde(rename = "URI")]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KafkaConfigInput {
    pub consumer_group_id: Option<String>,
}

/// CreateEventSourceMapping's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateMappingInput {
    pub event_source_arn: Option<String>,
    pub function_name: Option<String>,
    pub enabled: Option<bool>,
    pub batch_size: Option<i64>,
    pub maximum_batching_window_in_seconds: Option<i64>,
    pub filter_criteria: Option<FilterCriteriaInput>,
    pub function_response_types: Option<Vec<String>>,
    pub scaling_config: Option<ScalingConfigInput>,
    pub starting_position: Option<String>,
    pub starting_position_timestamp: Option<f64>,
    pub destination_config: Option<DestinationConfigInput>,
    pub maximum_retry_attempts: Option<i64>,
    pub maximum_record_age_in_seconds: Option<i64>,
    pub bisect_batch_on_function_error: Option<bool>,
    pub parallelization_factor: Option<i64>,
    pub tumbling_window_in_seconds: Option<i64>,
    pub topics: Option<Vec<String>>,
    pub queues: Option<Vec<String>>,
    pub source_access_configurations: Option<Vec<SourceAccessConfigurationInput>>,
    pub self_managed_event_source: Option<SelfManagedEventSourceInput>,
    pub self_managed_kafka_event_source_config: Option<KafkaConfigInput>,
    pub amazon_managed_kafka_event_source_config: Option<KafkaConfigInput>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// UpdateEventSourceMapping's body (the source itself cannot change).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateMappingInput {
    pub function_name: Option<String>,
    pub enabled: Option<bool>,
    pub batch_size: Option<i64>,
    pub maximum_batching_window_in_seconds: Option<i64>,
    pub filter_criteria: Option<FilterCriteriaInput>,
    pub function_response_types: Option<Vec<String>>,
    pub scaling_config: Option<ScalingConfigInput>,
    pub destination_config: Option<DestinationConfigInput>,
    pub maximum_retry_attempts: Option<i64>,
    pub maximum_record_age_in_seconds: Option<i64>,
    pub bisect_batch_on_function_error: Option<bool>,
    pub parallelization_factor: Option<i64>,
    pub tumbling_window_in_seconds: Option<i64>,
    pub source_access_configurations: Option<Vec<SourceAccessConfigurationInput>>,
}
