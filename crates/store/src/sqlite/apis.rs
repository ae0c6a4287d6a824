//! API Gateway's APIs: one row per API, its document as JSON, compare-and-swap on the revision.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{from_json, to_json};
use crate::apis::ApiRecord;
use crate::{Entity, Result, StoreError};

type Row = (String, String, i64, String, String);

fn decode(row: Row) -> Result<ApiRecord> {
    let (api_id, kind, created_ms, revision_id, document) = row;
    Ok(ApiRecord {
        api_id,
        kind,
        created_ms,
        revision_id,
        document: from_json(&document)?,
    })
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn create_api(conn: &Connection, rec: &ApiRecord) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO apigw_apis (api_id, kind, created_ms, revision_id, document)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (api_id) DO NOTHING",
        params![
            rec.api_id,
            rec.kind,
            rec.created_ms,
            rec.revision_id,
            to_json(&rec.document)?
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(Entity::Api));
    }
    Ok(())
}

pub(super) fn api(conn: &Connection, api_id: &str) -> Result<Option<ApiRecord>> {
    conn.prepare_cached(
        "SELECT api_id, kind, created_ms, revision_id, document FROM apigw_apis WHERE api_id = ?1",
    )?
    .query_row([api_id], read_row)
    .optional()?
    .map(decode)
    .transpose()
}

pub(super) fn apis(conn: &Connection, kind: &str) -> Result<Vec<ApiRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT api_id, kind, created_ms, revision_id, document FROM apigw_apis
         WHERE kind = ?1 ORDER BY created_ms, api_id",
    )?;
    let rows = stmt.query_map([kind], read_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(row?)?);
    }
    Ok(out)
}

pub(super) fn put_api(conn: &Connection, rec: &ApiRecord, expected_revision: &str) -> Result<()> {
    let updated = conn.execute(
        "UPDATE apigw_apis SET revision_id = ?3, document = ?4
         WHERE api_id = ?1 AND revision_id = ?2",
        params![
            rec.api_id,
            expected_revision,
            rec.revision_id,
            to_json(&rec.document)?
        ],
    )?;
    if updated == 1 {
        return Ok(());
    }
    match api(conn, &rec.api_id)? {
        Some(_) => Err(StoreError::RevisionMismatch),
        None => Err(StoreError::NotFound(Entity::Api)),
    }
}

pub(super) fn delete_api(conn: &Connection, api_id: &str) -> Result<()> {
    let deleted = conn.execute("DELETE FROM apigw_apis WHERE api_id = ?1", [api_id])?;
    if deleted == 0 {
        return Err(StoreError::NotFound(Entity::Api));
    }
    Ok(())
}
