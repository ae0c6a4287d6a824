//! Function URL configurations, by function and qualifier and by url-id.

use kindling_model::url::FunctionUrlRecord;

use super::connections::Tx;
use super::rows::{record, records, to_json};
use super::{aliases, functions};
use crate::{Entity, Result, StoreError};

/// `NotFound(Function)` / `NotFound(Alias)` unless what the URL invokes exists;
/// `AlreadyExists(FunctionUrl)` when the function and qualifier have a URL.
pub(super) fn create(tx: &mut Tx<'_>, rec: &FunctionUrlRecord) -> Result<()> {
    functions::require(tx, &rec.function_name)?;
    if let Some(alias) = rec.alias()
        && aliases::get(tx, &rec.function_name, alias)?.is_none()
    {
        return Err(StoreError::NotFound(Entity::Alias));
    }
    let n = tx.execute(
        "INSERT INTO function_urls (url_id, function_name, qualifier, revision_id, record)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &rec.url_id,
            &rec.function_name,
            &rec.qualifier,
            &rec.revision_id,
            &to_json(rec)?,
        ],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::FunctionUrl));
    }
    Ok(())
}

pub(super) fn get(
    tx: &mut Tx<'_>,
    function: &str,
    qualifier: &str,
) -> Result<Option<FunctionUrlRecord>> {
    record(
        tx,
        "SELECT record FROM function_urls WHERE function_name = $1 AND qualifier = $2",
        &[&function, &qualifier],
    )
}

pub(super) fn by_id(tx: &mut Tx<'_>, url_id: &str) -> Result<Option<FunctionUrlRecord>> {
    record(
        tx,
        "SELECT record FROM function_urls WHERE url_id = $1",
        &[&url_id],
    )
}

/// A function's URLs by qualifier.
pub(super) fn all(tx: &mut Tx<'_>, function: &str) -> Result<Vec<FunctionUrlRecord>> {
    records(
        tx,
        "SELECT record FROM function_urls WHERE function_name = $1 ORDER BY qualifier",
        &[&function],
    )
}

/// Replaces the record if its stored revision is `expected`.
pub(super) fn update(tx: &mut Tx<'_>, rec: &FunctionUrlRecord, expected: &str) -> Result<()> {
    let current = tx.query_opt(
        "SELECT revision_id FROM function_urls WHERE function_name = $1 AND qualifier = $2
         FOR UPDATE",
        &[&rec.function_name, &rec.qualifier],
    )?;
    match current {
        None => return Err(StoreError::NotFound(Entity::FunctionUrl)),
        Some(r) if r.get::<_, &str>(0) != expected => return Err(StoreError::RevisionMismatch),
        Some(_) => {}
    }
    tx.execute(
        "UPDATE function_urls SET revision_id = $3, record = $4
         WHERE function_name = $1 AND qualifier = $2",
        &[
            &rec.function_name,
            &rec.qualifier,
            &rec.revision_id,
            &to_json(rec)?,
        ],
    )?;
    Ok(())
}

/// Whether a URL was deleted.
pub(super) fn delete(tx: &mut Tx<'_>, function: &str, qualifier: &str) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM function_urls WHERE function_name = $1 AND qualifier = $2",
        &[&function, &qualifier],
    )? > 0)
}
