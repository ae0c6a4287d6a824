//! Event source mappings: the durable record of one mapping (Lambda's
//! `EventSourceMappingConfiguration` without its derived fields) and its states.

use serde::{Deserialize, Serialize};

/// Lambda's mapping states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingState {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl MappingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Enabling => "Enabling",
            Self::Enabled => "Enabled",
            Self::Disabling => "Disabling",
            Self::Disabled => "Disabled",
            Self::Updating => "Updating",
            Self::Deleting => "Deleting",
        }
    }

    /// A state a change is still settling in (Lambda refuses updates meanwhile).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Creating | Self::Updating | Self::Deleting)
    }
}

/// The kind of source a mapping polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// Kindling's SQS-compatible queues (`arn:aws:sqs:...`).
    Sqs,
    /// A RabbitMQ broker named in Kindling's configuration (`arn:aws:mq:...`).
    RabbitMq,
    /// Self-managed Apache Kafka (`SelfManagedEventSource`).
    Kafka,
}

/// One mapping as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingRecord {
    pub uuid: String,
    pub kind: SourceKind,
    /// The function's name (unqualified): the mapping is deleted with the function.
    pub function_name: String,
    /// The version or alias the mapping invokes (`None`: unqualified, i.e. `$LATEST`).
    pub qualifier: Option<String>,
    pub event_source_arn: Option<String>,
    /// Whether the client wants the mapping polling.
    pub enabled: bool,
    pub state: MappingState,
    pub state_transition_reason: String,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u32,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    /// `FilterCriteria.Filters[].Pattern`, verbatim; `None` when never set.
    #[serde(default)]
    pub filters: Option<Vec<String>>,
    #[serde(default)]
    pub maximum_concurrency: Option<u32>,
    /// `SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS`.
    #[serde(default)]
    pub kafka_bootstrap_servers: Vec<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub starting_position: Option<String>,
    #[serde(default)]
    pub starting_position_timestamp: Option<f64>,
    #[serde(default)]
    pub consumer_group_id: Option<String>,
    /// `DestinationConfig.OnFailure.Destination` (Kafka).
    #[serde(default)]
    pub on_failure: Option<String>,
    #[serde(default)]
    pub maximum_retry_attempts: Option<i64>,
    #[serde(default)]
    pub source_access_configurations: Vec<(String, String)>,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub last_processing_result: Option<String>,
}

impl MappingRecord {
    /// Whether pollers should run for this record.
    pub fn polling(&self) -> bool {
        self.enabled
            && matches!(
                self.state,
                MappingState::Enabled | MappingState::Enabling | MappingState::Updating
            )
    }

    /// Whether the function reports partial batch failures.
    pub fn reports_item_failures(&self) -> bool {
        self.function_response_types
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
    }
}
