//! [`MappingStore`] on PostgreSQL: mappings are control-plane records; stream positions are
//! bookkeeping committed without waiting for the WAL flush (a lost one re-processes records).

use super::connections::Tx;
use kindling_model::esm::MappingRecord;

use super::PgStore;
use super::rows::{record, records, to_json};
use crate::mappings::MappingStore;
use crate::{Entity, Result, StoreError};

/// A stream source's next position for a mapping that still exists (`$1` uuid, `$2` source,
/// `$3` position); also the fenced write of `NodeStore::set_source_position_owned`.
pub(super) const SET_SOURCE_POSITION: &str =
    "INSERT INTO event_source_offsets (mapping_uuid, source, position)
     SELECT $1, $2, $3
     WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = $1)
     ON CONFLICT (mapping_uuid, source) DO UPDATE SET position = excluded.position";

/// `NotFound(Function)` unless the function exists; locks it against a concurrent delete.
fn require_function(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM functions WHERE name = $1 FOR KEY SHARE",
        &[&name],
    )?
    .map(|_| ())
    .ok_or(StoreError::NotFound(Entity::Function))
}

fn create(tx: &mut Tx<'_>, rec: &MappingRecord) -> Result<()> {
    require_function(tx, &rec.function_name)?;
    tx.execute(
        "INSERT INTO event_source_mappings (uuid, function_name, source_arn, created_ms, record)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &rec.uuid,
            &rec.function_name,
            &rec.event_source_arn,
            &rec.last_modified_ms,
            &to_json(rec)?,
        ],
    )?;
    Ok(())
}

fn put(tx: &mut Tx<'_>, rec: &MappingRecord) -> Result<()> {
    let n = tx.execute(
        "UPDATE event_source_mappings SET record = $2 WHERE uuid = $1",
        &[&rec.uuid, &to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::EventSourceMapping));
    }
    Ok(())
}

impl MappingStore for PgStore {
    fn create_mapping(&self, rec: &MappingRecord) -> Result<()> {
        self.write(|c| create(c, rec))
    }

    fn mapping(&self, uuid: &str) -> Result<Option<MappingRecord>> {
        self.read(|c| {
            record(
                c,
                "SELECT record FROM event_source_mappings WHERE uuid = $1",
                &[&uuid],
            )
        })
    }

    fn mappings(&self) -> Result<Vec<MappingRecord>> {
        self.read(|c| {
            records(
                c,
                "SELECT record FROM event_source_mappings ORDER BY created_ms, uuid",
                &[],
            )
        })
    }

    fn put_mapping(&self, rec: &MappingRecord) -> Result<()> {
        self.write(|c| put(c, rec))
    }

    fn delete_mapping(&self, uuid: &str) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM event_source_mappings WHERE uuid = $1",
                &[&uuid],
            )? > 0)
        })
    }

    fn source_positions(&self, uuid: &str) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT source, position FROM event_source_offsets WHERE mapping_uuid = $1
                 ORDER BY source",
                &[&uuid],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn set_source_position(&self, uuid: &str, source: &str, position: i64) -> Result<()> {
        self.queue(|c| {
            super::queue_store::relaxed(c)?;
            c.execute(SET_SOURCE_POSITION, &[&uuid, &source, &position])?;
            Ok(())
        })
    }

    fn recursive_loop(&self, function: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT recursive_loop FROM function_recursion WHERE function_name = $1",
                &[&function],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn set_recursive_loop(&self, function: &str, value: &str) -> Result<()> {
        self.write(|c| {
            require_function(c, function)?;
            c.execute(
                "INSERT INTO function_recursion (function_name, recursive_loop) VALUES ($1, $2)
                 ON CONFLICT (function_name) DO UPDATE SET recursive_loop = excluded.recursive_loop",
                &[&function, &value],
            )?;
            Ok(())
        })
    }
}
