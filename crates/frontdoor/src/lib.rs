//! Function URLs: the HTTP front door that invokes a function.
//!
//! A request to `/lambda-url/<url-id>/<path>` (or to the host `<url-id>.lambda-url.<region>.<…>`)
//! is resolved to the URL's function and qualifier, checked against its `AuthType` (NONE: the
//! resource policy must allow `lambda:InvokeFunctionUrl` to `*`; AWS_IAM: SigV4 with signing
//! name `lambda`), answered directly when it is a CORS preflight, else turned into a payload
//! format 2.0 event ([`kindling_httpevents`]) and run as a normal synchronous invocation through
//! the scheduler (same concurrency, throttling, logs and alias weights as `Invoke`). The result
//! is mapped back to an HTTP response as Lambda maps it.
//!
//! [`hot_route`] serves the same handler below the router (the edge's hot routes).
//!
//! *Invariant: no Lambda REST routes here and no wire format but the URL's own; every failure
//! goes through [`FrontDoorError`]; a client's mistake is never a 500.*

mod address;
mod cors;
mod error;
mod handler;
mod streaming;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use http::Request;
use kindling_control::ControlPlane;
use kindling_edge::gate::Gate;
use kindling_edge::{Declined, HotFuture, HotRoute};
use kindling_scheduler::Scheduler;

pub use address::{Address, address, domain_name};
pub use error::FrontDoorError;

/// What the front door serves with.
#[derive(Clone)]
pub struct FrontDoorState {
    pub control: Arc<ControlPlane>,
    pub scheduler: Scheduler,
    /// The server's authentication policy with signing name `lambda` (AWS_IAM URLs).
    pub gate: Gate,
}

/// The function URL router (mounted as `ServiceId::FunctionUrl`).
pub fn router(state: FrontDoorState) -> Router {
    Router::new()
        .fallback(handler::handle)
        .with_state(Arc::new(state))
}

/// The same handler as [`router`]'s, as a hot route (`Services::hot` for
/// `ServiceId::FunctionUrl`): every request the dispatch table sends to function URLs goes
/// straight to it, without the router's matching and state layers.
pub fn hot_route(state: FrontDoorState) -> Arc<dyn HotRoute> {
    Arc::new(Hot(Arc::new(state)))
}

struct Hot(Arc<FrontDoorState>);

impl HotRoute for Hot {
    fn claim(&self, req: Request<Body>) -> Result<HotFuture, Declined> {
        Ok(Box::pin(handler::handle(State(Arc::clone(&self.0)), req)))
    }
}
