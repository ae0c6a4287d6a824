//! Request and response bodies as streams: uploads go from the socket through the payload
//! decoder (plain or aws-chunked) to the object writer a frame at a time, downloads from the
//! file to the socket a buffer at a time; neither is ever held whole in memory.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use kindling_objects::BlobWriter;

use crate::chunked::Decoder;
use crate::error::S3Error;

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

pub use kindling_edge::file_body;
