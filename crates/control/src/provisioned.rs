//! Put/Get/Delete/ListProvisionedConcurrencyConfig(s): the configurations, kept in the
//! function-level record, and Lambda's rules for them. The environments they ask for are the
//! data plane's business (the API hands [`ControlPlane::provisioned_targets`] to the
//! scheduler after every change).
//!
//! Lambda's rules enforced here:
//! - only on a published version or an alias (never `$LATEST`, nor an alias pointing at it,
//!   nor an alias with routing weights);
//! - one configuration per version: directly or through one alias, never both;
//! - within the function's reserved concurrency when it has one, else taken from the
//!   account's unreserved pool, which must keep its minimum.

use kindling_model::function::{FunctionMeta, ProvisionedConfig};
use kindling_model::invoke::InvokeTarget;
use kindling_model::timefmt::lambda_timestamp;
use kindling_model::{FunctionRef, Qualifier};
use kindling_store::{Entity, StoreError};

use crate::error::{ControlError, Result};
use crate::paginate::{Page, page_size, paginate};
use crate::resolve::parse_ref;
use crate::{ControlPlane, now_ms};

const ON_LATEST: &str =
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions.";
const NOT_PUBLISHED: &str =
    "The function resource provided must be an alias or a published version.";
const NO_CONFIG: &str = "No Provisioned Concurrency Config found for this function";
const OVER_RESERVED: &str = "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function";
const ALIAS_ON_PROVISIONED_VERSION: &str = "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version";
const VERSION_UNDER_ALIAS: &str = "Version is pointed by a Provisioned Concurrency alias";
const ALIAS_WITH_WEIGHTS: &str = "Alias with weights can not be used with Provisioned Concurrency";

/// One configuration as the API renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionedView {
    pub function_name: String,
    /// The version number or alias name it was put on.
    pub qualifier: String,
    /// The function ARN qualified with `qualifier`.
    pub function_arn: String,
    /// The version whose environments serve it (an alias's current version); `None` when the
    /// qualifier no longer leads to a published version.
    pub version: Option<u64>,
    pub requested: u32,
    /// `LastModified` (Lambda's string timestamp).
    pub last_modified: String,
}

/// A configuration and what its environments run (`None`: nothing to run any more).
#[derive(Debug, Clone)]
pub struct ProvisionedTarget {
    pub view: ProvisionedView,
    pub target: Option<InvokeTarget>,
}

/// The provisioned part of a reference: a version number or an alias name.
enum Slot {
    Version(u64),
    Alias(String),
}

impl Slot {
    fn key(&self) -> String {
        match self {
            Slot::Version(n) => n.to_string(),
            Slot::Alias(a) => a.clone(),
        }
    }
}

impl ControlPlane {
    /// Parses the function and the required qualifier; `$LATEST` (or none) is refused with
    /// `latest_message`.
    fn provisioned_ref(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        latest_message: &str,
    ) -> Result<(FunctionRef, Slot)> {
        let r = parse_ref(self, raw, qualifier, false)?;
        let slot = match &r.qualifier {
            None | Some(Qualifier::Latest) => {
                return Err(ControlError::InvalidParameter(latest_message.into()));
            }
            Some(Qualifier::Version(n)) => Slot::Version(*n),
            Some(Qualifier::Alias(a)) => Slot::Alias(a.clone()),
        };
        Ok((r, slot))
    }

