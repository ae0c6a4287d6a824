//! Event invoke configuration (Put/Update/Get/Delete/ListFunctionEventInvokeConfigs): retries,
//! maximum event age and destinations of asynchronous invocations, per function and qualifier.

use std::collections::HashMap;
use std::sync::PoisonError;

use kindling_model::events::{DestinationKind, EventInvokeConfig, destination_kind};
use kindling_model::validate::Violations;
use kindling_model::{FunctionRef, Qualifier};
use kindling_store::{Entity, StoreError};

use crate::error::{ControlError, Result};
use crate::input::EventInvokeConfigInput;
use crate::paginate::{Page, page_size, paginate};
use crate::resolve::parse_ref;
use crate::{ControlPlane, now_ms};

/// A configuration with the qualified function ARN it belongs to.
#[derive(Debug, Clone)]
pub struct EventConfigView {
    pub function_arn: String,
    pub config: EventInvokeConfig,
}

/// What the asynchronous dispatcher read of a function and qualifier (`None`: nothing
/// configured), with the control-plane generation it was read at.
pub(crate) type EventConfigCache = HashMap<(String, String), (u64, Option<EventInvokeConfig>)>;

/// Cached entries kept at most; a full cache is emptied (entries are one read to rebuild).
const CACHE_LIMIT: usize = 4096;

