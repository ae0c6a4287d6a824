//! Hot routes: the few requests that carry a server's load (Lambda's synchronous `Invoke`,
//! function URL calls) served straight from the dispatch decision, below the service's router
//! and its middleware layers.
//!
//! A service registers a [`HotRoute`] for its [`ServiceId`](crate::ServiceId) with
//! [`Services::hot`](crate::Services::hot). After the dispatch table decided a request is for
//! that service, the route looks at the head (method and path, no allocation) and either
//! claims the request, answering it itself, or hands it back untouched to the service's
//! router. A hot route must answer exactly as the router would: it is a shorter way to the
//! same functions, not a second implementation.

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use http::{Request, Response};

/// The answer of a claimed request.
pub type HotFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// A request a hot route gave back, unchanged (boxed: only requests the route does not serve
/// pay for it).
pub type Declined = Box<Request<Body>>;

/// A lean way to serve some of one service's requests.
pub trait HotRoute: Send + Sync + 'static {
    /// Serves `req` when this route handles it (decided from its head only), else gives it
    /// back unchanged.
    fn claim(&self, req: Request<Body>) -> Result<HotFuture, Declined>;
}

/// A new request id (a random UUID, version 4, lowercase and hyphenated) from the thread's
/// fast generator: no system call and no formatting machinery per request. Request ids name
/// requests; they are not secrets.
pub fn new_request_id() -> String {
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.hyphenated().to_string(), a, "lowercase, hyphenated");
    }
}
