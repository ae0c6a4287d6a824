//! [`StackStore`] and [`ScheduleStore`] on PostgreSQL: every write commits durably.

use super::connections::Tx;

use super::PgStore;
use crate::stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};
use crate::{Entity, Result, StoreError};

fn stack_row(r: &postgres::Row) -> StackRow {
    StackRow {
        stack_id: r.get(0),
        name: r.get(1),
        status: r.get(2),
        updated_ms: r.get(3),
        document: r.get(4),
        revision: r.get(5),
        owner: r.get(6),
    }
}

fn change_set_row(r: &postgres::Row) -> ChangeSetRow {
    ChangeSetRow {
        change_set_id: r.get(0),
        stack_id: r.get(1),
        created_ms: r.get(2),
        document: r.get(3),
    }
}

fn save_stack(tx: &mut Tx<'_>, stack: &StackRow, events: &[String]) -> Result<i64> {
    let written = if stack.revision == 0 {
        let taken = tx.query_opt(
            "SELECT 1 FROM cfn_stacks WHERE name = $1 AND status <> 'DELETE_COMPLETE'",
            &[&stack.name],
        )?;
        if taken.is_some() && stack.status != "DELETE_COMPLETE" {
            return Err(StoreError::AlreadyExists(Entity::Stack));
        }
        tx.execute(
            "INSERT INTO cfn_stacks (stack_id, name, status, updated_ms, document, revision, owner)
             VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (stack_id) DO NOTHING",
            &[
                &stack.stack_id,
                &stack.name,
                &stack.status,
                &stack.updated_ms,
                &stack.document,
                &stack.owner,
            ],
        )?
    } else {
        tx.execute(
            "UPDATE cfn_stacks SET status = $2, updated_ms = $3, document = $4, owner = $5,
                 revision = revision + 1
             WHERE stack_id = $1 AND revision = $6",
            &[
                &stack.stack_id,
                &stack.status,
                &stack.updated_ms,
                &stack.document,
                &stack.owner,
                &stack.revision,
            ],
        )?
    };
    if written != 1 {
        return Err(StoreError::RevisionMismatch);
    }
    if !events.is_empty() {
        tx.execute(
            "INSERT INTO cfn_stack_events (stack_id, document)
             SELECT $1, e FROM unnest($2::TEXT[]) WITH ORDINALITY AS t(e, i) ORDER BY t.i",
            &[&stack.stack_id, &events],
        )?;
    }
    Ok(stack.revision + 1)
}

impl StackStore for PgStore {
    fn save_stack(&self, stack: &StackRow, events: &[String]) -> Result<i64> {
        self.write(|c| save_stack(c, stack, events))
    }

    fn stacks(&self) -> Result<Vec<StackRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT stack_id, name, status, updated_ms, document, revision, owner
                 FROM cfn_stacks ORDER BY seq",
                &[],
            )?
            .iter()
            .map(stack_row)
            .collect())
        })
    }

    fn stack_revisions(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT stack_id, revision FROM cfn_stacks ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn stacks_by_id(&self, ids: &[String]) -> Result<Vec<StackRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT stack_id, name, status, updated_ms, document, revision, owner
                 FROM cfn_stacks WHERE stack_id = ANY($1) ORDER BY seq",
                &[&ids],
            )?
            .iter()
            .map(stack_row)
            .collect())
        })
    }

    fn stack_events(&self, stack_id: &str) -> Result<Vec<String>> {
        self.read(|c| {
            super::records::strings(
                c,
                "SELECT document FROM cfn_stack_events WHERE stack_id = $1 ORDER BY seq",
                &[&stack_id],
            )
        })
    }

    fn adopt_orphaned_stacks(&self, node_id: &str) -> Result<Vec<String>> {
        self.write(|c| {
            super::records::strings(
                c,
                "UPDATE cfn_stacks s SET owner = $1, revision = s.revision + 1
                 WHERE s.owner IS NOT NULL AND s.owner <> $1
                   AND NOT EXISTS (SELECT 1 FROM kindling_nodes n
                                   WHERE n.node_id = s.owner AND n.alive)
                   AND EXISTS (SELECT 1 FROM kindling_nodes n WHERE n.node_id = $1 AND n.alive)
                 RETURNING s.stack_id",
                &[&node_id],
            )
        })
    }

    fn save_change_set(&self, change_set: &ChangeSetRow) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO cfn_change_sets (change_set_id, stack_id, created_ms, document)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (change_set_id) DO UPDATE SET document = excluded.document",
                &[
                    &change_set.change_set_id,
                    &change_set.stack_id,
                    &change_set.created_ms,
                    &change_set.document,
                ],
            )?;
            Ok(())
        })
    }

    fn change_sets(&self) -> Result<Vec<ChangeSetRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                 ORDER BY created_ms, change_set_id",
                &[],
            )?
            .iter()
            .map(change_set_row)
            .collect())
        })
    }

    fn change_sets_of(&self, stack_id: &str) -> Result<Vec<ChangeSetRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                 WHERE stack_id = $1 ORDER BY created_ms, change_set_id",
                &[&stack_id],
            )?
            .iter()
            .map(change_set_row)
            .collect())
        })
    }

    fn change_set(&self, change_set_id: &str) -> Result<Option<ChangeSetRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT change_set_id, stack_id, created_ms, document FROM cfn_change_sets
                 WHERE change_set_id = $1",
                &[&change_set_id],
            )?
            .as_ref()
            .map(change_set_row))
        })
    }

    fn delete_change_set(&self, change_set_id: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "DELETE FROM cfn_change_sets WHERE change_set_id = $1",
                &[&change_set_id],
            )?;
            Ok(())
        })
    }

    fn forget_deleted_stacks(&self, ids: &[String]) -> Result<usize> {
        self.write(|c| {
            let gone: Vec<String> = c
                .query(
                    "DELETE FROM cfn_stacks
                     WHERE stack_id = ANY($1) AND status = 'DELETE_COMPLETE'
                     RETURNING stack_id",
                    &[&ids],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            c.execute(
                "DELETE FROM cfn_stack_events WHERE stack_id = ANY($1)",
                &[&gone],
            )?;
            c.execute(
                "DELETE FROM cfn_change_sets WHERE stack_id = ANY($1)",
                &[&gone],
            )?;
            Ok(gone.len())
        })
    }
}

impl ScheduleStore for PgStore {
    fn put_schedule(&self, id: &str, document: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO cron_schedules (id, document) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                &[&id, &document],
            )?;
            Ok(())
        })
    }

    fn delete_schedule(&self, id: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM cron_schedules WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn schedules(&self) -> Result<Vec<String>> {
        self.read(|c| {
            super::records::strings(c, "SELECT document FROM cron_schedules ORDER BY id", &[])
        })
    }
}
