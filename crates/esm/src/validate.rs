//! Lambda's validation of mapping requests that needs nothing but the request: the model's
//! constraints (`ValidationException`) and the rules of each source kind
//! (`InvalidParameterValueException`). Checks against the function and the queue are in
//! `service.rs`.

use kindling_model::esm::{MappingRecord, SourceKind};
use kindling_model::validate::Violations;

use crate::error::{EsmError, Result};
use crate::input::{
    CreateMappingInput, DestinationConfigInput, FilterCriteriaInput, ScalingConfigInput,
    UpdateMappingInput,
};

/// Most filters a mapping may have (Lambda's default quota).
pub const MAX_FILTERS: usize = 5;
/// Longest filter pattern (model).
pub const MAX_PATTERN_LEN: usize = 4096;

/// Knobs both Create and Update carry, checked against the model.
pub(crate) struct Knobs<'a> {
    pub batch_size: Option<i64>,
    pub window: Option<i64>,
    pub response_types: Option<&'a [String]>,
    pub scaling: Option<&'a ScalingConfigInput>,
    pub filters: Option<&'a FilterCriteriaInput>,
    pub retries: Option<i64>,
    pub record_age: Option<i64>,
    pub parallelization: Option<i64>,
    pub tumbling: Option<i64>,
}

pub(crate) fn check_model(k: &Knobs<'_>) -> Result<()> {
    let mut v = Violations::new();
    if let Some(b) = k.batch_size {
        v.range(b, "batchSize", Some(1), Some(10_000));
    }
    if let Some(w) = k.window {
        v.range(w, "maximumBatchingWindowInSeconds", Some(0), Some(300));
    }
    if let Some(types) = k.response_types {
        if types.len() > 1 {
            v.add(
                format!("{types:?}"),
                "functionResponseTypes",
                "Member must have length less than or equal to 1",
            );
        }
        for t in types {
            v.one_of(t, "functionResponseTypes", &["ReportBatchItemFailures"]);
        }
    }
    if let Some(c) = k.scaling.and_then(|s| s.maximum_concurrency) {
        v.range(c, "scalingConfig.maximumConcurrency", Some(2), Some(1000));
    }
    if let Some(r) = k.retries {
        v.range(r, "maximumRetryAttempts", Some(-1), Some(10_000));
    }
    if let Some(a) = k.record_age {
        v.range(a, "maximumRecordAgeInSeconds", Some(-1), Some(604_800));
    }
    if let Some(p) = k.parallelization {
        v.range(p, "parallelizationFactor", Some(1), Some(10));
    }
    if let Some(t) = k.tumbling {
        v.range(t, "tumblingWindowInSeconds", Some(0), Some(900));
    }
    if let Some(filters) = k.filters.and_then(|f| f.filters.as_ref()) {
        for f in filters {
            if let Some(p) = &f.pattern
                && p.chars().count() > MAX_PATTERN_LEN
            {
                v.add(
                    "...",
                    "filterCriteria.filters.member.pattern",
                    &format!("Member must have length less than or equal to {MAX_PATTERN_LEN}"),
                );
            }
        }
    }
    match v.message() {
        Some(m) => Err(EsmError::Validation(m)),
        None => Ok(()),
    }
}

/// The patterns of `FilterCriteria`, each parsed to be sure it is one.
pub(crate) fn filters(input: &FilterCriteriaInput) -> Result<Vec<String>> {
    let filters = input.filters.clone().unwrap_or_default();
    if filters.len() > MAX_FILTERS {
        return Err(EsmError::InvalidParameter(format!(
            "The maximum number of filters per event source mapping is {MAX_FILTERS}."
        )));
    }
    let mut out = Vec::with_capacity(filters.len());
    for f in filters {
        let Some(p) = f.pattern else { continue };
        if let Err(e) = kindling_filter::Pattern::parse_str(&p) {
            return Err(EsmError::InvalidParameter(format!(
                "Invalid filter pattern definition. {}",
                e.0
            )));
        }
        out.push(p);
    }
    Ok(out)
}

/// The kind of source a Create names.
pub(crate) fn source_kind(input: &CreateMappingInput) -> Result<SourceKind> {
    let kafka = input
        .self_managed_event_source
        .as_ref()
        .and_then(|s| s.endpoints.as_ref());
    match (&input.event_source_arn, kafka) {
        (Some(_), Some(_)) => Err(EsmError::InvalidParameter(
            "EventSourceArn and SelfManagedEventSource cannot both be specified.".into(),
        )),
        (None, None) => Err(EsmError::InvalidParameter(
            "Either EventSourceArn or SelfManagedEventSource must be specified.".into(),
        )),
        (None, Some(endpoints)) => {
            if endpoints.keys().any(|k| k != "KAFKA_BOOTSTRAP_SERVERS") {
                return Err(EsmError::InvalidParameter(
                    "Unsupported endpoint type. SelfManagedEventSource.Endpoints supports KAFKA_BOOTSTRAP_SERVERS only."
                        .into(),
                ));
            }
            let servers = endpoints.get("KAFKA_BOOTSTRAP_SERVERS").map_or(0, Vec::len);
            if !(1..=10).contains(&servers) {
                return Err(EsmError::InvalidParameter(
                    "KAFKA_BOOTSTRAP_SERVERS must list between 1 and 10 brokers.".into(),
                ));
            }
            Ok(SourceKind::Kafka)
        }
        (Some(arn), None) => {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            if parts.len() < 6 || parts[0] != "arn" || arn.len() > 1024 {
                return Err(EsmError::Validation(format!(
                    "1 validation error detected: Value '{arn}' at 'eventSourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}})?:(\\d{{12}})?:(.*)"
                )));
            }
            match parts[2] {
                "sqs" => Ok(SourceKind::Sqs),
                "mq" => Ok(SourceKind::RabbitMq),
                _ => Err(EsmError::InvalidParameter(format!(
                    "Unsupported event source type: {arn}. Kindling serves event source mappings for its SQS queues, RabbitMQ brokers and self-managed Kafka."
                ))),
            }
        }
    }
}

