//! Account-wide figures: reserved concurrency against the account's limit, and usage.

use rusqlite::Connection;

use super::functions;
use super::rows::records;
use crate::{AccountUsage, Entity, Result, StoreError};
use kindling_model::function::FunctionMeta;

pub(super) fn set_reserved(
    conn: &Connection,
    name: &str,
    value: Option<u32>,
    max_total_reserved: u64,
) -> Result<()> {
    let mut meta = functions::meta(conn, name)?.ok_or(StoreError::NotFound(Entity::Function))?;
    let others = match value {
        Some(_) => functions::metas_except(conn, name)?,
        None => Vec::new(),
    };
    crate::reserve_concurrency(&mut meta, &others, value, max_total_reserved)?;
    functions::put_meta(conn, &meta)
}

pub(super) fn usage(conn: &Connection) -> Result<AccountUsage> {
    let mut usage = AccountUsage::default();
    for m in records::<FunctionMeta>(conn, "SELECT meta FROM functions", [])? {
        usage.count_function(&m);
    }
    let fn_code: i64 = conn.query_row(
        "SELECT COALESCE(SUM(code_size), 0) FROM function_versions",
        [],
        |r| r.get(0),
    )?;
    let layer_code: i64 = conn.query_row(
        "SELECT COALESCE(SUM(code_size), 0) FROM layer_versions WHERE deleted = 0",
        [],
        |r| r.get(0),
    )?;
    usage.total_code_size = (fn_code + layer_code) as u64;
    Ok(usage)
}
