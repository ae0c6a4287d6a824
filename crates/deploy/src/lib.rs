//! Kindling's CloudFormation engine.
//!
//! * [`Deployer`] holds every stack, its events and change sets (durable in
//!   `kindling-store`'s [`kindling_store::StackStore`]) and runs stack operations on tasks;
//! * `run` carries out an operation resource by resource in dependency order, journaling
//!   each step before its handler runs, and rolls back on failure (or after a crash);
//! * [`Provider`] is what handlers implement; [`handlers::Kindling`] provisions resources
//!   with Kindling's own services, in-process.
//!
//! Templates are parsed, transformed (SAM), validated and evaluated by
//! `kindling-cfn-template`.

pub mod api;
pub mod engine;
pub mod error;
pub mod handlers;
pub mod model;
pub mod prepare;
pub mod provider;
mod run;

pub use api::{
    ChangeSetInput, StackInput, SummaryParameter, TemplateInput, TemplateSummary, shown_parameters,
};
pub use engine::{DeployConfig, Deployer};
pub use error::DeployError;
pub use provider::{
    BoxFuture, Provider, ProvisionError, Provisioned, ResourceContext, TemplateSource,
};

#[cfg(test)]
mod tests;
