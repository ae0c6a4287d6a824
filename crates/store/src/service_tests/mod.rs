//! The services' store tests (queues and topics, objects, APIs, mappings, stacks and
//! schedules), each run against SQLite and against a fresh PostgreSQL database; and the
//! PostgreSQL-only tests of what several nodes do at once (claims, membership).

mod apis;
mod mappings;
mod nodes;
mod objects;
mod queues;
mod stacks;
mod warm;

/// Runs `$body(&store)` against an in-memory SQLite store and a fresh PostgreSQL database
/// (skipped, saying so, when PostgreSQL cannot be reached and is not required).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    let s = crate::SqliteStore::in_memory().expect("sqlite store");
                    super::$name(&s);
                }

                #[test]
                fn postgres() {
                    let db = crate::postgres::test_db::TestDb::create();
                    super::$name(db.store());
                }
            }
        )*
    };
}
pub(crate) use on_both;

/// A fresh PostgreSQL store for a PostgreSQL-only test.
pub(crate) fn postgres() -> crate::postgres::test_db::TestDb {
    crate::postgres::test_db::TestDb::create()
}
