//! Records as JSON columns, and reading them back from rows.

use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;

use crate::Result;

pub(super) use crate::json::{from_json, to_json};

/// The JSON record of the one row a query returns, if any.
pub(super) fn record<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<T>> {
    conn.prepare_cached(sql)?
        .query_row(params, |r| r.get::<_, String>(0))
        .optional()?
        .map(|s| from_json(&s))
        .transpose()
}

/// The JSON records of every row a query returns.
pub(super) fn records<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(from_json(&row?)?);
    }
    Ok(out)
}
