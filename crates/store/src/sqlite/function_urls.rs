//! Function URL configurations, by function and qualifier and by url-id.

use kindling_model::url::FunctionUrlRecord;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{record, records, to_json};
use super::{aliases, functions};
use crate::{Entity, Result, StoreError};

/// `NotFound(Function)` / `NotFound(Alias)` unless what the URL invokes exists;
/// `AlreadyExists(FunctionUrl)` when the function and qualifier have a URL.
pub(super) fn create(conn: &Connection, rec: &FunctionUrlRecord) -> Result<()> {
    functions::require(conn, &rec.function_name)?;
    if let Some(alias) = rec.alias()
        && aliases::get(conn, &rec.function_name, alias)?.is_none()
    {
        return Err(StoreError::NotFound(Entity::Alias));
    }
    let n = conn.execute(
        "INSERT OR IGNORE INTO function_urls (url_id, function_name, qualifier, revision_id, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.url_id,
            rec.function_name,
            rec.qualifier,
            rec.revision_id,
            to_json(rec)?
        ],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::FunctionUrl));
    }
    Ok(())
}

pub(super) fn get(
    conn: &Connection,
    function: &str,
    qualifier: &str,
) -> Result<Option<FunctionUrlRecord>> {
    record(
        conn,
        "SELECT record FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
        params![function, qualifier],
    )
}

pub(super) fn by_id(conn: &Connection, url_id: &str) -> Result<Option<FunctionUrlRecord>> {
    record(
        conn,
        "SELECT record FROM function_urls WHERE url_id = ?1",
        [url_id],
    )
}

/// A function's URLs by qualifier.
pub(super) fn all(conn: &Connection, function: &str) -> Result<Vec<FunctionUrlRecord>> {
    records(
        conn,
        "SELECT record FROM function_urls WHERE function_name = ?1 ORDER BY qualifier",
        [function],
    )
}

/// Replaces the record if its stored revision is `expected`.
pub(super) fn update(conn: &Connection, rec: &FunctionUrlRecord, expected: &str) -> Result<()> {
    let current: Option<String> = conn
        .prepare_cached(
            "SELECT revision_id FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
        )?
        .query_row(params![rec.function_name, rec.qualifier], |r| r.get(0))
        .optional()?;
    match current {
        None => return Err(StoreError::NotFound(Entity::FunctionUrl)),
        Some(r) if r != expected => return Err(StoreError::RevisionMismatch),
        Some(_) => {}
    }
    conn.execute(
        "UPDATE function_urls SET revision_id = ?3, record = ?4
         WHERE function_name = ?1 AND qualifier = ?2",
        params![
            rec.function_name,
            rec.qualifier,
            rec.revision_id,
            to_json(rec)?
        ],
    )?;
    Ok(())
}

/// Whether a URL was deleted.
pub(super) fn delete(conn: &Connection, function: &str, qualifier: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
        params![function, qualifier],
    )? > 0)
}