fn check_input(input: &EventInvokeConfigInput) -> Result<()> {
    let mut v = Violations::new();
    if let Some(r) = input.maximum_retry_attempts {
        v.range(r, "maximumRetryAttempts", Some(0), Some(2));
    }
    if let Some(a) = input.maximum_event_age_in_seconds {
        v.range(a, "maximumEventAgeInSeconds", Some(60), Some(21_600));
    }
    if let Some(m) = v.message() {
        return Err(ControlError::Validation(m));
    }
    let dests = input.destination_config.as_ref();
    for (which, arn) in [
        (
            "OnSuccess",
            dests
                .and_then(|d| d.on_success.as_ref())
                .and_then(|d| d.destination.as_ref()),
        ),
        (
            "OnFailure",
            dests
                .and_then(|d| d.on_failure.as_ref())
                .and_then(|d| d.destination.as_ref()),
        ),
    ] {
        let Some(arn) = arn else { continue };
        match destination_kind(arn) {
            None => {
                return Err(ControlError::InvalidParameter(format!(
                    "The provided destination config DestinationConfig.{which} is invalid: {arn} is not a Lambda function, SQS queue, SNS topic, EventBridge event bus or S3 bucket ARN."
                )));
            }
            Some(DestinationKind::Store { queue })
                if which == "OnSuccess" && queue.starts_with("s3-") =>
            {
                return Err(ControlError::InvalidParameter(
                    "S3 buckets are supported as OnFailure destinations only.".into(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl ControlPlane {
    /// The function and qualifier key ('$LATEST' when unqualified) a config call targets.
    fn config_target(&self, raw: &str, qualifier: Option<&str>) -> Result<(FunctionRef, String)> {
        let r = parse_ref(self, raw, qualifier, true)?;
        self.load(&r)?;
        let key = r.qualifier.clone().unwrap_or(Qualifier::Latest).to_string();
        Ok((r, key))
    }

    fn config_arn(&self, name: &str, key: &str) -> String {
        format!("{}:{key}", self.arn().function_arn(name))
    }

    fn write_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: EventInvokeConfigInput,
        merge: bool,
    ) -> Result<EventConfigView> {
        check_input(&input)?;
        let _guard = self.lock();
        let (r, key) = self.config_target(raw, qualifier)?;
        let existing = self.store().event_invoke_config(&r.name, &key)?;
        let mut config = match (merge, existing) {
            (true, Some(c)) => c,
            _ => EventInvokeConfig {
                maximum_retry_attempts: None,
                maximum_event_age_in_seconds: None,
                on_success: None,
                on_failure: None,
                last_modified_ms: 0,
            },
        };
        if let Some(n) = input.maximum_retry_attempts {
            config.maximum_retry_attempts = Some(n as u32);
        }
        if let Some(n) = input.maximum_event_age_in_seconds {
            config.maximum_event_age_in_seconds = Some(n as u32);
        }
        if let Some(d) = input.destination_config {
            if let Some(s) = d.on_success {
                config.on_success = s.destination.filter(|a| !a.is_empty());
            }
            if let Some(f) = d.on_failure {
                config.on_failure = f.destination.filter(|a| !a.is_empty());
            }
        }
        config.last_modified_ms = now_ms();
        match self.store().put_event_invoke_config(&r.name, &key, &config) {
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
            other => Ok(other?),
        }?;
        Ok(EventConfigView {
            function_arn: self.config_arn(&r.name, &key),
            config,
        })
    }

    /// PutFunctionEventInvokeConfig: replaces the configuration (omitted members are reset).
    pub fn put_event_invoke_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: EventInvokeConfigInput,
    ) -> Result<EventConfigView> {
        self.write_config(raw, qualifier, input, false)
    }

    /// UpdateFunctionEventInvokeConfig: merges into the existing configuration.
    pub fn update_event_invoke_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: EventInvokeConfigInput,
    ) -> Result<EventConfigView> {
        self.write_config(raw, qualifier, input, true)
    }

    /// GetFunctionEventInvokeConfig.
    pub fn get_event_invoke_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
    ) -> Result<EventConfigView> {
        let (r, key) = self.config_target(raw, qualifier)?;
        let function_arn = self.config_arn(&r.name, &key);
        let config = self
            .store()
            .event_invoke_config(&r.name, &key)?
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "The function {function_arn} doesn't have an EventInvokeConfig"
                ))
            })?;
        Ok(EventConfigView {
            function_arn,
            config,
        })
    }

    /// DeleteFunctionEventInvokeConfig.
    pub fn delete_event_invoke_config(&self, raw: &str, qualifier: Option<&str>) -> Result<()> {
        let _guard = self.lock();
        let (r, key) = self.config_target(raw, qualifier)?;
        if !self.store().delete_event_invoke_config(&r.name, &key)? {
            return Err(ControlError::NotFound(format!(
                "The function {} doesn't have an EventInvokeConfig",
                self.config_arn(&r.name, &key)
            )));
        }
        Ok(())
    }

    /// ListFunctionEventInvokeConfigs.
    pub fn list_event_invoke_configs(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<EventConfigView>> {
        let size = page_size(max_items, 50, 50)?;
        let r = parse_ref(self, raw, None, true)?;
        if self.store().function(&r.name)?.is_none() {
            return Err(self.not_found(&r));
        }
        let items: Vec<EventConfigView> = self
            .store()
            .event_invoke_configs(&r.name)?
            .into_iter()
            .map(|(key, config)| EventConfigView {
                function_arn: self.config_arn(&r.name, &key),
                config,
            })
            .collect();
        Ok(paginate(items, |c| c.function_arn.clone(), marker, size))
    }

    /// The settings an asynchronous event of `function` invoked with `qualifier` runs under
    /// (Lambda's defaults when nothing is configured). Cached between control-plane writes
    /// like invoke targets: any write (of this node, or announced by another node's through
    /// the store's change listener) moves the generation and the next event reads again.
    pub fn async_settings(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<EventInvokeConfig> {
        let key = (
            function.to_owned(),
            qualifier.unwrap_or("$LATEST").to_owned(),
        );
        // Read before the store: a write that lands during the read moves the generation past
        // the one recorded, so what this read returned is not reused.
        let generation = self.generation();
        let cached = self
            .event_config_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, c)| c.clone());
        let config = match cached {
            Some(c) => c,
            None => {
                let fresh = self.store().event_invoke_config(&key.0, &key.1)?;
                let mut cache = self
                    .event_config_cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(key, (generation, fresh.clone()));
                fresh
            }
        };
        Ok(config.unwrap_or(EventInvokeConfig {
            maximum_retry_attempts: None,
            maximum_event_age_in_seconds: None,
            on_success: None,
            on_failure: None,
            last_modified_ms: 0,
        }))
    }
}
