//! Streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`): the body's frames
//! are handed to the caller as they arrive, through a bounded channel, under the size and
//! bandwidth limits; the trailers say how it ended.
//!
//! Back-pressure: the relay reads the next frame only once the previous one is in the channel
//! (or the caller is gone), and waits for the bandwidth cap before forwarding; while it waits,
//! hyper stops reading the socket and the runtime's writes block. So a streamed response holds
//! at most [`STREAM_CHANNEL_FRAMES`] frames in memory, whatever its size.

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::HeaderName;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::body;
use crate::types::{STREAM_CHANNEL_FRAMES, StreamEnd, StreamLimits};

const ERROR_TYPE: HeaderName = HeaderName::from_static("lambda-runtime-function-error-type");
const ERROR_BODY: HeaderName = HeaderName::from_static("lambda-runtime-function-error-body");

/// The two ends the relay feeds.
pub(crate) struct Relay {
    chunks: Option<mpsc::Sender<Bytes>>,
    end: oneshot::Sender<StreamEnd>,
    limits: StreamLimits,
}

/// The receivers for the caller, and the relay that feeds them.
pub(crate) fn channel(
    limits: StreamLimits,
) -> (Relay, mpsc::Receiver<Bytes>, oneshot::Receiver<StreamEnd>) {
    let (chunk_tx, chunk_rx) = mpsc::channel(STREAM_CHANNEL_FRAMES);
    let (end_tx, end_rx) = oneshot::channel();
    let relay = Relay {
        chunks: Some(chunk_tx),
        end: end_tx,
        limits,
    };
    (relay, chunk_rx, end_rx)
}

/// How the relay's read of the body ended, for the runtime's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Relayed {
    /// The whole body was read (with or without error trailers): `202`.
    Done,
    /// Past the size limit: `413`.
    TooLarge { max: u64 },
    /// Cut off: `400 TruncatedHTTPRequest`.
    Truncated,
}

impl Relay {
    /// Reads `body` to its end, forwarding each data frame, then reports how it ended.
    pub(crate) async fn run(mut self, mut body: Incoming) -> Relayed {
        let started = Instant::now();
        let mut total: u64 = 0;
        let mut trailers: Option<HeaderMap> = None;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                self.finish(StreamEnd::Truncated);
                return Relayed::Truncated;
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                    continue;
                }
            };
            if data.is_empty() {
                continue;
            }
            total += data.len() as u64;
            if total > self.limits.max_bytes {
                let max = self.limits.max_bytes;
                tracing::debug!(max, "streamed response too large");
                self.finish(StreamEnd::TooLarge { max });
                body::drain(body).await;
                return Relayed::TooLarge { max };
            }
            if let Some(wait) = self.limits.earliest(total) {
                tokio::time::sleep_until(started + wait).await;
            }
            self.forward(data).await;
        }
        let end = trailers
            .as_ref()
            .and_then(error_trailers)
            .unwrap_or(StreamEnd::Complete { bytes: total });
        self.finish(end);
        Relayed::Done
    }

    /// Hands `data` to the caller, waiting while the channel is full; once the caller is gone
    /// the rest is discarded.
    async fn forward(&mut self, data: Bytes) {
        if let Some(tx) = &self.chunks
            && tx.send(data).await.is_err()
        {
            self.chunks = None;
        }
    }

    /// Closes the chunks first (the caller sees the body end), then reports the end.
    fn finish(self, end: StreamEnd) {
        drop(self.chunks);
        let _ = self.end.send(end);
    }
}

/// The error a streamed body ended with, from its trailers (`...-Error-Body` is base64; sent
/// verbatim if it is not).
fn error_trailers(trailers: &HeaderMap) -> Option<StreamEnd> {
    let error_type = trailers.get(ERROR_TYPE)?;
    let error_type = String::from_utf8_lossy(error_type.as_bytes()).into_owned();
    let body = trailers.get(ERROR_BODY).map_or_else(Bytes::new, |v| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .map_or_else(|_| Bytes::copy_from_slice(v.as_bytes()), Bytes::from)
    });
    Some(StreamEnd::Error {
        error_type: Some(error_type),
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bandwidth_applies_past_the_burst_only() {
        let limits = StreamLimits {
            max_bytes: 100,
            burst_bytes: 10,
            bytes_per_second: Some(5),
        };
        assert_eq!(limits.earliest(10), None);
        assert_eq!(limits.earliest(20), Some(Duration::from_secs(2)));
        let uncapped = StreamLimits {
            bytes_per_second: None,
            ..limits
        };
        assert_eq!(uncapped.earliest(1000), None);
    }

    #[test]
    fn error_trailers_decode_base64() {
        let mut t = HeaderMap::new();
        assert_eq!(error_trailers(&t), None);
        t.insert(ERROR_TYPE, "Runtime.StreamError".parse().unwrap());
        t.insert(ERROR_BODY, "eyJhIjoxfQ==".parse().unwrap());
        assert_eq!(
            error_trailers(&t),
            Some(StreamEnd::Error {
                error_type: Some("Runtime.StreamError".into()),
                body: Bytes::from_static(br#"{"a":1}"#),
            })
        );
    }
}
