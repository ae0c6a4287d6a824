//! Layer versions: numbered one past the layer's last, deleted softly (functions that use a
//! deleted version keep working).

use kindling_model::layer::LayerVersionRecord;

use super::connections::Tx;
use super::rows::{int, record, records, to_json};
use crate::Result;

pub(super) fn publish(tx: &mut Tx<'_>, rec: &LayerVersionRecord) -> Result<u64> {
    let version: i64 = tx
        .query_one(
            "INSERT INTO layers (name, last_version) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET last_version = layers.last_version + 1
             RETURNING last_version",
            &[&rec.name],
        )?
        .get(0);
    let mut rec = rec.clone();
    rec.version = version.max(0) as u64;
    tx.execute(
        "INSERT INTO layer_versions (name, version, code_size, record) VALUES ($1, $2, $3, $4)",
        &[&rec.name, &version, &int(rec.code.size), &to_json(&rec)?],
    )?;
    Ok(rec.version)
}

pub(super) fn get(
    tx: &mut Tx<'_>,
    name: &str,
    version: u64,
    include_deleted: bool,
) -> Result<Option<LayerVersionRecord>> {
    record(
        tx,
        "SELECT record FROM layer_versions
         WHERE name = $1 AND version = $2 AND ($3 OR NOT deleted)",
        &[&name, &int(version), &include_deleted],
    )
}

/// Live versions, newest first.
pub(super) fn live(tx: &mut Tx<'_>, name: &str) -> Result<Vec<LayerVersionRecord>> {
    records(
        tx,
        "SELECT record FROM layer_versions WHERE name = $1 AND NOT deleted ORDER BY version DESC",
        &[&name],
    )
}

/// Names of layers with a live version, ascending.
pub(super) fn names(tx: &mut Tx<'_>) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT DISTINCT name FROM layer_versions WHERE NOT deleted ORDER BY name",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(super) fn delete(tx: &mut Tx<'_>, name: &str, version: u64) -> Result<()> {
    tx.execute(
        "UPDATE layer_versions SET deleted = TRUE WHERE name = $1 AND version = $2",
        &[&name, &int(version)],
    )?;
    Ok(())
}
