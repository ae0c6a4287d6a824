//! Helpers of the services' modules over the store's rows (`rows`): text columns and limits.

use postgres::types::ToSql;

use super::connections::Tx;
use crate::Result;

/// The text in the first column of every row a query returns.
pub(super) fn strings(
    tx: &mut Tx<'_>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<String>> {
    Ok(tx
        .query(sql, params)?
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect())
}

/// A `LIMIT` parameter.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