    /// The function's record, and the version the slot leads to (`None` for an alias on
    /// `$LATEST`), with the errors Lambda gives for a missing function, version or alias.
    fn provisioned_slot(
        &self,
        r: &FunctionRef,
        slot: &Slot,
    ) -> Result<(FunctionMeta, Option<u64>)> {
        let meta = self.store().function(&r.name)?.ok_or_else(|| {
            self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            })
        })?;
        let version = match slot {
            Slot::Version(n) => {
                if self.store().version(&r.name, Some(*n))?.is_none() {
                    return Err(self.not_found(r));
                }
                Some(*n)
            }
            Slot::Alias(a) => {
                let alias = self.store().alias(&r.name, a)?.ok_or_else(|| {
                    ControlError::NotFound(format!(
                        "Cannot find alias arn: {}",
                        self.arn()
                            .qualified_arn(&r.name, &Qualifier::Alias(a.clone()))
                    ))
                })?;
                match Qualifier::parse(&alias.function_version) {
                    Some(Qualifier::Version(n)) => Some(n),
                    _ => None,
                }
            }
        };
        Ok((meta, version))
    }

    /// The version each configured qualifier of `name` leads to now.
    fn configured_versions(&self, meta: &FunctionMeta) -> Result<Vec<(String, Option<u64>)>> {
        let mut out = Vec::with_capacity(meta.provisioned.len());
        for q in meta.provisioned.keys() {
            let version = match Qualifier::parse(q) {
                Some(Qualifier::Version(n)) => Some(n),
                Some(Qualifier::Alias(a)) => self.store().alias(&meta.name, &a)?.and_then(|al| {
                    match Qualifier::parse(&al.function_version) {
                        Some(Qualifier::Version(n)) => Some(n),
                        _ => None,
                    }
                }),
                _ => None,
            };
            out.push((q.clone(), version));
        }
        Ok(out)
    }

    fn provisioned_view(
        &self,
        name: &str,
        qualifier: &str,
        version: Option<u64>,
        c: &ProvisionedConfig,
    ) -> ProvisionedView {
        let q = Qualifier::parse(qualifier).unwrap_or(Qualifier::Alias(qualifier.to_string()));
        ProvisionedView {
            function_name: name.to_string(),
            qualifier: qualifier.to_string(),
            function_arn: self.arn().qualified_arn(name, &q),
            version,
            requested: c.requested,
            last_modified: lambda_timestamp(c.last_modified_ms),
        }
    }

    /// PutProvisionedConcurrencyConfig.
    pub fn put_provisioned(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        value: Option<i64>,
    ) -> Result<ProvisionedView> {
        let value = match value {
            None => {
                return Err(ControlError::Validation(
                    "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must not be null".into(),
                ));
            }
            Some(v) if v < 1 => {
                return Err(ControlError::Validation(format!(
                    "1 validation error detected: Value '{v}' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
            Some(v) => u32::try_from(v).unwrap_or(u32::MAX),
        };
        let (r, slot) = self.provisioned_ref(raw, qualifier, ON_LATEST)?;
        let _guard = self.lock();
        let (mut meta, version) = self.provisioned_slot(&r, &slot)?;
        let Some(version) = version else {
            return Err(ControlError::InvalidParameter(ON_LATEST.into()));
        };
        if let Slot::Alias(a) = &slot
            && let Some(alias) = self.store().alias(&r.name, a)?
            && !alias.weights.is_empty()
        {
            return Err(ControlError::InvalidParameter(ALIAS_WITH_WEIGHTS.into()));
        }
        let key = slot.key();
        let others: u64 = meta
            .provisioned
            .iter()
            .filter(|(q, _)| **q != key)
            .map(|(_, c)| u64::from(c.requested))
            .sum();
        let cfg = self.config();
        match meta.reserved_concurrency {
            Some(reserved) if others + u64::from(value) > u64::from(reserved) => {
                return Err(ControlError::InvalidParameter(OVER_RESERVED.into()));
            }
            Some(_) => {}
            None => {
                let usage = self.store().account_usage()?;
                let mine: u64 = meta
                    .provisioned
                    .get(&key)
                    .map_or(0, |c| u64::from(c.requested));
                let unreserved = u64::from(cfg.account_concurrency)
                    .saturating_sub(usage.reserved_concurrency)
                    .saturating_sub(usage.unreserved_provisioned.saturating_sub(mine));
                if u64::from(value) > unreserved {
                    return Err(ControlError::InvalidParameter(format!(
                        "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{unreserved}]."
                    )));
                }
                if unreserved - u64::from(value) < u64::from(cfg.min_unreserved_concurrency) {
                    return Err(ControlError::InvalidParameter(format!(
                        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
                        cfg.min_unreserved_concurrency
                    )));
                }
            }
        }
        for (q, v) in self.configured_versions(&meta)? {
            if q == key || v != Some(version) {
                continue;
            }
            let conflict = match (&slot, Qualifier::parse(&q)) {
                (Slot::Version(_), Some(Qualifier::Alias(_))) => VERSION_UNDER_ALIAS,
                _ => ALIAS_ON_PROVISIONED_VERSION,
            };
            return Err(ControlError::Conflict(conflict.into()));
        }
        let config = ProvisionedConfig {
            requested: value,
            last_modified_ms: now_ms(),
        };
        meta.provisioned.insert(key.clone(), config.clone());
        match self.store().put_function_meta(&meta) {
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
            other => Ok(other?),
        }?;
        Ok(self.provisioned_view(&r.name, &key, Some(version), &config))
    }

    /// GetProvisionedConcurrencyConfig.
    pub fn get_provisioned(&self, raw: &str, qualifier: Option<&str>) -> Result<ProvisionedView> {
        let (r, slot) = self.provisioned_ref(raw, qualifier, NOT_PUBLISHED)?;
        let (meta, version) = self.provisioned_slot(&r, &slot)?;
        let key = slot.key();
        let config = meta
            .provisioned
            .get(&key)
            .ok_or_else(|| ControlError::ProvisionedConfigNotFound(NO_CONFIG.into()))?;
        Ok(self.provisioned_view(&r.name, &key, version, config))
    }

    /// DeleteProvisionedConcurrencyConfig (idempotent once the version or alias exists).
    pub fn delete_provisioned(&self, raw: &str, qualifier: Option<&str>) -> Result<()> {
        let (r, slot) = self.provisioned_ref(raw, qualifier, NOT_PUBLISHED)?;
        let _guard = self.lock();
        let (mut meta, _) = self.provisioned_slot(&r, &slot)?;
        if meta.provisioned.remove(&slot.key()).is_some() {
            match self.store().put_function_meta(&meta) {
                Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
                other => Ok(other?),
            }?;
        }
        Ok(())
    }

    /// ListProvisionedConcurrencyConfigs, by qualifier.
    pub fn list_provisioned(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<ProvisionedView>> {
        let size = page_size(max_items, 50, 50)?;
        let r = parse_ref(self, raw, None, false)?;
        let meta = self.store().function(&r.name)?.ok_or_else(|| {
            self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            })
        })?;
        let items: Vec<ProvisionedView> = self
            .configured_versions(&meta)?
            .into_iter()
            .filter_map(|(q, v)| {
                let c = meta.provisioned.get(&q)?;
                Some(self.provisioned_view(&r.name, &q, v, c))
            })
            .collect();
        Ok(paginate(items, |v| v.qualifier.clone(), marker, size))
    }

    /// Every configuration of `name` with what its environments run now (empty when the
    /// function is gone): what the data plane keeps provisioned for it.
    pub fn provisioned_targets(&self, name: &str) -> Result<Vec<ProvisionedTarget>> {
        let Some(meta) = self.store().function(name)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(meta.provisioned.len());
        for (q, version) in self.configured_versions(&meta)? {
            let Some(c) = meta.provisioned.get(&q) else {
                continue;
            };
            let target = match version {
                Some(v) => match self.invoke_target(name, Some(&v.to_string())) {
                    Ok(t) => Some(t),
                    Err(ControlError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            out.push(ProvisionedTarget {
                view: self.provisioned_view(name, &q, version, c),
                target,
            });
        }
        Ok(out)
    }

    /// Removes the configuration on `qualifier` (a version or alias being deleted), if any.
    /// The caller holds the control lock.
    pub(crate) fn forget_provisioned(&self, name: &str, qualifier: &str) -> Result<()> {
        let Some(mut meta) = self.store().function(name)? else {
            return Ok(());
        };
        if meta.provisioned.remove(qualifier).is_none() {
            return Ok(());
        }
        match self.store().put_function_meta(&meta) {
            Err(StoreError::NotFound(Entity::Function)) => Ok(()),
            other => Ok(other?),
        }
    }

    /// Names of the functions with provisioned concurrency configurations (for a restart).
    pub fn provisioned_functions(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_functions(false, marker.as_deref(), None)?;
            for f in &page.items {
                if let Some(meta) = self.store().function(&f.function_name)?
                    && !meta.provisioned.is_empty()
                {
                    names.push(meta.name);
                }
            }
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => return Ok(names),
            }
        }
    }
}
