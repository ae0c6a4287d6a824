//! Function versions: `$LATEST` (stored as version 0) with compare-and-swap on its revision,
//! and the immutable published versions.

use kindling_model::function::{VersionNumber, VersionRecord};

use super::connections::Tx;
use super::functions;
use super::rows::{int, record, records, to_json};
use crate::{Entity, Result, StoreError};

fn key(v: VersionNumber) -> i64 {
    v.map_or(0, int)
}

pub(super) fn insert(tx: &mut Tx<'_>, rec: &VersionRecord) -> Result<()> {
    let inserted = tx.execute(
        "INSERT INTO function_versions (function_name, version, revision_id, code_size, record)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (function_name, version) DO NOTHING",
        &[
            &rec.function_name,
            &key(rec.version),
            &rec.revision_id,
            &int(rec.code.size),
            &to_json(rec)?,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Version));
    }
    Ok(())
}

pub(super) fn get(
    tx: &mut Tx<'_>,
    name: &str,
    version: VersionNumber,
) -> Result<Option<VersionRecord>> {
    record(
        tx,
        "SELECT record FROM function_versions WHERE function_name = $1 AND version = $2",
        &[&name, &key(version)],
    )
}

/// `$LATEST` first, then ascending numbers.
pub(super) fn all(tx: &mut Tx<'_>, name: &str) -> Result<Vec<VersionRecord>> {
    records(
        tx,
        "SELECT record FROM function_versions WHERE function_name = $1 ORDER BY version",
        &[&name],
    )
}

/// `NotFound` without a `$LATEST`, `RevisionMismatch` unless it is at `expected`; the row
/// stays locked until the transaction ends.
fn check_latest(tx: &mut Tx<'_>, name: &str, expected: &str) -> Result<()> {
    let current = tx.query_opt(
        "SELECT revision_id FROM function_versions WHERE function_name = $1 AND version = 0
         FOR UPDATE",
        &[&name],
    )?;
    match current {
        None => Err(StoreError::NotFound(Entity::Function)),
        Some(r) if r.get::<_, &str>(0) != expected => Err(StoreError::RevisionMismatch),
        Some(_) => Ok(()),
    }
}

pub(super) fn update_latest(tx: &mut Tx<'_>, rec: &VersionRecord, expected: &str) -> Result<()> {
    if rec.version.is_some() {
        return Err(StoreError::Invalid(
            "update_latest takes a $LATEST record; published versions are immutable",
        ));
    }
    check_latest(tx, &rec.function_name, expected)?;
    tx.execute(
        "UPDATE function_versions SET revision_id = $2, code_size = $3, record = $4
         WHERE function_name = $1 AND version = 0",
        &[
            &rec.function_name,
            &rec.revision_id,
            &int(rec.code.size),
            &to_json(rec)?,
        ],
    )?;
    Ok(())
}

pub(super) fn publish(tx: &mut Tx<'_>, rec: &VersionRecord, expected_latest: &str) -> Result<()> {
    let Some(number) = rec.version else {
        return Err(StoreError::Invalid(
            "insert_version takes a published version",
        ));
    };
    check_latest(tx, &rec.function_name, expected_latest)?;
    let mut meta = functions::meta_for_update(tx, &rec.function_name)?
        .ok_or(StoreError::NotFound(Entity::Function))?;
    if number <= meta.last_version {
        return Err(StoreError::AlreadyExists(Entity::Version));
    }
    insert(tx, rec)?;
    meta.last_version = number;
    functions::put_meta(tx, &meta)
}

/// Whether `version` (`$LATEST` or a number) of the function exists; the row is locked
/// against deletion until the transaction ends.
pub(super) fn exists(tx: &mut Tx<'_>, name: &str, version: &str) -> Result<bool> {
    let key: i64 = if version == "$LATEST" {
        0
    } else {
        match version.parse() {
            Ok(v) => v,
            Err(_) => return Ok(false),
        }
    };
    tx.exists(
        "SELECT 1 FROM function_versions WHERE function_name = $1 AND version = $2 FOR SHARE",
        &[&name, &key],
    )
}

/// Deletes a published version and its policy; `InUse` while an alias routes to it.
pub(super) fn delete(tx: &mut Tx<'_>, name: &str, version: u64) -> Result<()> {
    let number = int(version);
    // Lock the version first: an alias being created to it waits, or is seen below.
    if version == 0
        || !tx.exists(
            "SELECT 1 FROM function_versions WHERE function_name = $1 AND version = $2
             FOR UPDATE",
            &[&name, &number],
        )?
    {
        return Err(StoreError::NotFound(Entity::Version));
    }
    let v = version.to_string();
    let alias = tx.query_opt(
        "SELECT name FROM aliases WHERE function_name = $1
           AND (primary_version = $2 OR routing_version = $2) ORDER BY name LIMIT 1",
        &[&name, &v],
    )?;
    if let Some(row) = alias {
        return Err(StoreError::InUse { alias: row.get(0) });
    }
    tx.execute(
        "DELETE FROM function_versions WHERE function_name = $1 AND version = $2",
        &[&name, &number],
    )?;
    tx.execute(
        "DELETE FROM policies WHERE function_name = $1 AND qualifier = $2",
        &[&name, &v],
    )?;
    Ok(())
}
