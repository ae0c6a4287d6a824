//! The control-plane domain: every Lambda management operation as a typed method on
//! [`ControlPlane`], returning typed results or a [`ControlError`].
//!
//! Nothing here knows HTTP. Inputs are the [`input`] structs (deserializable from Lambda's JSON
//! request bodies); outputs are model types the API crate renders. Calls are synchronous and
//! short (the store is embedded); the API runs them on the blocking pool.

mod aliases;
mod code;
mod code_source;
mod concurrency;
mod error;
mod event_config;
mod functions;
pub mod image;
pub mod input;
mod invoke;
mod layers;
mod paginate;
mod policy;
mod provisioned;
mod resolve;
mod tags;
mod urls;
mod versions;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kindling_model::ArnContext;
use kindling_model::runtime::{Availability, RuntimeSupport};
use kindling_store::{BlobStore, Store};

pub use aliases::AliasList;
pub use code_source::{FetchError, ObjectSource};
pub use concurrency::AccountSettings;
pub use error::{ControlError, Result};
pub use event_config::EventConfigView;
pub use functions::{FunctionDetails, FunctionList};
pub use image::{ImageSource, ImageSourceError, ResolvedImage};

pub use layers::{LayerList, LayerVersionList, LayerView};
pub use paginate::Page;
pub use policy::PolicyView;
pub use provisioned::{ProvisionedTarget, ProvisionedView};
pub use resolve::Resolved;
pub use urls::{FunctionUrlView, UrlTarget};

/// Settings of the control plane, passed in by the binary.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub arn: ArnContext,
    /// Account concurrency limit (`ConcurrentExecutions`).
    pub account_concurrency: u32,
    /// Concurrency that reservations must leave unreserved.
    pub min_unreserved_concurrency: u32,
}

/// The control plane over a store and a blob store.
pub struct ControlPlane {
    store: Arc<dyn Store>,
    blobs: BlobStore,
    config: ControlConfig,
    /// Serializes read-validate-write sequences on this node; the store's revision checks
    /// keep them safe across nodes.
    write: Mutex<()>,
    /// Bumped after every write (of this node, or of another node sharing the store);
    /// cached invoke targets of an older generation are stale.
    generation: AtomicU64,
    /// False while writes of other nodes may go unannounced (the store's change listener
    /// lost its connection): then nothing cached is reused.
    caching: AtomicBool,
    invoke_cache: Mutex<invoke::InvokeCache>,
    /// Function URLs by url-id, valid for one generation.
    url_cache: Mutex<urls::UrlCache>,
    /// Event invoke configurations by function and qualifier, valid for one generation.
    event_config_cache: Mutex<event_config::EventConfigCache>,
    /// Where `S3Bucket`/`S3Key` packages are read from.
    code_source: Option<Arc<dyn ObjectSource>>,
    /// What the host can run; without it every known runtime is accepted.
    runtime_support: Option<Arc<dyn RuntimeSupport>>,
    /// Where container images come from.
    image_source: Option<Arc<dyn ImageSource>>,
}

/// Holds the write lock; on release it invalidates cached invoke targets.
pub(crate) struct WriteGuard<'a> {
    _lock: MutexGuard<'a, ()>,
    generation: &'a AtomicU64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl ControlPlane {
    pub fn new(store: Arc<dyn Store>, blobs: BlobStore, config: ControlConfig) -> Self {
        Self {
            store,
            blobs,
            config,
            write: Mutex::new(()),
            generation: AtomicU64::new(0),
            caching: AtomicBool::new(true),
            invoke_cache: Mutex::new(Default::default()),
            url_cache: Mutex::new(Default::default()),
            event_config_cache: Mutex::new(Default::default()),
            code_source: None,
            runtime_support: None,
            image_source: None,
        }
    }

    /// Reads `S3Bucket`/`S3Key` deployment packages from `source`.
    pub fn with_object_source(mut self, source: Arc<dyn ObjectSource>) -> Self {
        self.code_source = Some(source);
        self
    }

    /// Refuses, at CreateFunction and UpdateFunctionConfiguration, runtimes the host cannot run.
    pub fn with_runtime_support(mut self, support: Arc<dyn RuntimeSupport>) -> Self {
        self.runtime_support = Some(support);
        self
    }

    /// How the host runs `runtime` on `architecture` (`Exact` without a runtime support).
    pub(crate) fn availability(&self, runtime: Option<&str>, architecture: &str) -> Availability {
        match &self.runtime_support {
            Some(s) => s.availability(runtime, architecture),
            None => Availability::Exact,
        }
    }

    /// Resolves `ImageUri`s with `source`.
    pub fn with_image_source(mut self, source: Arc<dyn ImageSource>) -> Self {
        self.image_source = Some(source);
        self
    }

    pub(crate) fn image_source(&self) -> Option<&dyn ImageSource> {
        self.image_source.as_deref()
    }

    pub(crate) fn code_source(&self) -> Option<&dyn ObjectSource> {
        self.code_source.as_deref()
    }

    /// Bumped after every write of this node or, with a shared store, of any node: what
    /// callers cache from reads (invoke targets, policies) is stale once it moves. While other
    /// nodes' writes cannot be heard of, every call returns a new generation, so nothing
    /// cached is reused.
    pub fn generation(&self) -> u64 {
        if self.caching.load(Ordering::Acquire) {
            self.generation.load(Ordering::Acquire)
        } else {
            self.generation.fetch_add(1, Ordering::AcqRel) + 1
        }
    }

    /// What a shared store's change listener reports (see [`kindling_store::Change`]): another
    /// node's write makes everything cached stale; a lost listener stops caching until it
    /// has resynchronized. Called on the listener's thread, before the write returns to its
    /// caller on the other node.
    pub fn on_store_change(&self, change: kindling_store::Change) {
        match change {
            kindling_store::Change::Lost => self.caching.store(false, Ordering::Release),
            kindling_store::Change::Resync => self.caching.store(true, Ordering::Release),
            kindling_store::Change::Committed(_) => {}
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    pub fn arn(&self) -> &ArnContext {
        &self.config.arn
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn lock(&self) -> WriteGuard<'_> {
        WriteGuard {
            _lock: self.write.lock().unwrap_or_else(PoisonError::into_inner),
            generation: &self.generation,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fresh revision id.
pub(crate) fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod urls_tests;
