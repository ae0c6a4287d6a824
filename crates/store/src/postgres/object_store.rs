//! [`ObjectStore`](crate::ObjectStore) on PostgreSQL: every change commits durably. The bytes
//! stay in files of the node that stored them (the S3 crate's `<data-dir>/s3`): only the
//! metadata is shared.

use super::{PgStore, objects};

crate::objects::impl_object_store!(PgStore, objects);
