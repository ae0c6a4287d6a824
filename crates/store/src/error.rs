//! Errors of the store: what the caller can act on (absent, present, stale, in use, over a
//! limit) apart from failures of the database itself (SQLite's or PostgreSQL's), each failure
//! keeping its source.

use std::fmt;

use rusqlite::ErrorCode;

/// A kind of stored record, naming what was missing or already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Function,
    Version,
    Alias,
    Policy,
    LayerVersion,
    EventInvokeConfig,
    Bucket,
    Object,
    Upload,
    Queue,
    Topic,
    Subscription,
    Api,
    FunctionUrl,
    EventSourceMapping,
    Stack,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Function => "function",
            Self::Version => "function version",
            Self::Alias => "alias",
            Self::Policy => "policy",
            Self::LayerVersion => "layer version",
            Self::EventInvokeConfig => "event invoke configuration",
            Self::Bucket => "bucket",
            Self::Object => "object",
            Self::Upload => "multipart upload",
            Self::Queue => "queue",
            Self::Topic => "topic",
            Self::Subscription => "subscription",
            Self::Api => "API",
            Self::FunctionUrl => "function URL configuration",
            Self::EventSourceMapping => "event source mapping",
            Self::Stack => "stack",
        })
    }
}

/// What went wrong in a store operation. The first variants are outcomes a caller maps to its
/// own answer; the rest are failures of the store (their cause is the error's `source`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record the operation needs does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// A record with the same key exists.
    #[error("{0} already exists")]
    AlreadyExists(Entity),
    /// Compare-and-swap failed: the record changed since the caller read it.
    #[error("revision id does not match")]
    RevisionMismatch,
    /// A function version cannot be deleted while an alias routes to it.
    #[error("version is in use by alias {alias}")]
    InUse { alias: String },
    /// A container (a bucket) still holds records (objects) and cannot be deleted.
    #[error("{0} is not empty")]
    NotEmpty(Entity),
    /// Reserved concurrency would exceed the account's limit.
    #[error("reserved concurrency would exceed the account's limit")]
    LimitExceeded,
    /// The caller passed something the store cannot represent (a bug in the caller).
    #[error("invalid store call: {0}")]
    Invalid(&'static str),
    /// A schema constraint (key, foreign key, check) rejected the write.
    #[error("a database constraint rejected the write")]
    Constraint(#[source] rusqlite::Error),
    /// Another process held the database's lock longer than the busy timeout.
    #[error("the database is busy")]
    Busy(#[source] rusqlite::Error),
    /// The database file could not be opened, read or written (I/O, full disk, permissions).
    #[error("the database file could not be used")]
    Storage(#[source] rusqlite::Error),
    /// The database's log could not be fsync'd.
    #[error("the database's log could not be synced to disk")]
    Sync(#[source] std::io::Error),
    /// The database file is damaged.
    #[error("the database file is corrupt")]
    CorruptDatabase(#[source] rusqlite::Error),
    /// Any other database failure.
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
    /// PostgreSQL: a schema constraint (key, foreign key, check) rejected the write.
    #[error("a database constraint rejected the write")]
    PgConstraint(#[source] postgres::Error),
    /// PostgreSQL: the transaction lost a conflict with another (serialization failure or
    /// deadlock) and was not retried, or failed every retry.
    #[error("the transaction conflicted with another one")]
    Conflict(#[source] postgres::Error),
    /// PostgreSQL could not be reached, or the connection broke.
    #[error("the database is unavailable")]
    Unavailable(#[source] r2d2::Error),
    /// PostgreSQL: the connection to the server broke during the call.
    #[error("the connection to the database broke")]
    ConnectionLost(#[source] postgres::Error),
    /// PostgreSQL: a text the caller sent holds a character no PostgreSQL text can hold (NUL).
    /// An outcome about the input, not a store failure: SQLite keeps such text, PostgreSQL
    /// refuses it, and no record keyed by it can exist there.
    #[error("the text holds a character the database cannot store (NUL)")]
    UnstorableText(#[source] postgres::Error),
    /// Any other PostgreSQL failure.
    #[error("database error")]
    Postgres(#[source] postgres::Error),
    /// A stored record does not decode as its type.
    #[error("corrupt stored record ({record})")]
    CorruptRecord {
        record: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be encoded for storage.
    #[error("cannot encode record ({record})")]
    Encode {
        record: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A schema migration failed (nothing of it was applied).
    #[error("schema migration {version} failed")]
    Migration {
        version: usize,
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL schema migration failed (nothing of it was applied).
    #[error("PostgreSQL schema migration {version} failed")]
    PgMigration {
        version: usize,
        #[source]
        source: postgres::Error,
    },
    /// A stored code package does not hash to its name.
    #[error("stored code blob {0} does not match its SHA-256")]
    BlobMismatch(String),
}

/// What the services tell a client whose text the store refused ([`StoreError::UnstorableText`]).
pub const UNSTORABLE_TEXT: &str =
    "A value in the request holds a NUL character, which is not allowed.";

impl StoreError {
    /// True for failures of the store itself rather than outcomes about records.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Self::NotFound(_)
                | Self::AlreadyExists(_)
                | Self::RevisionMismatch
                | Self::InUse { .. }
                | Self::NotEmpty(_)
                | Self::LimitExceeded
                | Self::UnstorableText(_)
        )
    }

    /// True when running the transaction again may succeed (it lost a conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        if e.is_closed() {
            return Self::ConnectionLost(e);
        }
        match e.code() {
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                Self::Conflict(e)
            }
            // Class 23: integrity constraint violations (unique, foreign key, check, not null).
            Some(c) if c.code().starts_with("23") => Self::PgConstraint(e),
            // NUL in a text parameter ("invalid byte sequence for encoding UTF8: 0x00").
            Some(c)
                if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                    || *c == SqlState::UNTRANSLATABLE_CHARACTER =>
            {
                Self::UnstorableText(e)
            }
            // Class 08 (connection exception) and 57P01-57P03 (the server shut down or the
            // session was terminated by an administrator).
            Some(c)
                if c.code().starts_with("08")
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW =>
            {
                Self::ConnectionLost(e)
            }
            // No SQLSTATE and an I/O cause: the connection failed.
            None if std::error::Error::source(&e).is_some_and(|c| c.is::<std::io::Error>()) => {
                Self::ConnectionLost(e)
            }
            _ => Self::Postgres(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => Self::Constraint(e),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy(e),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::CorruptDatabase(e),
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::NoLargeFileSupport,
            ) => Self::Storage(e),
            _ => Self::Sqlite(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn classifies_database_failures_and_keeps_the_source() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let dup = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        let e = StoreError::from(dup);
        assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
        assert!(e.is_failure());
        let source = e.source().expect("the sqlite error is the source");
        assert!(source.to_string().contains("UNIQUE"), "{source}");

        let bad = conn.execute("SELECT nope FROM t", []).unwrap_err();
        assert!(matches!(StoreError::from(bad), StoreError::Sqlite(_)));
        assert!(!StoreError::NotFound(Entity::Alias).is_failure());
        assert_eq!(
            StoreError::NotFound(Entity::Version).to_string(),
            "function version not found"
        );
    }
}
