//! Synchronous invokes forwarded between nodes sharing one database (see `kindling-cluster`'s
//! `warm` module for who advertises what).
//!
//! **Out**: an Invoke (RequestResponse) that finds no idle environment here, for a target a
//! live peer advertises, is sent to that peer as it came (method, path, query, every header
//! including `Host` and the SigV4 `Authorization`, the body's bytes), with [`HOP_HEADER`] set
//! to the cluster's route token; the peer checks the caller as usual. Its answer comes back
//! unchanged (status, headers, body streamed). When the peer declines (no idle environment
//! left, its limits refuse, it is stopping), or answers without having taken the request (its
//! gate refused it), or cannot be reached within [`CONNECT_TIMEOUT`], the invoke runs here
//! instead. Once the request was sent, a failure of the peer fails the call (it may have run:
//! never run twice).
//!
//! **In**: a request whose hop header carries the route token runs only on an idle
//! environment (never waits for one, never cold-starts) and is never forwarded again; without
//! one it is declined. A hop header without the right token (a client's) only prevents
//! forwarding: the request is served as any other.

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kindling_cluster::{Cluster, Peer};
use kindling_scheduler::{InvokeRequest, Scheduler};
use std::sync::atomic::Ordering;

use crate::error::{ApiError, error_response};

/// Marks a request forwarded by another node (its value: the route token).
pub const HOP_HEADER: &str = "x-kindling-hop";
/// Names the node that ran a forwarded invoke (in its answer).
pub const NODE_HEADER: &str = "x-kindling-node";
/// `declined` in a peer's answer: it ran nothing, the forwarder runs the invoke itself.
pub const ROUTE_HEADER: &str = "x-kindling-route";
/// How long a forwarder waits for a peer's connection before running the invoke itself.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a pooled connection to a peer may stay idle: well below the edge's keep-alive
/// limit (`--header-read-timeout`, 10 s by default), so the peer never closes a connection
/// just as a request is written on it.
const POOL_IDLE: Duration = Duration::from_secs(4);
/// Beyond the function's timeout, how long a forwarder waits for the peer's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// Headers of one hop only, never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// This node's routing: its membership and a pool of keep-alive connections to its peers.
pub struct Routing {
    cluster: Cluster,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("node", &self.cluster.node_id())
            .finish_non_exhaustive()
    }
}

/// How a request relates to forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hop {
    /// From a client: may be forwarded.
    Client,
    /// Forwarded by a peer (the right token): warm environments only.
    Peer,
    /// A hop header without the right token: served as any request, never forwarded.
    Forged,
}

/// What became of a forward.
pub(super) enum Forwarded {
    /// The peer ran it (or refused it after taking it): its answer, for the caller.
    Answer(Response),
    /// The peer did not take it: run it here.
    RunHere,
    /// The peer failed after it had the request.
    Failed(ApiError),
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Routing {
    pub fn new(cluster: Cluster) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(256)
            .build(connector);
        Self { cluster, client }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub(super) fn hop(&self, parts: &Parts) -> Hop {
        let Some(value) = parts.headers.get(HOP_HEADER) else {
            return Hop::Client;
        };
        match self.cluster.route_token() {
            Some(token) if same(value.as_bytes(), token.as_bytes()) => Hop::Peer,
            _ => Hop::Forged,
        }
    }

    /// A forwarded invoke: run on an idle environment, or declined.
    pub(super) async fn serve(
        &self,
        scheduler: &Scheduler,
        req: InvokeRequest,
    ) -> Result<Response, ApiError> {
        let stats = &self.cluster.directory().stats;
        match scheduler.invoke_warm(req).await? {
            Some(result) => {
                stats.served_for_peers.fetch_add(1, Ordering::Relaxed);
                let mut res = super::invoke::render(result);
                super::invoke::set(&mut res, NODE_HEADER, self.cluster.node_id());
                Ok(res)
            }
            None => {
                stats.declined_for_peers.fetch_add(1, Ordering::Relaxed);
                let mut res = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceException",
                    "No idle execution environment on this node for a forwarded invocation.",
                );
                super::invoke::set(&mut res, ROUTE_HEADER, "declined");
                super::invoke::set(&mut res, NODE_HEADER, self.cluster.node_id());
                Ok(res)
            }
        }
    }

