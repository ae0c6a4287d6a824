//! The API Gateway service over the store: loading and saving API documents
//! (compare-and-swap, retried), and what the invocation path needs, from memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use kindling_model::ArnContext;
use kindling_store::{ApiRecord, ApiStore, Entity, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApigwError, Result};
use crate::http_api::{self, CompiledRoute, Cors, HttpApiDoc};
use crate::rest_api::{self, CompiledResource, RestApiDoc};
use crate::{ids, time};

/// APIs whose compiled deployments are kept in memory at most.
const MAX_CACHED: usize = 4096;

/// Attempts of a change that keeps losing its compare-and-swap to other writers.
const CAS_ATTEMPTS: usize = 16;

/// Settings passed in by the binary.
#[derive(Debug, Clone)]
pub struct ApigwConfig {
    pub arn: ArnContext,
}

/// Which API Gateway an API belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    Rest,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Rest => "REST",
        }
    }

    fn not_found(self, api_id: &str) -> ApigwError {
        match self {
            Self::Http => {
                ApigwError::NotFound(format!("Invalid API identifier specified {api_id}"))
            }
            Self::Rest => {
                ApigwError::NotFound(format!("Invalid API identifier specified {api_id}"))
            }
        }
    }
}

/// A deployed HTTP API stage, ready for matching.
#[derive(Debug)]
pub struct DeployedHttp {
    pub api_id: String,
    pub stage: String,
    pub stage_variables: Vec<(String, String)>,
    pub routes: Vec<CompiledRoute>,
    pub default_route: Option<CompiledRoute>,
    pub cors: Option<Cors>,
}

/// A deployed REST API stage, ready for matching.
#[derive(Debug)]
pub struct DeployedRest {
    pub api_id: String,
    pub stage: String,
    pub stage_variables: Vec<(String, String)>,
    pub resources: Vec<CompiledResource>,
    pub binary_media_types: Vec<String>,
}

/// What an invocation finds for an API id.
#[derive(Debug)]
pub enum Deployed {
    Http {
        /// Every stage with a deployment, by name (`$default` included).
        stages: HashMap<String, Arc<DeployedHttp>>,
        disabled: bool,
    },
    Rest {
        stages: HashMap<String, Arc<DeployedRest>>,
        disabled: bool,
    },
}

/// A compiled deployment, with the generation and instant it was read at.
type CachedDeployment = (u64, Arc<Deployed>, std::time::Instant);

/// API Gateway over a store. Share it in an `Arc`; methods are blocking (the store is
/// synchronous): call them off the async runtime, except [`ApiGateway::cached`].
pub struct ApiGateway {
    store: Arc<dyn ApiStore>,
    config: ApigwConfig,
    /// Bumped after every write of this node; cached deployments of an older one are stale.
    generation: AtomicU64,
    /// Compiled deployments by API id, with the generation and instant they were read at.
    cache: Mutex<HashMap<String, CachedDeployment>>,
    /// Set when other nodes share the store (their writes do not bump this node's
    /// generation): how long a cached deployment is trusted.
    refresh: Option<std::time::Duration>,
}

impl ApiGateway {
    pub fn new(store: Arc<dyn ApiStore>, config: ApigwConfig) -> Self {
        Self {
            store,
            config,
            generation: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            refresh: None,
        }
    }

    /// Other nodes write the same store: cached deployments are read again after `every`.
    pub fn with_refresh(mut self, every: std::time::Duration) -> Self {
        self.refresh = Some(every);
        self
    }

    pub fn arn(&self) -> &ArnContext {
        &self.config.arn
    }

    pub(crate) fn load<D: DeserializeOwned>(&self, api_id: &str, kind: Kind) -> Result<D> {
        Ok(self.record(api_id, kind)?.1)
    }

