//! The mapping control plane: Create/Get/Update/Delete/ListEventSourceMappings and the
//! function's recursive loop setting, with Lambda's validation.

use std::sync::Arc;

use kindling_model::esm::{MappingRecord, MappingState, SourceKind};
use kindling_model::{Qualifier, Violations};
use kindling_queues::QueueError;
use kindling_store::{Entity, StoreError};
use serde_json::{Value, json};

use crate::error::{EsmError, Result, mapping_not_found};
use crate::input::{CreateMappingInput, UpdateMappingInput};
use crate::validate::{self, batch_limits, check_for_kind, check_model};
use crate::{Inner, Mappings, blocking, now_ms};

/// The function a mapping invokes, resolved.
struct Target {
    name: String,
    qualifier: Option<String>,
    timeout: u32,
}

/// What Kindling knows of an SQS source.
struct SqsSource {
    fifo: bool,
}

/// `RecursiveLoop` when a function never set it.
pub const DEFAULT_RECURSIVE_LOOP: &str = "Terminate";

impl Inner {
    pub(crate) fn function_arn(&self, rec: &MappingRecord) -> String {
        let base = self.control.arn().function_arn(&rec.function_name);
        match &rec.qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    pub(crate) fn mapping_arn(&self, uuid: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:{uuid}",
            self.config.region, self.config.account_id
        )
    }

    pub(crate) fn view(&self, rec: &MappingRecord) -> Value {
        crate::view::render(rec, &self.function_arn(rec), &self.mapping_arn(&rec.uuid))
    }

    async fn target(&self, function_name: &str) -> Result<Target> {
        let control = Arc::clone(&self.control);
        let raw = function_name.to_string();
        let resolved = blocking(move || control.resolve(&raw, None)).await?;
        Ok(Target {
            name: resolved.record.function_name.clone(),
            qualifier: resolved
                .qualifier
                .filter(|q| !matches!(q, Qualifier::Latest))
                .map(|q| q.to_string()),
            timeout: resolved.record.spec.timeout,
        })
    }

    /// The queue behind an SQS mapping, checked as Lambda checks it.
    async fn sqs_source(&self, arn: &str, function_timeout: u32) -> Result<SqsSource> {
        let q = match self.queues.queue_by_arn(arn).await {
            Ok(q) => q,
            Err(QueueError::QueueDoesNotExist) => {
                return Err(EsmError::InvalidParameter(
                    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist for this wsdl version."
                        .into(),
                ));
            }
            Err(e) => return Err(EsmError::Queue(e)),
        };
        if q.account != self.config.account_id {
            return Err(EsmError::InvalidParameter(format!(
                "Cannot access the event source {arn}: it belongs to another account."
            )));
        }
        let visibility: i64 = q
            .attributes
            .get("VisibilityTimeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        if visibility < i64::from(function_timeout) {
            return Err(EsmError::InvalidParameter(format!(
                "Queue visibility timeout: {visibility} seconds is less than Function timeout: {function_timeout} seconds"
            )));
        }
        Ok(SqsSource { fifo: q.fifo })
    }

    async fn load(&self, uuid: &str) -> Result<MappingRecord> {
        let store = Arc::clone(&self.store);
        let id = uuid.to_string();
        blocking(move || store.mapping(&id))
            .await?
            .ok_or_else(mapping_not_found)
    }

    async fn all(&self) -> Result<Vec<MappingRecord>> {
        let store = Arc::clone(&self.store);
        blocking(move || store.mappings()).await
    }

    async fn put(&self, rec: &MappingRecord) -> Result<()> {
        let store = Arc::clone(&self.store);
        let r = rec.clone();
        match blocking(move || store.put_mapping(&r)).await {
            Err(EsmError::Store(StoreError::NotFound(_))) => Err(mapping_not_found()),
            other => other,
        }
    }
}

fn required_function(name: Option<&String>) -> Result<&String> {
    name.ok_or_else(|| {
        EsmError::Validation(
            "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null"
                .into(),
        )
    })
}

