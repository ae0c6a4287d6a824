//! The web console, served by Kindling itself at `/_kindling/console/`: hand-written HTML, CSS
//! and JavaScript embedded in the binary ([`assets`]; no build step, no CDN, works offline), and
//! the few JSON endpoints under `/_kindling/api/` it needs besides the AWS APIs it calls on the
//! same endpoint (Lambda, SQS, CloudFormation, CloudWatch Logs) ([`api`]).
//!
//! The page calls every API the way an SDK would: in shared mode it asks for an access key and
//! signs each request with SigV4 in the browser (WebCrypto), and the endpoints here sit behind
//! the same gate as the AWS APIs (signing name `lambda`).

pub mod api;
pub mod assets;

use std::sync::Arc;

use axum::routing::{get, post};
use kindling_edge::gate::Gate;
use kindling_events::AsyncInvoker;
use kindling_scheduler::Scheduler;
use kindling_store::QueueStore;

/// What the console's endpoints read.
#[derive(Clone)]
pub struct ConsoleState {
    pub scheduler: Scheduler,
    pub queues: Arc<dyn QueueStore>,
    /// Woken after a redrive stored events.
    pub events: AsyncInvoker,
    /// Who may call (signing name `lambda`).
    pub gate: Gate,
    pub region: String,
    pub account_id: String,
}

/// The console's routes (assets and JSON endpoints); the rest goes to `fallback`.
pub fn router(state: ConsoleState, fallback: axum::Router) -> axum::Router {
    axum::Router::new()
        .route("/_kindling/console", get(assets::redirect))
        .route("/_kindling/console/", get(assets::index))
        .route("/_kindling/console/{file}", get(assets::file))
        .route("/_kindling/api/info", get(api::info))
        .route("/_kindling/api/invocations", get(api::invocations))
        .route("/_kindling/api/charts", get(api::charts))
        .route("/_kindling/api/queues/{name}/messages", get(api::messages))
        .route("/_kindling/api/queues/{name}/redrive", post(api::redrive))
        .with_state(state)
        .fallback_service(fallback)
}
