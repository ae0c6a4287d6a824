//! Aliases: named pointers to a version, optionally routing a share of calls to a second one.

use kindling_model::alias::AliasRecord;

use super::connections::Tx;
use super::rows::{record, records, to_json};
use super::{functions, versions};
use crate::{Entity, Result, StoreError};

fn routing_version(rec: &AliasRecord) -> Option<&str> {
    rec.weights.keys().next().map(String::as_str)
}

/// `NotFound(Version)` unless every version the alias routes to exists.
fn check_targets(tx: &mut Tx<'_>, rec: &AliasRecord) -> Result<()> {
    for v in std::iter::once(rec.function_version.as_str()).chain(routing_version(rec)) {
        if !versions::exists(tx, &rec.function_name, v)? {
            return Err(StoreError::NotFound(Entity::Version));
        }
    }
    Ok(())
}

pub(super) fn create(tx: &mut Tx<'_>, rec: &AliasRecord) -> Result<()> {
    functions::require(tx, &rec.function_name)?;
    check_targets(tx, rec)?;
    let n = tx.execute(
        "INSERT INTO aliases
           (function_name, name, primary_version, routing_version, revision_id, record)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (function_name, name) DO NOTHING",
        &[
            &rec.function_name,
            &rec.name,
            &rec.function_version,
            &routing_version(rec),
            &rec.revision_id,
            &to_json(rec)?,
        ],
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::Alias));
    }
    Ok(())
}

pub(super) fn get(tx: &mut Tx<'_>, function: &str, name: &str) -> Result<Option<AliasRecord>> {
    record(
        tx,
        "SELECT record FROM aliases WHERE function_name = $1 AND name = $2",
        &[&function, &name],
    )
}

/// A function's aliases by name.
pub(super) fn all(tx: &mut Tx<'_>, function: &str) -> Result<Vec<AliasRecord>> {
    records(
        tx,
        "SELECT record FROM aliases WHERE function_name = $1 ORDER BY name",
        &[&function],
    )
}

pub(super) fn update(tx: &mut Tx<'_>, rec: &AliasRecord, expected: &str) -> Result<()> {
    let current = tx.query_opt(
        "SELECT revision_id FROM aliases WHERE function_name = $1 AND name = $2 FOR UPDATE",
        &[&rec.function_name, &rec.name],
    )?;
    match current {
        None => return Err(StoreError::NotFound(Entity::Alias)),
        Some(r) if r.get::<_, &str>(0) != expected => return Err(StoreError::RevisionMismatch),
        Some(_) => {}
    }
    check_targets(tx, rec)?;
    tx.execute(
        "UPDATE aliases SET primary_version = $3, routing_version = $4, revision_id = $5,
           record = $6 WHERE function_name = $1 AND name = $2",
        &[
            &rec.function_name,
            &rec.name,
            &rec.function_version,
            &routing_version(rec),
            &rec.revision_id,
            &to_json(rec)?,
        ],
    )?;
    Ok(())
}

/// Deletes an alias, its policy and its URL (a no-op when it does not exist).
pub(super) fn delete(tx: &mut Tx<'_>, function: &str, name: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM aliases WHERE function_name = $1 AND name = $2",
        &[&function, &name],
    )?;
    tx.execute(
        "DELETE FROM policies WHERE function_name = $1 AND qualifier = $2",
        &[&function, &name],
    )?;
    tx.execute(
        "DELETE FROM function_urls WHERE function_name = $1 AND qualifier = $2",
        &[&function, &name],
    )?;
    Ok(())
}
