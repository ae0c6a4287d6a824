//! Event invoke configuration per function and qualifier.

use kindling_model::events::EventInvokeConfig;

use super::connections::Tx;
use super::functions;
use super::rows::{from_json, record, to_json};
use crate::Result;

pub(super) fn get(
    tx: &mut Tx<'_>,
    function: &str,
    qualifier: &str,
) -> Result<Option<EventInvokeConfig>> {
    record(
        tx,
        "SELECT config FROM event_invoke_configs WHERE function_name = $1 AND qualifier = $2",
        &[&function, &qualifier],
    )
}

/// A function's configurations by qualifier, ascending.
pub(super) fn all(tx: &mut Tx<'_>, function: &str) -> Result<Vec<(String, EventInvokeConfig)>> {
    tx.query(
        "SELECT qualifier, config FROM event_invoke_configs WHERE function_name = $1
         ORDER BY qualifier",
        &[&function],
    )?
    .iter()
    .map(|r| Ok((r.get(0), from_json(r.get::<_, &str>(1))?)))
    .collect()
}

pub(super) fn put(
    tx: &mut Tx<'_>,
    function: &str,
    qualifier: &str,
    config: &EventInvokeConfig,
) -> Result<()> {
    functions::require(tx, function)?;
    tx.execute(
        "INSERT INTO event_invoke_configs (function_name, qualifier, config)
         VALUES ($1, $2, $3)
         ON CONFLICT (function_name, qualifier) DO UPDATE SET config = excluded.config",
        &[&function, &qualifier, &to_json(config)?],
    )?;
    Ok(())
}

/// Whether a configuration was deleted.
pub(super) fn delete(tx: &mut Tx<'_>, function: &str, qualifier: &str) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM event_invoke_configs WHERE function_name = $1 AND qualifier = $2",
        &[&function, &qualifier],
    )? > 0)
}
