//! Function versions: `$LATEST` (stored as version 0) with compare-and-swap on its revision,
//! and the immutable published versions.

use kindling_model::function::{VersionNumber, VersionRecord};
use rusqlite::{Connection, OptionalExtension, params};

use super::functions;
use super::rows::{record, records, to_json};
use crate::{Entity, Result, StoreError};

fn key(v: VersionNumber) -> i64 {
    v.map_or(0, |n| n as i64)
}

pub(super) fn insert(conn: &Connection, rec: &VersionRecord) -> Result<()> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO function_versions (function_name, version, revision_id, code_size, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.function_name,
            key(rec.version),
            rec.revision_id,
            rec.code.size as i64,
            to_json(rec)?
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Version));
    }
    Ok(())
}

pub(super) fn get(
    conn: &Connection,
    name: &str,
    version: VersionNumber,
) -> Result<Option<VersionRecord>> {
    record(
        conn,
        "SELECT record FROM function_versions WHERE function_name = ?1 AND version = ?2",
        params![name, key(version)],
    )
}

/// `$LATEST` first, then ascending numbers.
pub(super) fn all(conn: &Connection, name: &str) -> Result<Vec<VersionRecord>> {
    records(
        conn,
        "SELECT record FROM function_versions WHERE function_name = ?1 ORDER BY version",
        [name],
    )
}

fn latest_revision(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT revision_id FROM function_versions WHERE function_name = ?1 AND version = 0",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

/// `NotFound` without a `$LATEST`, `RevisionMismatch` unless it is at `expected`.
fn check_latest(conn: &Connection, name: &str, expected: &str) -> Result<()> {
    match latest_revision(conn, name)? {
        None => Err(StoreError::NotFound(Entity::Function)),
        Some(r) if r != expected => Err(StoreError::RevisionMismatch),
        Some(_) => Ok(()),
    }
}

pub(super) fn update_latest(conn: &Connection, rec: &VersionRecord, expected: &str) -> Result<()> {
    if rec.version.is_some() {
        return Err(StoreError::Invalid(
            "update_latest takes a $LATEST record; published versions are immutable",
        ));
    }
    check_latest(conn, &rec.function_name, expected)?;
    conn.execute(
        "UPDATE function_versions SET revision_id = ?2, code_size = ?3, record = ?4
         WHERE function_name = ?1 AND version = 0",
        params![
            rec.function_name,
            rec.revision_id,
            rec.code.size as i64,
            to_json(rec)?
        ],
    )?;
    Ok(())
}

pub(super) fn publish(conn: &Connection, rec: &VersionRecord, expected_latest: &str) -> Result<()> {
    let Some(number) = rec.version else {
        return Err(StoreError::Invalid(
            "insert_version takes a published version",
        ));
    };
    check_latest(conn, &rec.function_name, expected_latest)?;
    let mut meta =
        functions::meta(conn, &rec.function_name)?.ok_or(StoreError::NotFound(Entity::Function))?;
    if number <= meta.last_version {
        return Err(StoreError::AlreadyExists(Entity::Version));
    }
    insert(conn, rec)?;
    meta.last_version = number;
    functions::put_meta(conn, &meta)
}

/// Whether `version` (`$LATEST` or a number) of the function exists.
pub(super) fn exists(conn: &Connection, name: &str, version: &str) -> Result<bool> {
    let key: i64 = if version == "$LATEST" {
        0
    } else {
        match version.parse() {
            Ok(v) => v,
            Err(_) => return Ok(false),
        }
    };
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM function_versions WHERE function_name = ?1 AND version = ?2",
        )?
        .exists(params![name, key])?)
}

/// Deletes a published version and its policy; `InUse` while an alias routes to it.
pub(super) fn delete(conn: &Connection, name: &str, version: u64) -> Result<()> {
    let v = version.to_string();
    let alias: Option<String> = conn
        .query_row(
            "SELECT name FROM aliases WHERE function_name = ?1
               AND (primary_version = ?2 OR routing_version = ?2) LIMIT 1",
            params![name, v],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(alias) = alias {
        return Err(StoreError::InUse { alias });
    }
    let n = conn.execute(
        "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2 AND version > 0",
        params![name, version as i64],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Version));
    }
    conn.execute(
        "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
        params![name, v],
    )?;
    Ok(())
}