    fn record<D: DeserializeOwned>(&self, api_id: &str, kind: Kind) -> Result<(ApiRecord, D)> {
        if !ids::plausible(api_id) {
            return Err(kind.not_found(api_id));
        }
        let rec = self
            .store
            .api(api_id)?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| kind.not_found(api_id))?;
        let doc = decode(&rec)?;
        Ok((rec, doc))
    }

    pub(crate) fn list<D: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<D>> {
        self.store.apis(kind.as_str())?.iter().map(decode).collect()
    }

    pub(crate) fn insert<D: Serialize>(&self, api_id: &str, kind: Kind, doc: &D) -> Result<()> {
        let rec = ApiRecord {
            api_id: api_id.to_string(),
            kind: kind.as_str().into(),
            created_ms: time::now_ms(),
            revision_id: ids::revision(),
            document: encode(doc)?,
        };
        let res = self.store.create_api(&rec);
        self.bump();
        match res {
            Err(StoreError::AlreadyExists(Entity::Api)) => Err(ApigwError::Conflict(
                "An API with this id already exists; try again.".into(),
            )),
            other => Ok(other?),
        }
    }

    /// Reads the document, applies `f` and writes it back if nobody changed it meanwhile
    /// (else again, with the newer document).
    pub(crate) fn update<D, T>(
        &self,
        api_id: &str,
        kind: Kind,
        mut f: impl FnMut(&mut D) -> Result<T>,
    ) -> Result<T>
    where
        D: Serialize + DeserializeOwned,
    {
        for _ in 0..CAS_ATTEMPTS {
            let (rec, mut doc) = self.record::<D>(api_id, kind)?;
            let out = f(&mut doc)?;
            let next = ApiRecord {
                revision_id: ids::revision(),
                document: encode(&doc)?,
                ..rec.clone()
            };
            let res = self.store.put_api(&next, &rec.revision_id);
            self.bump();
            match res {
                Ok(()) => return Ok(out),
                Err(StoreError::RevisionMismatch) => continue,
                Err(StoreError::NotFound(Entity::Api)) => return Err(kind.not_found(api_id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApigwError::TooManyRequests(
            "Too many concurrent changes to this API; try again.".into(),
        ))
    }

    pub(crate) fn remove(&self, api_id: &str, kind: Kind) -> Result<()> {
        // Checks the kind first: a v2 DeleteApi must not delete a REST API.
        self.record::<serde_json::Value>(api_id, kind)?;
        let res = self.store.delete_api(api_id);
        self.bump();
        match res {
            Err(StoreError::NotFound(Entity::Api)) => Err(kind.not_found(api_id)),
            other => Ok(other?),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// What the invocation path needs for `api_id`, from memory: `None` when it is not cached
    /// (call [`Self::deployed`] off the async runtime then).
    pub fn cached(&self, api_id: &str) -> Option<Option<Arc<Deployed>>> {
        let generation = self.generation.load(Ordering::Acquire);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(api_id)
            .filter(|(g, _, read)| {
                *g == generation && self.refresh.is_none_or(|every| read.elapsed() < every)
            })
            .map(|(_, d, _)| Some(Arc::clone(d)))
    }

    /// Reads and compiles the deployed stages of `api_id` (either kind); `None` when no such
    /// API exists. Blocking.
    pub fn deployed(&self, api_id: &str) -> Result<Option<Arc<Deployed>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let found = if !ids::plausible(api_id) {
            None
        } else {
            match self.store.api(api_id)? {
                None => None,
                Some(rec) if rec.kind == Kind::Http.as_str() => {
                    let doc: HttpApiDoc = decode(&rec)?;
                    Some(Arc::new(compile_http(&doc, &self.config.arn)))
                }
                Some(rec) => {
                    let doc: RestApiDoc = decode(&rec)?;
                    Some(Arc::new(rest_api::compile(&doc, &self.config.arn)))
                }
            }
        };
        // Only APIs that exist are remembered: ids that name nothing (a client trying random
        // ids) must not grow the cache.
        if found.is_some() {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (g, _, _)| *g == generation);
            }
            if cache.len() < MAX_CACHED
                && let Some(d) = &found
            {
                cache.insert(
                    api_id.to_string(),
                    (generation, Arc::clone(d), std::time::Instant::now()),
                );
            }
        }
        Ok(found)
    }
}

fn compile_http(doc: &HttpApiDoc, ctx: &ArnContext) -> Deployed {
    let mut stages = HashMap::new();
    for s in &doc.stages {
        let Some(snapshot) = s.deployment_id.as_ref().and_then(|d| doc.snapshots.get(d)) else {
            continue;
        };
        let (routes, default_route) = http_api::compile(snapshot, ctx);
        stages.insert(
            s.stage_name.clone(),
            Arc::new(DeployedHttp {
                api_id: doc.api.api_id.clone(),
                stage: s.stage_name.clone(),
                stage_variables: s
                    .stage_variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                routes,
                default_route,
                cors: doc.api.cors_configuration.clone(),
            }),
        );
    }
    Deployed::Http {
        stages,
        disabled: doc.api.disable_execute_api_endpoint,
    }
}

fn decode<D: DeserializeOwned>(rec: &ApiRecord) -> Result<D> {
    serde_json::from_value(rec.document.clone()).map_err(|source| {
        ApigwError::Store(StoreError::CorruptRecord {
            record: "API Gateway document",
            source,
        })
    })
}

fn encode<D: Serialize>(doc: &D) -> Result<serde_json::Value> {
    serde_json::to_value(doc).map_err(|source| {
        ApigwError::Store(StoreError::Encode {
            record: "API Gateway document",
            source,
        })
    })
}
