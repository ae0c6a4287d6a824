//! Code packages shared by every node: content-addressed zips in `code_blobs`, in chunks.
//! Nodes keep a verified copy in their local blob directory ([`crate::BlobStore`]).

use super::PgStore;
use super::rows::int;
use crate::blobs::SharedBlobs;
use crate::{BlobId, Result, StoreError};

/// Bytes per stored chunk.
const CHUNK: usize = 4 * 1024 * 1024;

impl SharedBlobs for PgStore {
    fn put_blob(&self, id: &BlobId, bytes: &[u8]) -> Result<()> {
        self.queue(|t| {
            let chunks = bytes.len().div_ceil(CHUNK);
            let inserted = t.execute(
                "INSERT INTO code_blobs (id, size, chunks) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &id.as_str(),
                    &int(bytes.len() as u64),
                    &i32::try_from(chunks).unwrap_or(i32::MAX),
                ],
            )?;
            if inserted == 0 {
                // Content-addressed: the same id is the same bytes.
                return Ok(());
            }
            for (seq, chunk) in bytes.chunks(CHUNK).enumerate() {
                t.execute(
                    "INSERT INTO code_blob_chunks (id, seq, data) VALUES ($1, $2, $3)",
                    &[
                        &id.as_str(),
                        &i32::try_from(seq).unwrap_or(i32::MAX),
                        &chunk,
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn get_blob(&self, id: &BlobId) -> Result<Option<Vec<u8>>> {
        let bytes = self.read(|t| {
            let Some(head) =
                t.query_opt("SELECT size FROM code_blobs WHERE id = $1", &[&id.as_str()])?
            else {
                return Ok(None);
            };
            let size: i64 = head.get(0);
            let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            for row in t.query(
                "SELECT data FROM code_blob_chunks WHERE id = $1 ORDER BY seq",
                &[&id.as_str()],
            )? {
                out.extend_from_slice(row.get::<_, &[u8]>(0));
            }
            Ok(Some(out))
        })?;
        match bytes {
            Some(b) if BlobId::of(&b).0 != *id => Err(StoreError::BlobMismatch(id.as_str().into())),
            other => Ok(other),
        }
    }
}
