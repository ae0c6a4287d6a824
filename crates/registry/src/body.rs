//! Bodies as streams: uploads from the socket to a file a frame at a time (hashed on the
//! way), downloads from a file to the socket a buffer at a time.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use crate::error::RegistryError;

const READ_BUFFER: usize = 64 * 1024;

/// Appends `body` to `file`, feeding `hasher`; at most `limit` bytes in all (`written`
/// counts them). A body that stops arriving for `idle` fails.
pub async fn append(
    body: Body,
    file: &mut tokio::fs::File,
    hasher: &mut Sha256,
    written: &mut u64,
    limit: u64,
    idle: Duration,
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
        hasher.update(&data);
        file.write_all(&data).await?;
        *written += data.len() as u64;
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

/// A response body reading `len` bytes of a file.
pub fn file_body(file: std::fs::File, len: u64) -> Body {
    Body::new(FileBody {
        file: tokio::fs::File::from_std(file),
        remaining: len,
        buf: vec![0; READ_BUFFER],
    })
}

struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = (this.buf.len() as u64).min(this.remaining) as usize;
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let filled = read.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob file shorter than expected",
                    ))));
                }
                this.remaining -= filled.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}