fn one_name(list: &Option<Vec<String>>, field: &str, what: &str) -> Result<Vec<String>> {
    match list {
        Some(l) if l.len() == 1 && !l[0].is_empty() && l[0].len() <= 1000 => Ok(l.clone()),
        Some(l) if l.len() != 1 => Err(EsmError::Validation(format!(
            "1 validation error detected: Value '{l:?}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to 1"
        ))),
        _ => Err(EsmError::InvalidParameter(format!(
            "{what} must be specified for this event source."
        ))),
    }
}

impl Mappings {
    /// CreateEventSourceMapping: the mapping starts `Creating`, then the manager enables it.
    pub async fn create(&self, input: CreateMappingInput) -> Result<Value> {
        let inner = &self.inner;
        check_model(&validate::create_knobs(&input))?;
        let function = required_function(input.function_name.as_ref())?.clone();
        let kind = validate::source_kind(&input)?;
        let filters = input
            .filter_criteria
            .as_ref()
            .map(validate::filters)
            .transpose()?;
        let target = inner.target(&function).await?;
        let mut fifo = false;
        let (mut topics, mut queues) = (Vec::new(), Vec::new());
        match kind {
            SourceKind::Sqs => {
                let arn = input.event_source_arn.as_deref().unwrap_or_default();
                fifo = inner.sqs_source(arn, target.timeout).await?.fifo;
                if input.starting_position.is_some() {
                    return Err(EsmError::InvalidParameter(
                        "StartingPosition is not valid for Amazon SQS event sources.".into(),
                    ));
                }
                if input.topics.is_some() || input.queues.is_some() {
                    return Err(EsmError::InvalidParameter(
                        "Topics and Queues are not valid for Amazon SQS event sources.".into(),
                    ));
                }
            }
            SourceKind::RabbitMq => {
                queues = one_name(&input.queues, "queues", "Queues")?;
            }
            SourceKind::Kafka => {
                topics = one_name(&input.topics, "topics", "Topics")?;
                match input.starting_position.as_deref() {
                    Some("TRIM_HORIZON" | "LATEST") => {}
                    Some(other) => {
                        return Err(EsmError::InvalidParameter(format!(
                            "Unsupported starting position for self-managed Apache Kafka: {other}. Use TRIM_HORIZON or LATEST."
                        )));
                    }
                    None => {
                        return Err(EsmError::InvalidParameter(
                            "StartingPosition must be specified for self-managed Apache Kafka event sources."
                                .into(),
                        ));
                    }
                }
            }
        }
        let (default_batch, _) = batch_limits(kind, fifo);
        let on_failure = input
            .destination_config
            .as_ref()
            .map(validate::on_failure)
            .transpose()?
            .flatten();
        let enabled = input.enabled.unwrap_or(true);
        let rec = MappingRecord {
            uuid: uuid::Uuid::new_v4().to_string(),
            kind,
            function_name: target.name,
            qualifier: target.qualifier,
            event_source_arn: input.event_source_arn.clone(),
            enabled,
            state: MappingState::Creating,
            state_transition_reason: "USER_INITIATED".into(),
            batch_size: input.batch_size.map_or(default_batch, |b| b as u32),
            maximum_batching_window_in_seconds: input
                .maximum_batching_window_in_seconds
                .unwrap_or(0) as u32,
            function_response_types: input.function_response_types.clone().unwrap_or_default(),
            filters,
            maximum_concurrency: input
                .scaling_config
                .as_ref()
                .and_then(|s| s.maximum_concurrency)
                .map(|c| c as u32),
            kafka_bootstrap_servers: input
                .self_managed_event_source
                .as_ref()
                .and_then(|s| s.endpoints.as_ref())
                .and_then(|e| e.get("KAFKA_BOOTSTRAP_SERVERS").cloned())
                .unwrap_or_default(),
            topics,
            queues,
            starting_position: input.starting_position.clone(),
            starting_position_timestamp: input.starting_position_timestamp,
            consumer_group_id: input
                .self_managed_kafka_event_source_config
                .as_ref()
                .and_then(|c| c.consumer_group_id.clone()),
            on_failure,
            maximum_retry_attempts: input.maximum_retry_attempts,
            source_access_configurations: input
                .source_access_configurations
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.kind.unwrap_or_default(), s.uri.unwrap_or_default()))
                .collect(),
            last_modified_ms: now_ms(),
            last_processing_result: None,
        };
        check_for_kind(&rec, fifo)?;
        let _guard = inner.write.lock().await;
        if let Some(existing) = inner
            .all()
            .await?
            .into_iter()
            .find(|m| same_source(m, &rec))
        {
            return Err(EsmError::Conflict(format!(
                "An event source mapping with {} arn (\" {} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
                source_label(rec.kind),
                rec.event_source_arn.as_deref().unwrap_or_default(),
                rec.function_name,
                existing.uuid
            )));
        }
        let store = Arc::clone(&inner.store);
        let r = rec.clone();
        match blocking(move || store.create_mapping(&r)).await {
            Err(EsmError::Store(StoreError::NotFound(Entity::Function))) => {
                return Err(EsmError::NotFound(format!(
                    "Function not found: {}",
                    inner.function_arn(&rec)
                )));
            }
            other => other?,
        }
        inner.wake.notify_one();
        Ok(inner.view(&rec))
    }

    /// GetEventSourceMapping.
    pub async fn get(&self, uuid: &str) -> Result<Value> {
        let rec = self.inner.load(uuid).await?;
        Ok(self.inner.view(&rec))
    }

    /// UpdateEventSourceMapping: refused while a change is settling (`ResourceInUseException`).
    pub async fn update(&self, uuid: &str, input: UpdateMappingInput) -> Result<Value> {
        let inner = &self.inner;
        check_model(&validate::update_knobs(&input))?;
        let filters = input
            .filter_criteria
            .as_ref()
            .map(validate::filters)
            .transpose()?;
        let _guard = inner.write.lock().await;
        let mut rec = inner.load(uuid).await?;
        if rec.state.is_transient() {
            return Err(EsmError::InUse(format!(
                "Cannot update the event source mapping {uuid} because it is in use (state {}).",
                rec.state.as_str()
            )));
        }
        if let Some(f) = &input.function_name {
            let t = inner.target(f).await?;
            rec.function_name = t.name;
            rec.qualifier = t.qualifier;
        }
        let mut fifo = false;
        if rec.kind == SourceKind::Sqs {
            // The function (or its timeout) may have changed since the mapping was made.
            let t = inner.target(&inner.function_arn(&rec)).await?;
            let arn = rec.event_source_arn.clone().unwrap_or_default();
            fifo = inner.sqs_source(&arn, t.timeout).await?.fifo;
        }
        if let Some(b) = input.batch_size {
            rec.batch_size = b as u32;
        }
        if let Some(w) = input.maximum_batching_window_in_seconds {
            rec.maximum_batching_window_in_seconds = w as u32;
        }
        if let Some(t) = &input.function_response_types {
            rec.function_response_types = t.clone();
        }
        if let Some(f) = filters {
            rec.filters = (!f.is_empty()).then_some(f);
        }
        if let Some(s) = &input.scaling_config {
            rec.maximum_concurrency = s.maximum_concurrency.map(|c| c as u32);
        }
        if let Some(d) = &input.destination_config {
            rec.on_failure = validate::on_failure(d)?;
        }
        if let Some(r) = input.maximum_retry_attempts {
            rec.maximum_retry_attempts = Some(r);
        }
        check_for_kind(&rec, fifo)?;
        rec.state = match input.enabled {
            Some(true) if !rec.enabled => MappingState::Enabling,
            Some(false) if rec.enabled => MappingState::Disabling,
            _ => MappingState::Updating,
        };
        if let Some(e) = input.enabled {
            rec.enabled = e;
        }
        rec.state_transition_reason = "USER_INITIATED".into();
        rec.last_modified_ms = now_ms();
        inner.put(&rec).await?;
        inner.wake.notify_one();
        Ok(inner.view(&rec))
    }

    /// DeleteEventSourceMapping: answered `Deleting`; the manager stops the pollers and
    /// removes the record.
    pub async fn delete(&self, uuid: &str) -> Result<Value> {
        let inner = &self.inner;
        let _guard = inner.write.lock().await;
        let mut rec = inner.load(uuid).await?;
        if rec.state != MappingState::Deleting {
            rec.state = MappingState::Deleting;
            rec.state_transition_reason = "USER_INITIATED".into();
            inner.put(&rec).await?;
        }
        inner.wake.notify_one();
        Ok(inner.view(&rec))
    }

    /// ListEventSourceMappings, optionally of one source and/or one function, oldest first;
    /// `Marker` is the UUID of the previous page's last mapping.
    pub async fn list(
        &self,
        event_source_arn: Option<&str>,
        function_name: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let inner = &self.inner;
        let size = match max_items {
            None => 100,
            Some(n) => {
                let mut v = Violations::new();
                v.range(n, "maxItems", Some(1), Some(10_000));
                if let Some(m) = v.message() {
                    return Err(EsmError::Validation(m));
                }
                n as usize
            }
        };
        let function = match function_name {
            Some(f) => {
                let t = inner.target(f).await?;
                Some((t.name, t.qualifier))
            }
            None => None,
        };
        let all: Vec<MappingRecord> = inner
            .all()
            .await?
            .into_iter()
            .filter(|m| event_source_arn.is_none_or(|a| m.event_source_arn.as_deref() == Some(a)))
            .filter(|m| {
                function.as_ref().is_none_or(|(name, q)| {
                    m.function_name == *name && (q.is_none() || m.qualifier == *q)
                })
            })
            .collect();
        let start = match marker {
            Some(mk) => all
                .iter()
                .position(|m| m.uuid == mk)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    EsmError::InvalidParameter(format!("The marker {mk} is not valid."))
                })?,
            None => 0,
        };
        let page: Vec<&MappingRecord> = all.iter().skip(start).take(size).collect();
        let next = (start + page.len() < all.len())
            .then(|| page.last().map(|m| m.uuid.clone()))
            .flatten();
        Ok((page.into_iter().map(|m| inner.view(m)).collect(), next))
    }

    /// GetFunctionRecursionConfig.
    pub async fn recursion_config(&self, function: &str) -> Result<Value> {
        let t = self.unqualified(function).await?;
        let store = Arc::clone(&self.inner.store);
        let value = blocking(move || store.recursive_loop(&t))
            .await?
            .unwrap_or_else(|| DEFAULT_RECURSIVE_LOOP.to_string());
        Ok(json!({ "RecursiveLoop": value }))
    }

    /// PutFunctionRecursionConfig.
    pub async fn put_recursion_config(&self, function: &str, value: Option<&str>) -> Result<Value> {
        let Some(value) = value else {
            return Err(EsmError::Validation(
                "1 validation error detected: Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null"
                    .into(),
            ));
        };
        let mut v = Violations::new();
        v.one_of(value, "recursiveLoop", &["Allow", "Terminate"]);
        if let Some(m) = v.message() {
            return Err(EsmError::Validation(m));
        }
        let name = self.unqualified(function).await?;
        let store = Arc::clone(&self.inner.store);
        let val = value.to_string();
        blocking(move || store.set_recursive_loop(&name, &val)).await?;
        Ok(json!({ "RecursiveLoop": value }))
    }

    async fn unqualified(&self, function: &str) -> Result<String> {
        let t = self.inner.target(function).await?;
        if t.qualifier.is_some() {
            return Err(EsmError::InvalidParameter(
                "The recursion configuration applies to the whole function: give its name or unqualified ARN."
                    .into(),
            ));
        }
        Ok(t.name)
    }
}

fn source_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Sqs => "SQS",
        SourceKind::RabbitMq => "MQ",
        SourceKind::Kafka => "Kafka",
    }
}

/// Whether two mappings read the same source into the same function (Lambda allows one).
fn same_source(a: &MappingRecord, b: &MappingRecord) -> bool {
    a.function_name == b.function_name
        && a.qualifier == b.qualifier
        && a.kind == b.kind
        && a.event_source_arn == b.event_source_arn
        && a.topics == b.topics
        && a.queues == b.queues
        && a.kafka_bootstrap_servers == b.kafka_bootstrap_servers
}
