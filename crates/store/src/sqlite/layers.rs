//! Layer versions: numbered one past the layer's last, deleted softly (functions that use a
//! deleted version keep working).

use kindling_model::layer::LayerVersionRecord;
use rusqlite::{Connection, params};

use super::rows::{record, records, to_json};
use crate::Result;

pub(super) fn publish(conn: &Connection, rec: &LayerVersionRecord) -> Result<u64> {
    conn.execute(
        "INSERT INTO layers (name, last_version) VALUES (?1, 1)
         ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1",
        [&rec.name],
    )?;
    let version: i64 = conn.query_row(
        "SELECT last_version FROM layers WHERE name = ?1",
        [&rec.name],
        |r| r.get(0),
    )?;
    let mut rec = rec.clone();
    rec.version = version as u64;
    conn.execute(
        "INSERT INTO layer_versions (name, version, code_size, record) VALUES (?1, ?2, ?3, ?4)",
        params![rec.name, version, rec.code.size as i64, to_json(&rec)?],
    )?;
    Ok(rec.version)
}

pub(super) fn get(
    conn: &Connection,
    name: &str,
    version: u64,
    include_deleted: bool,
) -> Result<Option<LayerVersionRecord>> {
    record(
        conn,
        "SELECT record FROM layer_versions
         WHERE name = ?1 AND version = ?2 AND (?3 OR deleted = 0)",
        params![name, version as i64, include_deleted],
    )
}

/// Live versions, newest first.
pub(super) fn live(conn: &Connection, name: &str) -> Result<Vec<LayerVersionRecord>> {
    records(
        conn,
        "SELECT record FROM layer_versions WHERE name = ?1 AND deleted = 0 ORDER BY version DESC",
        [name],
    )
}

/// Names of layers with a live version, ascending.
pub(super) fn names(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT name FROM layer_versions WHERE deleted = 0 ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn delete(conn: &Connection, name: &str, version: u64) -> Result<()> {
    conn.execute(
        "UPDATE layer_versions SET deleted = 1 WHERE name = ?1 AND version = ?2",
        params![name, version as i64],
    )?;
    Ok(())
}
