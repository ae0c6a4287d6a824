//! Resource-based policies of a function ('' qualifier) or of one of its versions or aliases.

use super::connections::Tx;
use super::functions;
use super::rows::{from_json, to_json};
use crate::{PolicyRecord, Result, StoreError};

pub(super) fn get(
    tx: &mut Tx<'_>,
    function: &str,
    qualifier: &str,
) -> Result<Option<PolicyRecord>> {
    let row = tx.query_opt(
        "SELECT revision_id, statements FROM policies
         WHERE function_name = $1 AND qualifier = $2",
        &[&function, &qualifier],
    )?;
    row.map(|r| {
        Ok(PolicyRecord {
            revision_id: r.get(0),
            statements: from_json(r.get::<_, &str>(1))?,
        })
    })
    .transpose()
}

/// Replaces (or, with no statements, removes) a policy if its revision is still `expected`.
pub(super) fn put(
    tx: &mut Tx<'_>,
    function: &str,
    qualifier: &str,
    policy: &PolicyRecord,
    expected: Option<&str>,
) -> Result<()> {
    functions::require(tx, function)?;
    let current: Option<String> = tx
        .query_opt(
            "SELECT revision_id FROM policies WHERE function_name = $1 AND qualifier = $2
             FOR UPDATE",
            &[&function, &qualifier],
        )?
        .map(|r| r.get(0));
    if current.as_deref() != expected {
        return Err(StoreError::RevisionMismatch);
    }
    if policy.statements.is_empty() {
        tx.execute(
            "DELETE FROM policies WHERE function_name = $1 AND qualifier = $2",
            &[&function, &qualifier],
        )?;
    } else {
        tx.execute(
            "INSERT INTO policies (function_name, qualifier, revision_id, statements)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (function_name, qualifier)
             DO UPDATE SET revision_id = excluded.revision_id,
                           statements = excluded.statements",
            &[
                &function,
                &qualifier,
                &policy.revision_id,
                &to_json(&policy.statements)?,
            ],
        )?;
    }
    Ok(())
}
