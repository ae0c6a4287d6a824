//! [`ObjectStore`](crate::ObjectStore) on SQLite: every change commits durably (an object is
//! acknowledged only once its metadata is on disk).

use super::{SqliteStore, objects};

crate::objects::impl_object_store!(SqliteStore, objects);
