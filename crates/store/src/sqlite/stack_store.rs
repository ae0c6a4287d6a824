//! [`StackStore`] on SQLite: every write commits durably.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};
use crate::{Entity, Result, StoreError};

impl StackStore for SqliteStore {
    fn save_stack(&self, stack: &StackRow, events: &[String]) -> Result<i64> {
        self.write(|c| save_stack(c, stack, events))
    }

    fn stacks(&self) -> Result<Vec<StackRow>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT stack_id, name, status, updated_ms, document, revision, owner
                 FROM cfn_stacks ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], stack_row)?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn stack_revisions(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT stack_id, revision FROM cfn_stacks ORDER BY rowid")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn stacks_by_id(&self, ids: &[String]) -> Result<Vec<StackRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT stack_id, name, status, updated_ms, document, revision, owner, rowid
                 FROM cfn_stacks WHERE stack_id = ?1",
            )?;
            let mut found = Vec::new();
            for id in ids {
                if let Some(row) = stmt
                    .query_row([id], |r| Ok((r.get::<_, i64>(7)?, stack_row(r)?)))
                    .optional()?
                {
                    found.push(row);
                }
            }
            found.sort_by_key(|(rowid, _)| *rowid);
            found.dedup_by_key(|(rowid, _)| *rowid);
            Ok(found.into_iter().map(|(_, row)| row).collect())
        })
    }

    fn stack_events(&self, stack_id: &str) -> Result<Vec<String>> {
        self.read(|c| stack_events(c, stack_id))
    }

    fn adopt_orphaned_stacks(&self, _node_id: &str) -> Result<Vec<String>> {
        // One node: nobody else's operation to adopt.
        Ok(Vec::new())
    }

    fn save_change_set(&self, change_set: &ChangeSetRow) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO cfn_change_sets (change_set_id, stack_id, created_ms, document)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (change_set_id) DO UPDATE SET document = excluded.document",
                params![
                    change_set.change_set_id,
                    change_set.stack_id,
                    change_set.created_ms,
                    change_set.document
                ],
            )?;
            Ok(())
        })
    }

    fn change_sets(&self) -> Result<Vec<ChangeSetRow>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                 ORDER BY created_ms, change_set_id",
            )?;
            let rows = stmt.query_map([], change_set_row)?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn change_sets_of(&self, stack_id: &str) -> Result<Vec<ChangeSetRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                 WHERE stack_id = ?1 ORDER BY created_ms, change_set_id",
            )?;
            let rows = stmt.query_map([stack_id], change_set_row)?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn change_set(&self, change_set_id: &str) -> Result<Option<ChangeSetRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                     WHERE change_set_id = ?1",
            )?
            .query_row([change_set_id], change_set_row)
            .optional()?)
        })
    }

    fn delete_change_set(&self, change_set_id: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "DELETE FROM cfn_change_sets WHERE change_set_id = ?1",
                [change_set_id],
            )?;
            Ok(())
        })
    }

    fn forget_deleted_stacks(&self, ids: &[String]) -> Result<usize> {
        self.write(|c| {
            let mut gone = 0;
            for id in ids {
                let n = c.execute(
                    "DELETE FROM cfn_stacks WHERE stack_id = ?1 AND status = 'DELETE_COMPLETE'",
                    [id],
                )?;
                if n > 0 {
                    c.execute("DELETE FROM cfn_stack_events WHERE stack_id = ?1", [id])?;
                    c.execute("DELETE FROM cfn_change_sets WHERE stack_id = ?1", [id])?;
                    gone += n;
                }
            }
            Ok(gone)
        })
    }
}

fn stack_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StackRow> {
    Ok(StackRow {
        stack_id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        updated_ms: r.get(3)?,
        document: r.get(4)?,
        revision: r.get(5)?,
        owner: r.get(6)?,
    })
}

fn change_set_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChangeSetRow> {
    Ok(ChangeSetRow {
        change_set_id: r.get(0)?,
        stack_id: r.get(1)?,
        created_ms: r.get(2)?,
        document: r.get(3)?,
    })
}

impl ScheduleStore for SqliteStore {
    fn put_schedule(&self, id: &str, document: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO cron_schedules (id, document) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                params![id, document],
            )?;
            Ok(())
        })
    }

    fn delete_schedule(&self, id: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM cron_schedules WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn schedules(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT document FROM cron_schedules ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }
}

fn save_stack(c: &Connection, stack: &StackRow, events: &[String]) -> Result<i64> {
    let written = if stack.revision == 0 {
        let taken: Option<i64> = c
            .query_row(
                "SELECT 1 FROM cfn_stacks WHERE name = ?1 AND status <> 'DELETE_COMPLETE'",
                [&stack.name],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() && stack.status != "DELETE_COMPLETE" {
            return Err(StoreError::AlreadyExists(Entity::Stack));
        }
        c.execute(
            "INSERT INTO cfn_stacks (stack_id, name, status, updated_ms, document, revision, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6) ON CONFLICT (stack_id) DO NOTHING",
            params![
                stack.stack_id,
                stack.name,
                stack.status,
                stack.updated_ms,
                stack.document,
                stack.owner
            ],
        )?
    } else {
        c.execute(
            "UPDATE cfn_stacks SET status = ?2, updated_ms = ?3, document = ?4, owner = ?5,
                 revision = revision + 1
             WHERE stack_id = ?1 AND revision = ?6",
            params![
                stack.stack_id,
                stack.status,
                stack.updated_ms,
                stack.document,
                stack.owner,
                stack.revision
            ],
        )?
    };
    if written != 1 {
        return Err(StoreError::RevisionMismatch);
    }
    let mut insert =
        c.prepare_cached("INSERT INTO cfn_stack_events (stack_id, document) VALUES (?1, ?2)")?;
    for e in events {
        insert.execute(params![stack.stack_id, e])?;
    }
    Ok(stack.revision + 1)
}

fn stack_events(c: &Connection, stack_id: &str) -> Result<Vec<String>> {
    let mut stmt =
        c.prepare("SELECT document FROM cfn_stack_events WHERE stack_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([stack_id], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
}
