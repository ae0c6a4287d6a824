//! Durable state of event source mappings behind the [`MappingStore`] trait: the mappings
//! (deleted with their function), the positions stream sources have processed, and each
//! function's recursive loop setting.

use kindling_model::esm::MappingRecord;

use crate::Result;

pub trait MappingStore: Send + Sync + 'static {
    /// Stores a new mapping; `NotFound(Function)` when its function does not exist.
    fn create_mapping(&self, rec: &MappingRecord) -> Result<()>;
    fn mapping(&self, uuid: &str) -> Result<Option<MappingRecord>>;
    /// Every mapping, oldest first.
    fn mappings(&self) -> Result<Vec<MappingRecord>>;
    /// Replaces a mapping; `NotFound(EventSourceMapping)` when it is gone.
    fn put_mapping(&self, rec: &MappingRecord) -> Result<()>;
    /// Returns whether a mapping was deleted.
    fn delete_mapping(&self, uuid: &str) -> Result<bool>;

    /// The next position of each source (e.g. a topic-partition) of a mapping.
    fn source_positions(&self, uuid: &str) -> Result<Vec<(String, i64)>>;
    /// Records the next position to process; nothing when the mapping is gone.
    fn set_source_position(&self, uuid: &str, source: &str, position: i64) -> Result<()>;

    /// A function's `RecursiveLoop` setting, if set.
    fn recursive_loop(&self, function: &str) -> Result<Option<String>>;
    /// `NotFound(Function)` when the function does not exist.
    fn set_recursive_loop(&self, function: &str, value: &str) -> Result<()>;
}
