//! What the engine asks of resource handlers. The server's handlers call Kindling's own
//! services in-process ([`crate::handlers::Kindling`]); tests use fakes.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a resource lives.
#[derive(Debug, Clone)]
pub struct ResourceContext {
    pub stack_name: String,
    pub stack_id: String,
    pub logical_id: String,
    pub resource_type: String,
    /// A name to use when the template gives none: `{stack}-{logical id}-{random}`, chosen
    /// (and recorded) before the handler runs so that an interrupted create can be undone.
    pub physical_name: String,
    /// For an alias of a SAM function with a `DeploymentPreference`: how an update moves its
    /// traffic to the new version (CodeDeploy's part, carried out by the handler).
    pub traffic_shifting: Option<kindling_cfn_template::TrafficShifting>,
}

/// A created or updated resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioned {
    pub physical_id: String,
    /// What `Ref` returns.
    pub ref_value: Value,
    /// What `Fn::GetAtt` returns.
    pub attributes: Map<String, Value>,
    /// A note for the resource's COMPLETE event (e.g. that Kindling has no IAM).
    pub note: Option<String>,
}

impl Provisioned {
    /// A resource whose `Ref` is its physical id.
    pub fn named(physical_id: impl Into<String>) -> Self {
        let physical_id = physical_id.into();
        Self {
            ref_value: Value::String(physical_id.clone()),
            physical_id,
            attributes: Map::new(),
            note: None,
        }
    }

    pub fn attr(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }
}

/// Why a handler failed: the text becomes the resource's status reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

impl ProvisionError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Creates, updates and deletes physical resources.
pub trait Provider: Send + Sync + 'static {
    /// Whether the type is supported (others fail the stack, naming the type).
    fn supports(&self, resource_type: &str) -> bool;

    /// Whether changing from `old` to `new` properties needs a new physical resource
    /// (beyond the properties `kindling-cfn-template` lists as replacing).
    fn requires_replacement(
        &self,
        _resource_type: &str,
        _old: &Map<String, Value>,
        _new: &Map<String, Value>,
    ) -> bool {
        false
    }

    /// The physical id `create` will produce, when known beforehand.
    fn expected_physical_id(
        &self,
        _ctx: &ResourceContext,
        _properties: &Map<String, Value>,
    ) -> Option<String> {
        None
    }

    fn create<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        properties: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>>;

    /// Updates in place: `current` is the resource as deployed.
    fn update<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical_id: &'a str,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>>;

    /// Deletes; a resource already gone is success.
    fn delete<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical_id: &'a str,
        properties: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), ProvisionError>>;
}

/// Reads `TemplateURL`s (S3 objects in Kindling's store).
pub trait TemplateSource: Send + Sync + 'static {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<String, String>>;
}