    /// Sends the request (`parts` and the body's bytes as received) to `peer` for `target`,
    /// waiting for its answer at most the function's `timeout` and a margin.
    pub(super) async fn forward(
        &self,
        peer: &Peer,
        target: &str,
        parts: &Parts,
        body: Bytes,
        timeout: Duration,
    ) -> Forwarded {
        let directory = self.cluster.directory();
        let Some(token) = self.cluster.route_token() else {
            return Forwarded::RunHere;
        };
        let req = match outgoing(peer, token, parts, body) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(peer = %peer.node_id, error = %e, "could not build a forwarded request; running it here");
                return Forwarded::RunHere;
            }
        };
        let answer = tokio::time::timeout(timeout + ANSWER_MARGIN, self.client.request(req)).await;
        let res = match answer {
            Err(_) => {
                directory.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %peer.node_id, "a forwarded invocation got no answer in time");
                return Forwarded::Failed(ApiError::PeerFailed {
                    node: peer.node_id.clone(),
                });
            }
            Ok(Err(e)) if e.is_connect() => {
                tracing::info!(peer = %peer.node_id, address = %peer.address, error = %e, "could not reach the node holding warm environments; running the invocation here");
                directory.unreachable(peer);
                return Forwarded::RunHere;
            }
            Ok(Err(e)) => {
                directory.stats.failed.fetch_add(1, Ordering::Relaxed);
                // A connection that broke mid-call means the node is most likely going down:
                // the next calls are not sent there (a connect can still succeed into a dying
                // node's listen backlog and then fail the same way) until the avoidance ends.
                directory.unreachable(peer);
                tracing::warn!(peer = %peer.node_id, error = %e, "the node running a forwarded invocation failed before it answered");
                return Forwarded::Failed(ApiError::PeerFailed {
                    node: peer.node_id.clone(),
                });
            }
            Ok(Ok(res)) => res,
        };
        let headers = res.headers();
        if !headers.contains_key(NODE_HEADER) {
            // Its gate (or edge) answered: it did not take the request.
            tracing::warn!(peer = %peer.node_id, status = %res.status(), "a node refused a forwarded invocation; running it here");
            directory.declined(peer, target);
            return Forwarded::RunHere;
        }
        if headers
            .get(ROUTE_HEADER)
            .is_some_and(|v| v.as_bytes() == b"declined")
        {
            directory.declined(peer, target);
            return Forwarded::RunHere;
        }
        directory.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let (mut head, body) = res.into_parts();
        for name in HOP_BY_HOP {
            head.headers.remove(*name);
        }
        Forwarded::Answer(Response::from_parts(head, Body::new(body)).into_response())
    }
}

/// The request as it came, addressed to `peer`, with the hop header.
fn outgoing(
    peer: &Peer,
    token: &str,
    parts: &Parts,
    body: Bytes,
) -> Result<axum::http::Request<Full<Bytes>>, axum::http::Error> {
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let mut req = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{}{path}", peer.address))
        .body(Full::new(body.clone()))?;
    let headers = req.headers_mut();
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name.as_str() != HOP_HEADER {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from(body.len()),
    );
    headers.insert(
        HeaderName::from_static(HOP_HEADER),
        HeaderValue::from_str(token)?,
    );
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn a_forwarded_request_keeps_its_head_and_body_and_drops_hop_by_hop_headers() {
        let (parts, ()) = axum::http::Request::builder()
            .method("POST")
            .uri("/2015-03-31/functions/f/invocations?Qualifier=1")
            .header("host", "lambda.example:9000")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
            .header("x-amz-date", "20260101T000000Z")
            .header("connection", "keep-alive")
            .header("transfer-encoding", "chunked")
            .header(HOP_HEADER, "forged")
            .body(())
            .unwrap()
            .into_parts();
        let peer = Peer {
            node_id: "a".into(),
            address: "10.0.0.7:9001".into(),
        };
        let req = outgoing(&peer, "tok", &parts, Bytes::from_static(b"{\"k\":1}")).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "http://10.0.0.7:9001/2015-03-31/functions/f/invocations?Qualifier=1"
        );
        let h = req.headers();
        assert_eq!(h["host"], "lambda.example:9000", "the signed Host is kept");
        assert_eq!(h["authorization"], "AWS4-HMAC-SHA256 Credential=x");
        assert_eq!(h["x-amz-date"], "20260101T000000Z");
        assert_eq!(h["content-length"], "7");
        assert_eq!(h[HOP_HEADER], "tok", "a client's hop header is replaced");
        assert_eq!(h.get_all(HOP_HEADER).iter().count(), 1);
        assert!(h.get("connection").is_none() && h.get("transfer-encoding").is_none());
    }
}
