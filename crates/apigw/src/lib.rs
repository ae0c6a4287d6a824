//! API Gateway's domain, for both API kinds Kindling serves:
//!
//! * **HTTP APIs** (API Gateway v2, [`http_api`]): routes (`GET /pets/{id}`, `ANY /{proxy+}`,
//!   `$default`), `AWS_PROXY` integrations to functions (payload format 1.0 or 2.0), stages
//!   (`$default`, auto-deploy, stage variables), deployments, CORS configuration; quick create.
//! * **REST APIs** (API Gateway v1, [`rest_api`]): a resource tree with methods and their
//!   integrations, imported from OpenAPI 3 or Swagger 2 ([`openapi`]) or built call by call;
//!   deployments and stages.
//!
//! Each API is one JSON document in the store ([`kindling_store::ApiStore`]); a change reads
//! it, applies the operation and writes it back with compare-and-swap on its revision
//! (retried when another writer won). A deployment keeps a snapshot of what it deployed, so a
//! stage serves what was deployed to it; auto-deploy stages move to a new snapshot on every
//! change. [`ApiGateway::deployed`] answers the invocation path from memory (a generation
//! counter drops cached snapshots on every write of this node).
//!
//! Nothing here knows HTTP: the wire crate renders [`ApigwError`] and the documents' types,
//! whose serde names are the APIs' wire names.

pub mod error;
pub mod http_api;
pub mod http_import;
mod ids;
pub mod openapi;
pub mod rest_api;
mod retention;
pub mod routing;
mod service;
pub mod target;
mod time;

pub use error::{ApigwError, Result};
pub use service::{ApiGateway, ApigwConfig, Deployed, DeployedHttp, DeployedRest};

#[cfg(test)]
mod tests;
