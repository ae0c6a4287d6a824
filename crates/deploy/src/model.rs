//! The engine's records: stacks, their resources, events and change sets, as stored (JSON
//! documents in `kindling-store`) and as the wire crate renders them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A stack and everything the engine must know to continue or undo what it was doing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stack {
    pub stack_id: String,
    pub stack_name: String,
    pub description: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub creation_ms: i64,
    pub last_updated_ms: Option<i64>,
    pub deletion_ms: Option<i64>,
    pub disable_rollback: bool,
    pub capabilities: Vec<String>,
    pub notification_arns: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub role_arn: Option<String>,
    /// The deployed template as the client sent it (empty while `REVIEW_IN_PROGRESS`).
    pub template_body: String,
    /// The deployed template after transforms (JSON).
    pub processed: Value,
    pub parameters: Vec<StackParameter>,
    pub outputs: Vec<StackOutput>,
    /// In the template's order.
    pub resources: Vec<StackResource>,
    /// The change set last executed (`ChangeSetId` of DescribeStacks).
    pub change_set_id: Option<String>,
    /// The operation in flight (`None` when the stack is in a final state).
    pub operation: Option<Operation>,
    /// The store's revision of this record (every save is a compare-and-swap on it).
    #[serde(skip)]
    pub revision: i64,
    /// The node running the operation, as stored.
    #[serde(skip)]
    pub owner: Option<String>,
}

impl Stack {
    pub fn resource(&self, logical_id: &str) -> Option<&StackResource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    pub fn resource_mut(&mut self, logical_id: &str) -> Option<&mut StackResource> {
        self.resources
            .iter_mut()
            .find(|r| r.logical_id == logical_id)
    }

    /// Inserts or replaces a resource record by logical id.
    pub fn put_resource(&mut self, res: StackResource) {
        match self.resource_mut(&res.logical_id) {
            Some(slot) => *slot = res,
            None => self.resources.push(res),
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.status == status::DELETE_COMPLETE
    }

    /// Drops what a deleted stack no longer needs: the template (original and processed) and
    /// the resources' bodies (properties, attributes, `Ref` values, metadata). What ListStacks,
    /// DescribeStacks, DescribeStackResources and DescribeStackEvents show of it stays
    /// (identity, status, times, parameters, outputs, tags, each resource's summary).
    pub fn shed_deleted(&mut self) {
        // The original template stays: GetTemplate answers it for 90 days, as CloudFormation
        // does for DELETE_COMPLETE stacks.
        self.processed = Value::Null;
        self.operation = None;
        for r in &mut self.resources {
            r.properties = Map::new();
            r.attributes = Map::new();
            r.ref_value = None;
            r.metadata = None;
        }
    }

    /// When a deleted stack was deleted (its last change if the time was not recorded).
    pub fn deleted_at_ms(&self) -> i64 {
        self.deletion_ms
            .or(self.last_updated_ms)
            .unwrap_or(self.creation_ms)
    }

    /// Whether an operation is running (nothing else may start).
    pub fn is_busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != status::REVIEW_IN_PROGRESS
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackParameter {
    pub key: String,
    pub value: String,
    pub no_echo: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackOutput {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub export_name: Option<String>,
}

/// One resource of a stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub last_updated_ms: i64,
    /// The properties as applied (fully resolved).
    pub properties: Map<String, Value>,
    /// What `Ref` returns.
    pub ref_value: Option<Value>,
    /// What `Fn::GetAtt` returns, by attribute name.
    pub attributes: Map<String, Value>,
    /// `Retain` keeps the physical resource when the stack lets go of it.
    pub retain: bool,
    pub metadata: Option<Value>,
}

/// What a running operation changes, so that it can be rolled back (also after a crash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Operation {
    pub kind: OperationKind,
    /// The stack as it was before (template, parameters, outputs, resources) for updates.
    pub previous: Option<Snapshot>,
    /// Every step taken, in order; a step is recorded before its handler is called.
    pub journal: Vec<Step>,
    /// The new template, parameters and outputs to install when the operation succeeds.
    pub target: Option<Snapshot>,
    /// Set once the operation failed and its rollback began.
    pub rolling_back: bool,
    /// Physical resources left to delete in the cleanup phase.
    pub cleanup: Vec<StackResource>,
    /// The change set being executed.
    pub change_set_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum OperationKind {
    Create,
    Update,
    Delete,
}

/// A template with its values (what an update moves from and to).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub template_body: String,
    pub processed: Value,
    pub parameters: Vec<StackParameter>,
    pub outputs: Vec<StackOutput>,
    pub description: Option<String>,
    /// The resources as they were (only in `previous`).
    pub resources: Vec<StackResource>,
}

/// One step of an operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub logical_id: String,
    pub action: StepAction,
    /// The physical id a create will produce when it can be known beforehand (to undo a
    /// create that a crash interrupted).
    pub expected: Option<String>,
    /// The handler finished this step.
    pub done: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum StepAction {
    /// A new resource (its physical name chosen before the handler ran).
    Create,
    /// Updated in place; `old` is the record before.
    Update { old: Box<StackResource> },
    /// A new physical resource replaces `old` (deleted at cleanup, kept on rollback).
    Replace { old: Box<StackResource> },
    /// Removed from the stack (cleanup of an update, or a stack deletion).
    Delete,
}

/// One stack event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackEvent {
    pub event_id: String,
    pub stack_id: String,
    pub stack_name: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub timestamp_ms: i64,
    pub status: String,
    pub status_reason: Option<String>,
    pub properties: Option<String>,
}

