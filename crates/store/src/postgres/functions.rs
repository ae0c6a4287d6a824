//! Functions: the function-level record (tags, reserved concurrency, last version number) and
//! creating, listing and deleting whole functions.

use kindling_model::function::{FunctionMeta, VersionRecord};

use super::connections::Tx;
use super::rows::{int, record, records, to_json};
use super::versions;
use crate::{Entity, Result, StoreError};

pub(super) fn create(
    tx: &mut Tx<'_>,
    meta: &FunctionMeta,
    latest: &VersionRecord,
    published: Option<&VersionRecord>,
) -> Result<()> {
    let inserted = tx.execute(
        "INSERT INTO functions (name, meta) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&meta.name, &to_json(meta)?],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Function));
    }
    versions::insert(tx, latest)?;
    if let Some(p) = published {
        versions::insert(tx, p)?;
    }
    Ok(())
}

pub(super) fn meta(tx: &mut Tx<'_>, name: &str) -> Result<Option<FunctionMeta>> {
    record(tx, "SELECT meta FROM functions WHERE name = $1", &[&name])
}

/// The function's record, its row locked until the transaction ends.
pub(super) fn meta_for_update(tx: &mut Tx<'_>, name: &str) -> Result<Option<FunctionMeta>> {
    record(
        tx,
        "SELECT meta FROM functions WHERE name = $1 FOR UPDATE",
        &[&name],
    )
}

pub(super) fn put_meta(tx: &mut Tx<'_>, meta: &FunctionMeta) -> Result<()> {
    let n = tx.execute(
        "UPDATE functions SET meta = $2 WHERE name = $1",
        &[&meta.name, &to_json(meta)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Function));
    }
    Ok(())
}

/// Every function's record but `except`'s.
pub(super) fn metas_except(tx: &mut Tx<'_>, except: &str) -> Result<Vec<FunctionMeta>> {
    records(
        tx,
        "SELECT meta FROM functions WHERE name <> $1",
        &[&except],
    )
}

pub(super) fn list(
    tx: &mut Tx<'_>,
    after: Option<(&str, u64)>,
    all_versions: bool,
    limit: usize,
) -> Result<Vec<VersionRecord>> {
    let (after_name, after_version) = after.map_or(("", -1), |(n, v)| (n, int(v)));
    records(
        tx,
        "SELECT record FROM function_versions
         WHERE (function_name > $1
                OR (function_name = $1 AND version > $2))
           AND ($3 OR version = 0)
         ORDER BY function_name, version LIMIT $4",
        &[
            &after_name,
            &after_version,
            &all_versions,
            &int(limit as u64),
        ],
    )
}

/// Deletes a function; its versions, aliases, policies, event configurations and URLs cascade.
pub(super) fn delete(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    let n = tx.execute("DELETE FROM functions WHERE name = $1", &[&name])?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Function));
    }
    Ok(())
}

/// `NotFound` unless the function exists (its row locked against deletion until the
/// transaction ends).
pub(super) fn require(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    if tx.exists(
        "SELECT 1 FROM functions WHERE name = $1 FOR SHARE",
        &[&name],
    )? {
        Ok(())
    } else {
        Err(StoreError::NotFound(Entity::Function))
    }
}
