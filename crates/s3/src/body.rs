//! Request and response bodies as streams: uploads go from the socket through the payload
//! decoder (plain or aws-chunked) to the object writer a frame at a time, downloads from the
//! file to the socket a buffer at a time; neither is ever held whole in memory.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use kindling_objects::BlobWriter;
use tokio::io::{AsyncRead, ReadBuf};

use crate::chunked::Decoder;
use crate::error::S3Error;

/// Bytes read from the file per response frame.
const READ_BUFFER: usize = 64 * 1024;

/// How the request's payload is framed.
pub enum PayloadDecoder {
    /// The body is the payload.
    Plain,
    /// `aws-chunked`.
    Chunked(Box<Decoder>),
}

/// Streams the request body into `writer`, decoding it; returns the trailers of an
/// aws-chunked body. A body that stops arriving for `idle` is `RequestTimeout`.
pub async fn pump(
    body: Body,
    mut decoder: PayloadDecoder,
    writer: &mut BlobWriter,
    idle: Duration,
) -> Result<Vec<(String, String)>, S3Error> {
    let mut body = body;
    let mut out: Vec<Bytes> = Vec::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(S3Error::RequestTimeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(S3Error::BodyRead(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // HTTP trailers: not used by S3 clients
        };
        match &mut decoder {
            PayloadDecoder::Plain => writer.write(data).await?,
            PayloadDecoder::Chunked(d) => {
                d.feed(data, &mut out)?;
                for piece in out.drain(..) {
                    writer.write(piece).await?;
                }
            }
        }
    }
    match decoder {
        PayloadDecoder::Plain => Ok(Vec::new()),
        PayloadDecoder::Chunked(d) => Ok(d.finish()?),
    }
}

/// Reads a whole small body (XML documents, policies), at most `limit` bytes.
pub async fn read_small(body: Body, limit: usize, idle: Duration) -> Result<Bytes, S3Error> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(S3Error::RequestTimeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(S3Error::BodyRead(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(S3Error::MaxMessageLengthExceeded);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// A response body reading `len` bytes of a file from its current position.
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
                        "object file shorter than its record",
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
