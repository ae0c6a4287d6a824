//! [`MappingStore`] on SQLite: mappings are control-plane records (durable writes); stream
//! positions are bookkeeping (relaxed writes: a lost one re-processes records, at-least-once).

use kindling_model::esm::MappingRecord;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{record, records, to_json};
use super::{SqliteStore, functions};
use crate::mappings::MappingStore;
use crate::{Entity, Result, StoreError};

fn create(c: &Connection, rec: &MappingRecord) -> Result<()> {
    functions::require(c, &rec.function_name)?;
    c.execute(
        "INSERT INTO event_source_mappings (uuid, function_name, source_arn, created_ms, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.uuid,
            rec.function_name,
            rec.event_source_arn,
            rec.last_modified_ms,
            to_json(rec)?
        ],
    )?;
    Ok(())
}

fn put(c: &Connection, rec: &MappingRecord) -> Result<()> {
    let n = c.execute(
        "UPDATE event_source_mappings SET record = ?2 WHERE uuid = ?1",
        params![rec.uuid, to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::EventSourceMapping));
    }
    Ok(())
}

fn positions(c: &Connection, uuid: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT source, position FROM event_source_offsets WHERE mapping_uuid = ?1
         ORDER BY source",
    )?;
    let rows = stmt.query_map([uuid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn set_position(c: &Connection, uuid: &str, source: &str, position: i64) -> Result<()> {
    c.execute(
        "INSERT INTO event_source_offsets (mapping_uuid, source, position)
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = ?1)
         ON CONFLICT (mapping_uuid, source) DO UPDATE SET position = excluded.position",
        params![uuid, source, position],
    )?;
    Ok(())
}

impl MappingStore for SqliteStore {
    fn create_mapping(&self, rec: &MappingRecord) -> Result<()> {
        self.write(|c| create(c, rec))
    }

    fn mapping(&self, uuid: &str) -> Result<Option<MappingRecord>> {
        self.read(|c| {
            record(
                c,
                "SELECT record FROM event_source_mappings WHERE uuid = ?1",
                [uuid],
            )
        })
    }

    fn mappings(&self) -> Result<Vec<MappingRecord>> {
        self.read(|c| {
            records(
                c,
                "SELECT record FROM event_source_mappings ORDER BY created_ms, uuid",
                [],
            )
        })
    }

    fn put_mapping(&self, rec: &MappingRecord) -> Result<()> {
        self.write(|c| put(c, rec))
    }

    fn delete_mapping(&self, uuid: &str) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute("DELETE FROM event_source_mappings WHERE uuid = ?1", [uuid])? > 0)
        })
    }

    fn source_positions(&self, uuid: &str) -> Result<Vec<(String, i64)>> {
        self.read(|c| positions(c, uuid))
    }

    fn set_source_position(&self, uuid: &str, source: &str, position: i64) -> Result<()> {
        self.write_relaxed(|c| set_position(c, uuid, source, position))
    }

    fn recursive_loop(&self, function: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT recursive_loop FROM function_recursion WHERE function_name = ?1",
            )?
            .query_row([function], |r| r.get(0))
            .optional()?)
        })
    }

    fn set_recursive_loop(&self, function: &str, value: &str) -> Result<()> {
        self.write(|c| {
            functions::require(c, function)?;
            c.execute(
                "INSERT INTO function_recursion (function_name, recursive_loop) VALUES (?1, ?2)
                 ON CONFLICT (function_name) DO UPDATE SET recursive_loop = excluded.recursive_loop",
                params![function, value],
            )?;
            Ok(())
        })
    }
}
