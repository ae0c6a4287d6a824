//! Records as JSON columns, and reading them back from rows.

use postgres::types::ToSql;
use serde::de::DeserializeOwned;

use super::connections::Tx;
use crate::Result;

pub(super) use crate::json::{from_json, to_json};

/// The JSON record (first column) of the one row a query returns, if any.
pub(super) fn record<T: DeserializeOwned>(
    tx: &mut Tx<'_>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<T>> {
    tx.query_opt(sql, params)?
        .map(|r| from_json(r.get::<_, &str>(0)))
        .transpose()
}

/// The JSON records (first column) of every row a query returns.
pub(super) fn records<T: DeserializeOwned>(
    tx: &mut Tx<'_>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<T>> {
    tx.query(sql, params)?
        .iter()
        .map(|r| from_json(r.get::<_, &str>(0)))
        .collect()
}

/// A count or size the store keeps as `u64` (PostgreSQL has no unsigned integers).
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
