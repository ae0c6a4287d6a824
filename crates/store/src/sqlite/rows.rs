//! Records as JSON columns, and reading them back from rows.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Result, StoreError};

pub(super) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| StoreError::Encode {
        record: std::any::type_name::<T>(),
        source,
    })
}

pub(super) fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| StoreError::CorruptRecord {
        record: std::any::type_name::<T>(),
        source,
    })
}

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
