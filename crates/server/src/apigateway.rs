//! API Gateway in the server: the domain over the state database, its two control planes and
//! the invocation router (mounted behind the edge's dispatch table).

use std::sync::Arc;

use kindling_apigw::{ApiGateway, ApigwConfig};
use kindling_apigw_api::{ControlState, ExecuteState, Invoker};
use kindling_control::ControlPlane;
use kindling_edge::gate::{AuthPolicy, Gate};
use kindling_model::ArnContext;
use kindling_scheduler::Scheduler;
use kindling_store::ApiStore;

use crate::cli::ServeArgs;

/// The API Gateway routers.
pub struct Routers {
    pub v1: axum::Router,
    pub v2: axum::Router,
    pub execute: axum::Router,
}

/// The domain over the state database (shared by the control planes, invocations and
/// CloudFormation's handlers, so that every write drops the invocation path's cache); with
/// `refresh`, it also reloads what other nodes changed that often.
pub fn service(
    args: &ServeArgs,
    store: Arc<dyn ApiStore>,
    refresh: Option<std::time::Duration>,
) -> Arc<ApiGateway> {
    let mut service = ApiGateway::new(
        store,
        ApigwConfig {
            arn: ArnContext::new(&args.region, &args.account_id),
        },
    );
    if let Some(every) = refresh {
        service = service.with_refresh(every);
    }
    Arc::new(service)
}

pub fn routers(
    service: Arc<ApiGateway>,
    control: Arc<ControlPlane>,
    scheduler: Scheduler,
    policy: Arc<AuthPolicy>,
) -> Routers {
    // Both API Gateway clients sign as `apigateway`.
    let control_state = ControlState {
        service: Arc::clone(&service),
        gate: Gate::new(policy, "apigateway"),
    };
    Routers {
        v1: kindling_apigw_api::v1_router(control_state.clone()),
        v2: kindling_apigw_api::v2_router(control_state),
        execute: kindling_apigw_api::execute_router(ExecuteState {
            service,
            invoker: Arc::new(Invoker::new(control, scheduler)),
        }),
    }
}
