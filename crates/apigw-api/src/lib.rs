//! API Gateway on Kindling's endpoint, three routers behind the edge's dispatch table:
//!
//! * [`v2_router`]: the apigatewayv2 control plane (HTTP APIs) under `/v2/apis…`;
//! * [`v1_router`]: the apigateway control plane (REST APIs) under `/restapis…`;
//! * [`execute_router`]: invocations, by host (`<api-id>.execute-api.<anything>`) or by the
//!   DNS-free path forms `/execute-api/<api-id>/…` (what `apiEndpoint` shows) and
//!   `/restapis/<api-id>/<stage>/_user_request_/…`.
//!
//! The control planes go through the shared gate (signing name `apigateway`), read the body
//! within its limit and call the domain ([`kindling_apigw`]) on the blocking pool; every
//! failure is rendered once, in [`error`] (`x-amzn-ErrorType` and `{"message": …}`).
//! Invocations build the payload 1.0 or 2.0 event (`kindling-httpevents`), check the
//! function's resource policy for `apigateway.amazonaws.com` and run a normal synchronous
//! invocation through the scheduler ([`invoke`]); their errors are API Gateway's gateway
//! responses ([`execute`]).

pub mod error;
mod execute;
pub mod invoke;
mod paths;
mod v1;
mod v2;

use std::sync::Arc;

use axum::Router;
use kindling_apigw::ApiGateway;
use kindling_edge::gate::Gate;

pub use invoke::Invoker;

/// Largest control-plane body (an imported OpenAPI document).
pub const MAX_CONTROL_BODY: usize = 6 * 1024 * 1024;

/// What the control-plane routers serve with.
#[derive(Clone)]
pub struct ControlState {
    pub service: Arc<ApiGateway>,
    /// The shared authentication policy with signing name `apigateway`.
    pub gate: Gate,
}

/// What the invocation router serves with.
#[derive(Clone)]
pub struct ExecuteState {
    pub service: Arc<ApiGateway>,
    pub invoker: Arc<Invoker>,
}

/// The apigatewayv2 control plane.
pub fn v2_router(state: ControlState) -> Router {
    Router::new().fallback(v2::serve).with_state(state)
}

/// The apigateway (v1) control plane.
pub fn v1_router(state: ControlState) -> Router {
    Router::new().fallback(v1::serve).with_state(state)
}

/// API invocations.
pub fn execute_router(state: ExecuteState) -> Router {
    Router::new().fallback(execute::serve).with_state(state)
}
