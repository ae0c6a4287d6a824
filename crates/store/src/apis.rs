//! API Gateway's APIs behind the [`ApiStore`] trait: one versioned JSON document per API (the
//! API Gateway crate owns its shape), so every change is a compare-and-swap on its revision.

use serde_json::Value;

use crate::Result;

/// One API as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRecord {
    pub api_id: String,
    /// `HTTP` (API Gateway v2) or `REST` (v1).
    pub kind: String,
    pub created_ms: i64,
    pub revision_id: String,
    pub document: Value,
}

/// Durable API Gateway state. Each method is atomic.
pub trait ApiStore: Send + Sync + 'static {
    /// Stores a new API; `AlreadyExists(Api)` if the id is taken.
    fn create_api(&self, rec: &ApiRecord) -> Result<()>;
    fn api(&self, api_id: &str) -> Result<Option<ApiRecord>>;
    /// Every API of a kind, oldest first.
    fn apis(&self, kind: &str) -> Result<Vec<ApiRecord>>;
    /// Replaces an API if its revision is still `expected_revision` (else `RevisionMismatch`);
    /// `NotFound(Api)`.
    fn put_api(&self, rec: &ApiRecord, expected_revision: &str) -> Result<()>;
    /// Deletes an API; `NotFound(Api)`.
    fn delete_api(&self, api_id: &str) -> Result<()>;
}
