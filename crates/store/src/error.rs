//! Errors of the store.

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("revision id does not match")]
    RevisionMismatch,
    #[error("in use: {0}")]
    InUse(String),
    #[error("limit exceeded")]
    LimitExceeded,
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
