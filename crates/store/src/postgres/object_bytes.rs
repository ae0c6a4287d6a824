//! S3 object bytes shared by every node ([`SharedObjectBytes`]): `s3_blobs` (size, chunk
//! count, SHA-256 once complete) and `s3_blob_chunks` (4 MiB `bytea` chunks). Each chunk is a
//! transaction of its own, so storing a 5 GiB object never holds it, nor one long
//! transaction, in memory.

use super::PgStore;
use super::rows::int;
use crate::Result;
use crate::objects::{SharedObjectBytes, StoredBytes};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn seq(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl SharedObjectBytes for PgStore {
    fn begin_object_bytes(&self, id: &str) -> Result<()> {
        self.queue(|t| {
            t.execute(
                "INSERT INTO s3_blobs (id, created_ms) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET sha256 = NULL, size = 0, chunks = 0",
                &[&id, &now_ms()],
            )?;
            t.execute("DELETE FROM s3_blob_chunks WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn put_object_chunk(&self, id: &str, n: u32, data: &[u8]) -> Result<()> {
        self.queue(|t| {
            t.execute(
                "INSERT INTO s3_blob_chunks (id, seq, data) VALUES ($1, $2, $3)
                 ON CONFLICT (id, seq) DO UPDATE SET data = excluded.data",
                &[&id, &seq(n), &data],
            )?;
            Ok(())
        })
    }

    fn finish_object_bytes(&self, id: &str, bytes: &StoredBytes) -> Result<()> {
        self.queue(|t| {
            t.execute(
                "UPDATE s3_blobs SET size = $2, chunks = $3, sha256 = $4 WHERE id = $1",
                &[&id, &int(bytes.size), &seq(bytes.chunks), &bytes.sha256],
            )?;
            Ok(())
        })
    }

    fn object_bytes(&self, id: &str) -> Result<Option<StoredBytes>> {
        self.read(|t| {
            Ok(t.query_opt(
                "SELECT size, chunks, sha256 FROM s3_blobs WHERE id = $1 AND sha256 IS NOT NULL",
                &[&id],
            )?
            .map(|r| StoredBytes {
                size: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                chunks: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
                sha256: r.get(2),
            }))
        })
    }

    fn object_chunk(&self, id: &str, n: u32) -> Result<Option<Vec<u8>>> {
        self.read(|t| {
            Ok(t.query_opt(
                "SELECT data FROM s3_blob_chunks WHERE id = $1 AND seq = $2",
                &[&id, &seq(n)],
            )?
            .map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn delete_object_bytes(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.queue(|t| {
            t.execute("DELETE FROM s3_blobs WHERE id = ANY($1)", &[&ids])?;
            Ok(())
        })
    }

    fn sweep_object_bytes(&self, before_ms: i64) -> Result<usize> {
        self.queue(|t| {
            let n = t.execute(
                "DELETE FROM s3_blobs b WHERE b.created_ms < $1
                   AND NOT EXISTS (SELECT 1 FROM s3_objects o WHERE o.blob = b.id)
                   AND NOT EXISTS (SELECT 1 FROM s3_parts p WHERE p.blob = b.id)",
                &[&before_ms],
            )?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
