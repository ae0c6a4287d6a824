//! Resource-based policies of a function ('' qualifier) or of one of its versions or aliases.

use rusqlite::{Connection, OptionalExtension, params};

use super::functions;
use super::rows::{from_json, to_json};
use crate::{PolicyRecord, Result, StoreError};

pub(super) fn get(
    conn: &Connection,
    function: &str,
    qualifier: &str,
) -> Result<Option<PolicyRecord>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT revision_id, statements FROM policies
             WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(revision_id, statements)| {
        Ok(PolicyRecord {
            revision_id,
            statements: from_json(&statements)?,
        })
    })
    .transpose()
}

/// Replaces (or, with no statements, removes) a policy if its revision is still `expected`.
pub(super) fn put(
    conn: &Connection,
    function: &str,
    qualifier: &str,
    policy: &PolicyRecord,
    expected: Option<&str>,
) -> Result<()> {
    functions::require(conn, function)?;
    let current: Option<String> = conn
        .query_row(
            "SELECT revision_id FROM policies WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
            |r| r.get(0),
        )
        .optional()?;
    if current.as_deref() != expected {
        return Err(StoreError::RevisionMismatch);
    }
    if policy.statements.is_empty() {
        conn.execute(
            "DELETE FROM policies WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )?;
    } else {
        conn.execute(
            "INSERT INTO policies (function_name, qualifier, revision_id, statements)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (function_name, qualifier)
             DO UPDATE SET revision_id = excluded.revision_id,
                           statements = excluded.statements",
            params![
                function,
                qualifier,
                policy.revision_id,
                to_json(&policy.statements)?
            ],
        )?;
    }
    Ok(())
}
