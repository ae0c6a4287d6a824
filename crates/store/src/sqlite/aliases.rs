//! Aliases: named pointers to a version, optionally routing a share of calls to a second one.

use kindling_model::alias::AliasRecord;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{record, records, to_json};
use super::{functions, versions};
use crate::{Entity, Result, StoreError};

fn routing_version(rec: &AliasRecord) -> Option<&str> {
    rec.weights.keys().next().map(String::as_str)
}

/// `NotFound(Version)` unless every version the alias routes to exists.
fn check_targets(conn: &Connection, rec: &AliasRecord) -> Result<()> {
    for v in std::iter::once(rec.function_version.as_str()).chain(routing_version(rec)) {
        if !versions::exists(conn, &rec.function_name, v)? {
            return Err(StoreError::NotFound(Entity::Version));
        }
    }
    Ok(())
}

pub(super) fn create(conn: &Connection, rec: &AliasRecord) -> Result<()> {
    functions::require(conn, &rec.function_name)?;
    check_targets(conn, rec)?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO aliases
           (function_name, name, primary_version, routing_version, revision_id, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            rec.function_name,
            rec.name,
            rec.function_version,
            routing_version(rec),
            rec.revision_id,
            to_json(rec)?
        ],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::Alias));
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, function: &str, name: &str) -> Result<Option<AliasRecord>> {
    record(
        conn,
        "SELECT record FROM aliases WHERE function_name = ?1 AND name = ?2",
        params![function, name],
    )
}

/// A function's aliases by name.
pub(super) fn all(conn: &Connection, function: &str) -> Result<Vec<AliasRecord>> {
    records(
        conn,
        "SELECT record FROM aliases WHERE function_name = ?1 ORDER BY name",
        [function],
    )
}

pub(super) fn update(conn: &Connection, rec: &AliasRecord, expected: &str) -> Result<()> {
    let current: Option<String> = conn
        .query_row(
            "SELECT revision_id FROM aliases WHERE function_name = ?1 AND name = ?2",
            params![rec.function_name, rec.name],
            |r| r.get(0),
        )
        .optional()?;
    match current {
        None => return Err(StoreError::NotFound(Entity::Alias)),
        Some(r) if r != expected => return Err(StoreError::RevisionMismatch),
        Some(_) => {}
    }
    check_targets(conn, rec)?;
    conn.execute(
        "UPDATE aliases SET primary_version = ?3, routing_version = ?4, revision_id = ?5,
           record = ?6 WHERE function_name = ?1 AND name = ?2",
        params![
            rec.function_name,
            rec.name,
            rec.function_version,
            routing_version(rec),
            rec.revision_id,
            to_json(rec)?
        ],
    )?;
    Ok(())
}

/// Deletes an alias and its policy (a no-op when it does not exist).
pub(super) fn delete(conn: &Connection, function: &str, name: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
        params![function, name],
    )?;
    conn.execute(
        "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
        params![function, name],
    )?;
    conn.execute(
        "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
        params![function, name],
    )?;
    Ok(())
}
