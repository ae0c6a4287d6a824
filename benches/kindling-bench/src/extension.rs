//! `telemetry-extension`: the Telemetry API subscriber of `benches/obs.py`, an external
//! extension as a user would ship one (compiled, like the Rust function it sits beside). It
//! registers for no events (it never holds invocations up), subscribes to platform and
//! function events with the buffering given on its command line, and parses every batch it
//! receives into typed items (`time`, `type`, and the record kept as raw JSON, as a forwarder
//! that passes records on would), counting them. On SHUTDOWN (or when the API goes away) it
//! prints `[subscriber] items received: N`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, lookup_host};

use crate::http::{Conn, Error};

/// One delivered item; the record is validated and kept as its JSON text.
#[derive(serde::Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    time: &'a str,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    record: &'a serde_json::value::RawValue,
}

/// Items of one delivered batch (a JSON array of `{"time","type","record"}`).
fn records(body: &[u8]) -> Result<u64, serde_json::Error> {
    let items: Vec<Item<'_>> = serde_json::from_slice(body)?;
    Ok(items
        .iter()
        .filter(|i| !i.time.is_empty() && !i.kind.is_empty() && !i.record.get().is_empty())
        .count() as u64)
}

/// Runs the extension; `buffering` is the subscription's `buffering` object.
pub fn run(name: &str, buffering: serde_json::Value) -> Result<(), Error> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr: SocketAddr = lookup_host(&api).await?.next().ok_or("no Runtime API address")?;
        let mut conn = Conn::connect(addr).await?;
        let reply = conn
            .request(
                "POST",
                "/2020-01-01/extension/register",
                &[("Lambda-Extension-Name", name)],
                Bytes::from_static(br#"{"events":["SHUTDOWN"]}"#),
            )
            .await?;
        let id = reply
            .header("Lambda-Extension-Identifier")
            .ok_or_else(|| format!("register answered {}: {}", reply.status, reply.text()))?
            .to_string();

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let count = Arc::new(AtomicU64::new(0));
        let served = Arc::clone(&count);
        // One body buffer for every delivery (Kindling opens a connection per batch).
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let count = Arc::clone(&served);
                let buffer = Arc::clone(&buffer);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let count = Arc::clone(&count);
                        let buffer = Arc::clone(&buffer);
                        async move {
                            let mut body = req.into_body();
                            let mut buf = std::mem::take(&mut *buffer.lock().unwrap_or_else(|e| e.into_inner()));
                            buf.clear();
                            while let Some(Ok(frame)) = body.frame().await {
                                if let Some(data) = frame.data_ref() {
                                    buf.extend_from_slice(data);
                                }
                            }
                            let status = match records(&buf) {
                                Ok(n) => {
                                    count.fetch_add(n, Ordering::Relaxed);
                                    200
                                }
                                Err(_) => 400,
                            };
                            *buffer.lock().unwrap_or_else(|e| e.into_inner()) = buf;
                            let mut res = Response::new(Full::new(Bytes::new()));
                            *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });

        let subscription = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform", "function"],
            "buffering": buffering,
            "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
        });
        let reply = conn
            .request(
                "PUT",
                "/2022-07-01/telemetry",
                &[("Lambda-Extension-Identifier", &id)],
                Bytes::from(subscription.to_string()),
            )
            .await?;
        if reply.status != 200 {
            return Err(format!("subscribe answered {}: {}", reply.status, reply.text()).into());
        }
        // Registered for SHUTDOWN only: the next event is the end.
        let _ = conn
            .request("GET", "/2020-01-01/extension/event/next", &[("Lambda-Extension-Identifier", &id)], Bytes::new())
            .await;
        println!("[subscriber] items received: {}", count.load(Ordering::Relaxed));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_parsed_and_their_records_counted() {
        let batch = br#"[{"time":"2024-01-01T00:00:00.000Z","type":"platform.start","record":{"requestId":"r"}},
                         {"time":"2024-01-01T00:00:00.000Z","type":"function","record":"a line"}]"#;
        assert_eq!(records(batch).unwrap(), 2);
        assert!(records(b"[{").is_err());
    }
}
