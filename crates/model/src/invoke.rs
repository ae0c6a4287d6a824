//! What the data plane needs to run one invocation, as resolved by the control plane.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Qualifier;
use crate::function::VersionRecord;

/// The version chosen to run (after alias routing), its packages and concurrency settings.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub record: Arc<VersionRecord>,
    /// The ARN as invoked: unqualified, version or alias ARN.
    pub invoked_arn: String,
    /// The qualifier as invoked (`None`: unqualified, which runs `$LATEST`).
    pub qualifier: Option<Qualifier>,
    pub code_zip: PathBuf,
    /// Layers in order: (blob id, zip path).
    pub layers: Vec<(String, PathBuf)>,
    pub reserved_concurrency: Option<u32>,
    /// Account concurrency not reserved by any function.
    pub unreserved_pool: u32,
}

impl InvokeTarget {
    /// The function ARN qualified with what was invoked (`...:$LATEST` when unqualified), as
    /// destination records show it.
    pub fn qualified_arn(&self) -> String {
        match self.qualifier {
            Some(_) => self.invoked_arn.clone(),
            None => format!("{}:$LATEST", self.invoked_arn),
        }
    }
}
