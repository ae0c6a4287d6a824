//! `otlp-sink`: the OTLP/HTTP collector stand-in of `benches/obs.py`. A real collector runs on
//! another machine; this one shares the measured machine, so it does what proves the spans
//! arrived and little more: each POSTed `ExportTraceServiceRequest` (protobuf) is walked with
//! prost's decoding primitives down to its spans, which are counted (a body that does not
//! parse is counted as bad); a JSON body's spans are counted by their `"spanId"` keys.
//! `GET /count` answers `spans=N bad=M`. Single-threaded tokio + hyper, keep-alive.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use prost::encoding::{WireType, decode_key, decode_varint};
use tokio::net::TcpListener;

use crate::http::Error;

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    bad: AtomicU64,
}

/// The length-delimited fields numbered `tag` of a message, each as its bytes.
fn submessages(mut buf: &[u8], tag: u32) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while buf.has_remaining() {
        let (t, wire) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        let skip = match wire {
            WireType::Varint => {
                decode_varint(&mut buf).map_err(|e| e.to_string())?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                decode_varint(&mut buf).map_err(|e| e.to_string())? as usize
            }
            other => return Err(format!("unexpected wire type {other:?}")),
        };
        if skip > buf.len() {
            return Err("a field runs past the end of its message".into());
        }
        if wire == WireType::LengthDelimited && t == tag {
            out.push(&buf[..skip]);
        }
        buf.advance(skip);
    }
    Ok(out)
}

/// Spans in an `ExportTraceServiceRequest`: resource_spans (1) → scope_spans (2) → spans (2),
/// each span checked to carry a 16-byte trace id (field 1).
fn protobuf_spans(body: &[u8]) -> Result<u64, String> {
    let mut n = 0;
    for rs in submessages(body, 1)? {
        for ss in submessages(rs, 2)? {
            for span in submessages(ss, 2)? {
                let ids = submessages(span, 1)?;
                if ids.len() != 1 || ids[0].len() != 16 {
                    return Err("a span without a 16-byte trace id".into());
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

fn json_spans(body: &[u8]) -> u64 {
    body.windows(8).filter(|w| *w == b"\"spanId\"").count() as u64
}

/// Serves until killed; prints `listening PORT` once bound.
pub fn serve(port: u16) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening {}", listener.local_addr()?.port());
        let counts = Arc::new(Counts::default());
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let counts = Arc::clone(&counts);
            let buffer = Arc::clone(&buffer);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let counts = Arc::clone(&counts);
                    let buffer = Arc::clone(&buffer);
                    async move {
                        if req.method() == Method::GET {
                            let text = format!(
                                "spans={} bad={}\n",
                                counts.spans.load(Ordering::Relaxed),
                                counts.bad.load(Ordering::Relaxed)
                            );
                            return Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                                text,
                            ))));
                        }
                        let protobuf = req
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
                        // Read into one reused buffer (the exporter opens a connection per batch).
                        let mut buf =
                            std::mem::take(&mut *buffer.lock().unwrap_or_else(|e| e.into_inner()));
                        buf.clear();
                        let mut body = req.into_body();
                        while let Some(Ok(frame)) = body.frame().await {
                            if let Some(data) = frame.data_ref() {
                                buf.extend_from_slice(data);
                            }
                        }
                        let counted = if protobuf {
                            protobuf_spans(&buf)
                        } else {
                            Ok(json_spans(&buf))
                        };
                        *buffer.lock().unwrap_or_else(|e| e.into_inner()) = buf;
                        match counted {
                            Ok(n) => counts.spans.fetch_add(n, Ordering::Relaxed),
                            Err(_) => counts.bad.fetch_add(1, Ordering::Relaxed),
                        };
                        Ok(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_a_request_are_counted_and_garbage_is_refused() {
        // resource_spans { scope_spans { scope {}, span { trace_id: 16 bytes }, span { ... } } }
        let span = [&[0x0a, 16][..], &[7u8; 16]].concat();
        let mut ss = vec![0x0a, 0];
        for _ in 0..2 {
            ss.extend_from_slice(&[0x12, span.len() as u8]);
            ss.extend_from_slice(&span);
        }
        let rs = [&[0x12, ss.len() as u8][..], &ss].concat();
        let req = [&[0x0a, rs.len() as u8][..], &rs].concat();
        assert_eq!(protobuf_spans(&req), Ok(2));
        assert!(protobuf_spans(&req[..req.len() - 1]).is_err());
        assert!(protobuf_spans(b"{\"resourceSpans\":[]}").is_err());
    }
}
