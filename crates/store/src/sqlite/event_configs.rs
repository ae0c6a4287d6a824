//! Event invoke configuration per function and qualifier.

use kindling_model::events::EventInvokeConfig;
use rusqlite::{Connection, params};

use super::functions;
use super::rows::{from_json, record, to_json};
use crate::Result;

pub(super) fn get(
    conn: &Connection,
    function: &str,
    qualifier: &str,
) -> Result<Option<EventInvokeConfig>> {
    record(
        conn,
        "SELECT config FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
        params![function, qualifier],
    )
}

/// A function's configurations by qualifier, ascending.
pub(super) fn all(conn: &Connection, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT qualifier, config FROM event_invoke_configs WHERE function_name = ?1
         ORDER BY qualifier",
    )?;
    let rows = stmt.query_map([function], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (q, c) = row?;
        out.push((q, from_json(&c)?));
    }
    Ok(out)
}

pub(super) fn put(
    conn: &Connection,
    function: &str,
    qualifier: &str,
    config: &EventInvokeConfig,
) -> Result<()> {
    functions::require(conn, function)?;
    conn.execute(
        "INSERT INTO event_invoke_configs (function_name, qualifier, config)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (function_name, qualifier) DO UPDATE SET config = excluded.config",
        params![function, qualifier, to_json(config)?],
    )?;
    Ok(())
}

/// Whether a configuration was deleted.
pub(super) fn delete(conn: &Connection, function: &str, qualifier: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
        params![function, qualifier],
    )? > 0)
}
