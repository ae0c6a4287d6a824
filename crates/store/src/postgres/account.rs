//! Account-wide figures: reserved concurrency against the account's limit, and usage.

use kindling_model::function::FunctionMeta;

use super::connections::Tx;
use super::functions;
use super::rows::records;
use crate::{AccountUsage, Entity, Result, StoreError};

/// Serializes reservations across nodes: the check sums every function's reservation, which
/// no single row lock covers.
const RESERVATIONS_LOCK: i64 = 7_361_524_894;

pub(super) fn set_reserved(
    tx: &mut Tx<'_>,
    name: &str,
    value: Option<u32>,
    max_total_reserved: u64,
) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RESERVATIONS_LOCK])?;
    let mut meta =
        functions::meta_for_update(tx, name)?.ok_or(StoreError::NotFound(Entity::Function))?;
    let others = match value {
        Some(_) => functions::metas_except(tx, name)?,
        None => Vec::new(),
    };
    crate::reserve_concurrency(&mut meta, &others, value, max_total_reserved)?;
    functions::put_meta(tx, &meta)
}

pub(super) fn usage(tx: &mut Tx<'_>) -> Result<AccountUsage> {
    let mut usage = AccountUsage::default();
    for m in records::<FunctionMeta>(tx, "SELECT meta FROM functions", &[])? {
        usage.count_function(&m);
    }
    let row = tx.query_one(
        "SELECT (SELECT COALESCE(SUM(code_size), 0)::BIGINT FROM function_versions),
                (SELECT COALESCE(SUM(code_size), 0)::BIGINT FROM layer_versions WHERE NOT deleted)",
        &[],
    )?;
    let (fn_code, layer_code): (i64, i64) = (row.get(0), row.get(1));
    usage.total_code_size = (fn_code.max(0) + layer_code.max(0)) as u64;
    Ok(usage)
}
