//! [`ApiStore`] on PostgreSQL: one row per API, its document as JSON, compare-and-swap on the
//! revision (an `UPDATE ... WHERE revision_id = expected`, which READ COMMITTED re-checks
//! after waiting for a concurrent writer of the row).

use postgres::Row;

use super::connections::Tx;

use super::PgStore;
use super::rows::{from_json, to_json};
use crate::apis::{ApiRecord, ApiStore};
use crate::{Entity, Result, StoreError};

fn decode(row: &Row) -> Result<ApiRecord> {
    Ok(ApiRecord {
        api_id: row.get(0),
        kind: row.get(1),
        created_ms: row.get(2),
        revision_id: row.get(3),
        document: from_json(row.get::<_, &str>(4))?,
    })
}

fn api(tx: &mut Tx<'_>, api_id: &str) -> Result<Option<ApiRecord>> {
    tx.query_opt(
        "SELECT api_id, kind, created_ms, revision_id, document FROM apigw_apis
         WHERE api_id = $1",
        &[&api_id],
    )?
    .as_ref()
    .map(decode)
    .transpose()
}

impl ApiStore for PgStore {
    fn create_api(&self, rec: &ApiRecord) -> Result<()> {
        self.write(|c| {
            let n = c.execute(
                "INSERT INTO apigw_apis (api_id, kind, created_ms, revision_id, document)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (api_id) DO NOTHING",
                &[
                    &rec.api_id,
                    &rec.kind,
                    &rec.created_ms,
                    &rec.revision_id,
                    &to_json(&rec.document)?,
                ],
            )?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(Entity::Api));
            }
            Ok(())
        })
    }

    fn api(&self, api_id: &str) -> Result<Option<ApiRecord>> {
        self.read(|c| api(c, api_id))
    }

    fn apis(&self, kind: &str) -> Result<Vec<ApiRecord>> {
        self.read(|c| {
            c.query(
                "SELECT api_id, kind, created_ms, revision_id, document FROM apigw_apis
                 WHERE kind = $1 ORDER BY created_ms, api_id",
                &[&kind],
            )?
            .iter()
            .map(decode)
            .collect()
        })
    }

    fn put_api(&self, rec: &ApiRecord, expected_revision: &str) -> Result<()> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE apigw_apis SET revision_id = $3, document = $4
                 WHERE api_id = $1 AND revision_id = $2",
                &[
                    &rec.api_id,
                    &expected_revision,
                    &rec.revision_id,
                    &to_json(&rec.document)?,
                ],
            )?;
            if n == 1 {
                return Ok(());
            }
            match api(c, &rec.api_id)? {
                Some(_) => Err(StoreError::RevisionMismatch),
                None => Err(StoreError::NotFound(Entity::Api)),
            }
        })
    }

    fn delete_api(&self, api_id: &str) -> Result<()> {
        self.write(|c| {
            if c.execute("DELETE FROM apigw_apis WHERE api_id = $1", &[&api_id])? == 0 {
                return Err(StoreError::NotFound(Entity::Api));
            }
            Ok(())
        })
    }
}
