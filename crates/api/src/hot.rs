//! The hot Invoke route: `POST /2015-03-31/functions/{name}/invocations`, the request that
//! carries a server's load, served straight from the edge's dispatch decision.
//!
//! The router's way to the same handler goes through axum's route table, the path-normalizing
//! layer, the `request_id` and gate middlewares and the `Path`/`QueryParams` extractors, each
//! with its own boxing, state clones and string copies. This route recognizes the request from
//! its method and path alone, borrows the function name and `Qualifier` from the URI, and runs
//! the very same steps: [`gate::admit`] (signature, authorization, body within the payload
//! limit), the Invoke handler's work ([`routes::serve_invoke`]: header checks, payload check,
//! cluster forwarding, the scheduler, rendering) and the `request_id` middleware's last step
//! ([`crate::finish`]). What it does not recognize cheaply (a name or query that needs
//! percent-decoding, a trailing slash, another method) goes to the router unchanged.
//!
//! [`routes::serve_invoke`]: crate::routes::serve_invoke

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, Uri};
use axum::response::IntoResponse;
use kindling_edge::{Declined, HotFuture, HotRoute};

use crate::operation::Operation;
use crate::{ApiState, gate, routes};

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/invocations";

/// Serves Invoke below the router (register it with `Services::hot` for Lambda).
pub struct HotInvoke {
    state: Arc<ApiState>,
}

impl HotInvoke {
    pub fn new(state: ApiState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

/// Where an Invoke's function name and qualifier are in its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spots {
    /// In the path.
    name: Range<usize>,
    /// In the query.
    qualifier: Option<Range<usize>>,
}

/// The spots of an Invoke whose name and query need no decoding, else `None`.
fn invoke_spots(method: &Method, uri: &Uri) -> Option<Spots> {
    if method != Method::POST {
        return None;
    }
    let name = uri.path().strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if name.is_empty() || name.bytes().any(|b| b == b'/' || b == b'%') {
        return None;
    }
    let qualifier = match uri.query() {
        None => None,
        Some(q) if q.bytes().any(|b| b == b'%' || b == b'+') => return None,
        Some(q) => qualifier_spot(q),
    };
    Some(Spots {
        name: PREFIX.len()..PREFIX.len() + name.len(),
        qualifier,
    })
}

/// The first non-empty `Qualifier` value of a query that needs no decoding (as
/// `QueryParams::get` finds it).
fn qualifier_spot(query: &str) -> Option<Range<usize>> {
    let mut at = 0;
    for pair in query.split('&') {
        let start = at;
        at += pair.len() + 1;
        if let Some(("Qualifier", value)) = pair.split_once('=')
            && !value.is_empty()
        {
            let from = start + "Qualifier=".len();
            return Some(from..from + value.len());
        }
    }
    None
}

impl HotRoute for HotInvoke {
    fn claim(&self, req: Request<Body>) -> Result<HotFuture, Declined> {
        let Some(spots) = invoke_spots(req.method(), req.uri()) else {
            return Err(Box::new(req));
        };
        let state = Arc::clone(&self.state);
        Ok(Box::pin(async move { answer(&state, spots, req).await }))
    }
}

async fn answer(state: &ApiState, spots: Spots, req: Request<Body>) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let name = &parts.uri.path()[spots.name];
    let qualifier = spots
        .qualifier
        .and_then(|r| parts.uri.query().and_then(|q| q.get(r)));
    let res = match gate::admit(state, Operation::Invoke, &parts, Some(name), body).await {
        Ok(buffered) => {
            let raw = buffered.bytes.clone();
            let res = routes::serve_invoke(state, &parts, name, qualifier, raw).await;
            // The body's share of the memory budget is held until the answer, as the gate
            // middleware holds it.
            drop(buffered);
            res
        }
        Err(e) => Err(e),
    };
    crate::finish(res.unwrap_or_else(IntoResponse::into_response)).await
}

#[cfg(test)]
mod tests;
