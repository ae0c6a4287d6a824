//! A fresh PostgreSQL database per test, dropped when the test ends (passed or failed).
//!
//! The server is `postgres://postgres@127.0.0.1:5432` unless `KINDLING_TEST_PG_URL` names
//! another (any database on it: the test databases are created beside it). When it cannot
//! be reached the PostgreSQL tests fail: a test that passes without running tests nothing.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

use super::PgStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test; dropped (with its connections) on drop.
pub(crate) struct TestDb {
    pub store: Option<PgStore>,
    #[allow(dead_code, reason = "for tests that start a server on the database")]
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// A new database with the store's schema; panics (the test fails) when PostgreSQL cannot
    /// be reached.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin_url =
            std::env::var("KINDLING_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let mut admin = Client::connect(&admin_url, NoTls).unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL store tests need a PostgreSQL server: {admin_url}: {e} \
                 (set KINDLING_TEST_PG_URL to use another)"
            )
        });
        let name = format!(
            "kindling_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        let store = PgStore::connect_with_pool(&url, 4).expect("open the test store");
        Self {
            store: Some(store),
            url,
            name,
            admin_url,
        }
    }

    pub fn store(&self) -> &PgStore {
        self.store.as_ref().expect("the store is open until drop")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.store.take());
        match Client::connect(&self.admin_url, NoTls) {
            Ok(mut admin) => {
                if let Err(e) = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )) {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}
