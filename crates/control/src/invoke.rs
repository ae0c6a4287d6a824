//! Resolving an Invoke call to the version that runs: qualifier or alias, weighted routing,
//! package paths and concurrency settings, cached in memory between control-plane writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use kindling_model::function::VersionRecord;
use kindling_model::invoke::InvokeTarget;
use kindling_model::layer::LayerVersionRef;
use kindling_model::{FunctionRef, Qualifier};
use kindling_store::BlobId;

use crate::ControlPlane;
use crate::error::{ControlError, Result};
use crate::resolve::parse_ref;

/// A resolved reference before the routing draw.
#[derive(Debug, Clone)]
pub(crate) struct CachedTarget {
    generation: u64,
    primary: InvokeTarget,
    /// The alias's additional version and its weight.
    routed: Option<(InvokeTarget, f64)>,
}

impl CachedTarget {
    /// Draws the version to run: the alias's additional version with its weight's probability.
    fn draw(self) -> InvokeTarget {
        match self.routed {
            Some((routed, weight)) if fastrand::f64() < weight => routed,
            _ => self.primary,
        }
    }

    /// [`draw`](Self::draw) without consuming the cache entry.
    fn draw_cloned(&self) -> InvokeTarget {
        match &self.routed {
            Some((routed, weight)) if fastrand::f64() < *weight => routed.clone(),
            _ => self.primary.clone(),
        }
    }
}

pub(crate) type InvokeCache = HashMap<(String, Option<Qualifier>), CachedTarget>;

impl ControlPlane {
    /// Resolves an Invoke's function name and `Qualifier` to what runs, drawing the version of a
    /// weighted alias at random by its weights.
    pub fn invoke_target(&self, raw: &str, qualifier: Option<&str>) -> Result<InvokeTarget> {
        let r = parse_ref(self, raw, qualifier, true)?;
        let generation = self.generation();
        let entry = match self.cached(&r, generation) {
            Some(c) => c,
            None => {
                let fresh = self.load_target(&r, generation)?;
                let mut cache = self
                    .invoke_cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Entries of older generations are never read again: dropped here, so that
                // the cache holds what is invoked now, not every function ever invoked
                // (deleted ones included).
                cache.retain(|_, c| c.generation == generation);
                cache.insert((r.name.clone(), r.qualifier.clone()), fresh.clone());
                fresh
            }
        };
        Ok(entry.draw())
    }

    /// The invoke target from memory only, without touching the store: `Ok(None)` when it is
    /// not cached (call [`Self::invoke_target`] off the async runtime then). Lets the hot path
    /// of warm invocations skip the blocking pool.
    pub fn cached_invoke_target(
        &self,
        raw: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<InvokeTarget>> {
        let r = parse_ref(self, raw, qualifier, true)?;
        let generation = self.generation();
        // Only the drawn version's target is cloned (the warm path runs this per invoke).
        Ok(self
            .invoke_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(r.name, r.qualifier))
            .filter(|c| c.generation == generation)
            .map(CachedTarget::draw_cloned))
    }

    fn cached(&self, r: &FunctionRef, generation: u64) -> Option<CachedTarget> {
        self.invoke_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(r.name.clone(), r.qualifier.clone()))
            .filter(|c| c.generation == generation)
            .cloned()
    }

    fn load_target(&self, r: &FunctionRef, generation: u64) -> Result<CachedTarget> {
        let resolved = self.load(r)?;
        let meta = self
            .store()
            .function(&r.name)?
            .ok_or_else(|| self.not_found(r))?;
        let usage = self.store().account_usage()?;
        let unreserved_pool = u64::from(self.config().account_concurrency)
            .saturating_sub(usage.reserved_concurrency) as u32;
        let invoked_arn = match &r.qualifier {
            Some(q) => self.arn().qualified_arn(&r.name, q),
            None => self.arn().function_arn(&r.name),
        };
        let build = |record: VersionRecord| -> Result<InvokeTarget> {
            let (code_zip, image_layers) = match &record.code.image {
                Some(image) => (PathBuf::new(), self.image_layer_paths(image)?),
                None => (self.blob_path(&record.code.blob)?, Vec::new()),
            };
            Ok(InvokeTarget {
                code_zip,
                image_layers,
                layers: self.layer_paths(&record)?,
                record: Arc::new(record),
                invoked_arn: invoked_arn.clone(),
                qualifier: r.qualifier.clone(),
                reserved_concurrency: meta.reserved_concurrency,
                unreserved_pool,
            })
        };
        let routed = match resolved.routing {
            Some((version, weight)) => {
                let record = self
                    .store()
                    .version(&r.name, Some(version))?
                    .ok_or_else(|| {
                        self.not_found(&FunctionRef {
                            qualifier: Some(Qualifier::Version(version)),
                            ..r.clone()
                        })
                    })?;
                Some((build(record)?, weight))
            }
            None => None,
        };
        Ok(CachedTarget {
            generation,
            primary: build(resolved.record)?,
            routed,
        })
    }

    fn blob_path(&self, blob: &str) -> Result<PathBuf> {
        let id = BlobId::parse(blob)
            .ok_or_else(|| ControlError::Internal(format!("corrupt blob id {blob}")))?;
        // With a shared store, the package is copied to this node (and checked) on first use.
        self.blobs()
            .ensure(&id)
            .map_err(|e| ControlError::Internal(format!("code package {blob}: {e}")))
    }

    fn layer_paths(&self, rec: &VersionRecord) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::with_capacity(rec.spec.layers.len());
        for layer in &rec.spec.layers {
            let r = LayerVersionRef::parse(&layer.arn).ok_or_else(|| {
                ControlError::Internal(format!("corrupt layer arn {}", layer.arn))
            })?;
            let lv = self
                .store()
                .layer_version(&r.name, r.version, true)?
                .ok_or_else(|| {
                    ControlError::InvalidParameter(format!(
                        "Layer version {} does not exist.",
                        layer.arn
                    ))
                })?;
            out.push((lv.code.blob.clone(), self.blob_path(&lv.code.blob)?));
        }
        Ok(out)
    }
}
