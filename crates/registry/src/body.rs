//! Bodies as streams: uploads from the socket to a file a frame at a time (hashed on the
//! way), downloads from a file to the socket a buffer at a time.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::RegistryError;

/// Appends `body` to `file`, feeding `hasher`; at most `limit` bytes in all (`written`
/// counts them, each frame after `reserve` gave room for it). A body that stops arriving
/// for `idle` fails.
pub async fn append(
    body: Body,
    file: &mut tokio::fs::File,
    hasher: &mut Sha256,
    written: &mut u64,
    limit: u64,
    idle: Duration,
    reserve: impl Fn(u64) -> Result<(), RegistryError>,
) -> Result<(), RegistryError> {
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(RegistryError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(RegistryError::BlobUploadInvalid(format!(
                    "reading the body failed: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if written.saturating_add(data.len() as u64) > limit {
            return Err(RegistryError::TooLarge(format!(
                "the blob is larger than the registry's limit of {limit} bytes"
            )));
        }
        reserve(data.len() as u64)?;
        *written += data.len() as u64;
        hasher.update(&data);
        file.write_all(&data).await?;
    }
    file.flush().await?;
    Ok(())
}

/// Reads a whole small body (a manifest), at most `limit` bytes.
pub async fn read_small(body: Body, limit: usize, idle: Duration) -> Result<Bytes, RegistryError> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(RegistryError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(RegistryError::ManifestInvalid(format!(
                    "reading the body failed: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(RegistryError::TooLarge(format!(
                    "the manifest is larger than {limit} bytes"
                )));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

pub use kindling_edge::file_body;