/// A change set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangeSet {
    pub change_set_id: String,
    pub change_set_name: String,
    pub stack_id: String,
    pub stack_name: String,
    pub change_set_type: String,
    pub description: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub execution_status: String,
    pub creation_ms: i64,
    pub template_body: String,
    pub processed: Value,
    pub parameters: Vec<StackParameter>,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub notification_arns: Vec<String>,
    pub role_arn: Option<String>,
    pub disable_rollback: bool,
    pub changes: Vec<Change>,
}

/// One entry of a change set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub replacement: Option<String>,
    pub scope: Vec<String>,
    pub details: Vec<ChangeDetailRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeDetailRecord {
    pub attribute: String,
    pub name: Option<String>,
    pub requires_recreation: String,
    pub evaluation: String,
    pub change_source: String,
}

/// Stack, resource and change-set statuses as CloudFormation spells them.
pub mod status {
    pub const REVIEW_IN_PROGRESS: &str = "REVIEW_IN_PROGRESS";
    pub const CREATE_IN_PROGRESS: &str = "CREATE_IN_PROGRESS";
    pub const CREATE_COMPLETE: &str = "CREATE_COMPLETE";
    pub const CREATE_FAILED: &str = "CREATE_FAILED";
    pub const ROLLBACK_IN_PROGRESS: &str = "ROLLBACK_IN_PROGRESS";
    pub const ROLLBACK_COMPLETE: &str = "ROLLBACK_COMPLETE";
    pub const ROLLBACK_FAILED: &str = "ROLLBACK_FAILED";
    pub const UPDATE_IN_PROGRESS: &str = "UPDATE_IN_PROGRESS";
    pub const UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: &str = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS";
    pub const UPDATE_COMPLETE: &str = "UPDATE_COMPLETE";
    pub const UPDATE_FAILED: &str = "UPDATE_FAILED";
    pub const UPDATE_ROLLBACK_IN_PROGRESS: &str = "UPDATE_ROLLBACK_IN_PROGRESS";
    pub const UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS: &str =
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS";
    pub const UPDATE_ROLLBACK_COMPLETE: &str = "UPDATE_ROLLBACK_COMPLETE";
    pub const UPDATE_ROLLBACK_FAILED: &str = "UPDATE_ROLLBACK_FAILED";
    pub const DELETE_IN_PROGRESS: &str = "DELETE_IN_PROGRESS";
    pub const DELETE_COMPLETE: &str = "DELETE_COMPLETE";
    pub const DELETE_FAILED: &str = "DELETE_FAILED";
    pub const DELETE_SKIPPED: &str = "DELETE_SKIPPED";
    pub const UPDATE_ROLLBACK_IN_PROGRESS_RESOURCE: &str = "UPDATE_IN_PROGRESS";

    // Change sets.
    pub const CS_CREATE_PENDING: &str = "CREATE_PENDING";
    pub const CS_CREATE_COMPLETE: &str = "CREATE_COMPLETE";
    pub const CS_FAILED: &str = "FAILED";
    pub const CS_DELETE_COMPLETE: &str = "DELETE_COMPLETE";
    pub const EXEC_AVAILABLE: &str = "AVAILABLE";
    pub const EXEC_UNAVAILABLE: &str = "UNAVAILABLE";
    pub const EXEC_IN_PROGRESS: &str = "EXECUTE_IN_PROGRESS";
    pub const EXEC_COMPLETE: &str = "EXECUTE_COMPLETE";
    pub const EXEC_FAILED: &str = "EXECUTE_FAILED";
    pub const EXEC_OBSOLETE: &str = "OBSOLETE";
}