/// Lambda's defaults and limits of `BatchSize` per source.
pub(crate) fn batch_limits(kind: SourceKind, fifo: bool) -> (u32, u32) {
    match kind {
        SourceKind::Sqs if fifo => (10, 10),
        SourceKind::Sqs => (10, 10_000),
        SourceKind::RabbitMq | SourceKind::Kafka => (100, 10_000),
    }
}

/// Rules that depend on the source kind, for the record as it would be stored.
pub(crate) fn check_for_kind(rec: &MappingRecord, fifo: bool) -> Result<()> {
    let (_, max) = batch_limits(rec.kind, fifo);
    if rec.batch_size > max {
        return Err(EsmError::InvalidParameter(if fifo {
            format!(
                "BatchSize must be between 1 and 10 for FIFO queues. Received {}.",
                rec.batch_size
            )
        } else {
            format!("BatchSize must be between 1 and {max}.")
        }));
    }
    if rec.kind == SourceKind::Sqs
        && rec.batch_size > 10
        && rec.maximum_batching_window_in_seconds == 0
    {
        return Err(EsmError::InvalidParameter(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
                .into(),
        ));
    }
    if rec.kind != SourceKind::Sqs && rec.maximum_concurrency.is_some() {
        return Err(EsmError::InvalidParameter(
            "ScalingConfig is supported for Amazon SQS event sources only.".into(),
        ));
    }
    if rec.kind == SourceKind::Sqs && rec.on_failure.is_some() {
        return Err(EsmError::InvalidParameter(
            "Unsupported DestinationConfig parameter for given event source mapping type.".into(),
        ));
    }
    Ok(())
}

/// `DestinationConfig` of a mapping: `OnFailure` only.
pub(crate) fn on_failure(d: &DestinationConfigInput) -> Result<Option<String>> {
    if d.on_success
        .as_ref()
        .and_then(|s| s.destination.as_ref())
        .is_some()
    {
        return Err(EsmError::InvalidParameter(
            "Unsupported DestinationConfig parameter for given event source mapping type.".into(),
        ));
    }
    let dest = d
        .on_failure
        .as_ref()
        .and_then(|f| f.destination.clone())
        .filter(|s| !s.is_empty());
    if let Some(arn) = &dest
        && !(arn.starts_with("arn:aws:sqs:") || arn.starts_with("arn:aws:sns:"))
    {
        return Err(EsmError::InvalidParameter(format!(
            "The provided destination config DestinationConfig.OnFailure is invalid: {arn} is not an SQS queue or SNS topic ARN."
        )));
    }
    Ok(dest)
}

pub(crate) fn create_knobs(i: &CreateMappingInput) -> Knobs<'_> {
    Knobs {
        batch_size: i.batch_size,
        window: i.maximum_batching_window_in_seconds,
        response_types: i.function_response_types.as_deref(),
        scaling: i.scaling_config.as_ref(),
        filters: i.filter_criteria.as_ref(),
        retries: i.maximum_retry_attempts,
        record_age: i.maximum_record_age_in_seconds,
        parallelization: i.parallelization_factor,
        tumbling: i.tumbling_window_in_seconds,
    }
}

pub(crate) fn update_knobs(i: &UpdateMappingInput) -> Knobs<'_> {
    Knobs {
        batch_size: i.batch_size,
        window: i.maximum_batching_window_in_seconds,
        response_types: i.function_response_types.as_deref(),
        scaling: i.scaling_config.as_ref(),
        filters: i.filter_criteria.as_ref(),
        retries: i.maximum_retry_attempts,
        record_age: i.maximum_record_age_in_seconds,
        parallelization: i.parallelization_factor,
        tumbling: i.tumbling_window_in_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::FilterInput;

    #[test]
    fn model_ranges_are_validation_errors() {
        let k = Knobs {
            batch_size: Some(0),
            window: Some(301),
            response_types: None,
            scaling: Some(&ScalingConfigInput {
                maximum_concurrency: Some(1),
            }),
            filters: None,
            retries: None,
            record_age: None,
            parallelization: None,
            tumbling: None,
        };
        let Err(EsmError::Validation(m)) = check_model(&k) else {
            panic!("expected a validation error")
        };
        assert!(m.starts_with("3 validation errors detected"), "{m}");
        assert!(m.contains("'scalingConfig.maximumConcurrency'"));
    }

    #[test]
    fn filters_must_parse() {
        let bad = FilterCriteriaInput {
            filters: Some(vec![FilterInput {
                pattern: Some("{not json".into()),
            }]),
        };
        assert!(matches!(filters(&bad), Err(EsmError::InvalidParameter(_))));
        let good = FilterCriteriaInput {
            filters: Some(vec![FilterInput {
                pattern: Some(r#"{"body":{"k":["v"]}}"#.into()),
            }]),
        };
        assert_eq!(filters(&good).map(|f| f.len()).ok(), Some(1));
    }
}
