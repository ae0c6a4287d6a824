//! [`StackStore`] and [`ScheduleStore`] on PostgreSQL: every write commits durably.

use super::connections::Tx;

use super::PgStore;
use crate::Result;
use crate::stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};

fn save_stack(tx: &mut Tx<'_>, stack: &StackRow, events: &[String]) -> Result<()> {
    tx.execute(
        "INSERT INTO cfn_stacks (stack_id, name, status, updated_ms, document)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (stack_id) DO UPDATE SET status = excluded.status,
             updated_ms = excluded.updated_ms, document = excluded.document",
        &[
            &stack.stack_id,
            &stack.name,
            &stack.status,
            &stack.updated_ms,
            &stack.document,
        ],
    )?;
    if !events.is_empty() {
        tx.execute(
            "INSERT INTO cfn_stack_events (stack_id, document)
             SELECT $1, e FROM unnest($2::TEXT[]) WITH ORDINALITY AS t(e, i) ORDER BY t.i",
            &[&stack.stack_id, &events],
        )?;
    }
    Ok(())
}

impl StackStore for PgStore {
    fn save_stack(&self, stack: &StackRow, events: &[String]) -> Result<()> {
        self.write(|c| save_stack(c, stack, events))
    }

    fn stacks(&self) -> Result<Vec<StackRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT stack_id, name, status, updated_ms, document FROM cfn_stacks ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| StackRow {
                stack_id: r.get(0),
                name: r.get(1),
                status: r.get(2),
                updated_ms: r.get(3),
                document: r.get(4),
            })
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
            .map(|r| ChangeSetRow {
                change_set_id: r.get(0),
                stack_id: r.get(1),
                created_ms: r.get(2),
                document: r.get(3),
            })
            .collect())
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
