//! Functions: the function-level record (tags, reserved concurrency, last version number) and
//! creating, listing and deleting whole functions.

use kindling_model::function::{FunctionMeta, VersionRecord};
use rusqlite::{Connection, params};

use super::rows::{record, records, to_json};
use super::versions;
use crate::{Entity, Result, StoreError};

pub(super) fn create(
    conn: &Connection,
    meta: &FunctionMeta,
    latest: &VersionRecord,
    published: Option<&VersionRecord>,
) -> Result<()> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO functions (name, meta) VALUES (?1, ?2)",
        params![meta.name, to_json(meta)?],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Function));
    }
    versions::insert(conn, latest)?;
    if let Some(p) = published {
        versions::insert(conn, p)?;
    }
    Ok(())
}

pub(super) fn meta(conn: &Connection, name: &str) -> Result<Option<FunctionMeta>> {
    record(conn, "SELECT meta FROM functions WHERE name = ?1", [name])
}

pub(super) fn put_meta(conn: &Connection, meta: &FunctionMeta) -> Result<()> {
    let n = conn.execute(
        "UPDATE functions SET meta = ?2 WHERE name = ?1",
        params![meta.name, to_json(meta)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Function));
    }
    Ok(())
}

/// Every function's record but `except`'s.
pub(super) fn metas_except(conn: &Connection, except: &str) -> Result<Vec<FunctionMeta>> {
    records(
        conn,
        "SELECT meta FROM functions WHERE name != ?1",
        [except],
    )
}

pub(super) fn list(
    conn: &Connection,
    after: Option<(&str, u64)>,
    all_versions: bool,
    limit: usize,
) -> Result<Vec<VersionRecord>> {
    let (after_name, after_version) = after.map_or(("", -1), |(n, v)| (n, v as i64));
    records(
        conn,
        "SELECT record FROM function_versions
         WHERE (function_name > ?1 OR (function_name = ?1 AND version > ?2))
           AND (?3 OR version = 0)
         ORDER BY function_name, version LIMIT ?4",
        params![after_name, after_version, all_versions, limit as i64],
    )
}

/// Deletes a function; its versions, aliases, policies and event configurations cascade.
pub(super) fn delete(conn: &Connection, name: &str) -> Result<()> {
    let n = conn.execute("DELETE FROM functions WHERE name = ?1", [name])?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Function));
    }
    Ok(())
}

/// `NotFound` unless the function exists.
pub(super) fn require(conn: &Connection, name: &str) -> Result<()> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM functions WHERE name = ?1")?
        .exists([name])?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(Entity::Function))
    }
}
