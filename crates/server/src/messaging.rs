//! SQS and SNS in the server: the queue and topic domains, their background tasks, and (until
//! the edge listener lands on main) the dispatch of each request to Lambda, SQS or SNS by
//! kindling-edge's table.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use kindling_edge::{Decision, RequestHead, ServiceId};
use kindling_events::AsyncInvoker;
use kindling_queues::forward::{self, Mode};
use kindling_queues::{QueueService, QueuesConfig, TopicService};
use kindling_store::QueueStore;
use tower::ServiceExt;

use crate::cli::ServeArgs;

/// The SQS and SNS routers.
#[derive(Clone)]
pub struct Messaging {
    pub sqs: axum::Router,
    pub sns: axum::Router,
}

/// Starts the queue and topic domains: migrates records of the former built-in dead-letter
/// store into queues, then runs the destination forwarder, HTTP deliveries and retention.
pub async fn start(
    args: &ServeArgs,
    store: Arc<dyn QueueStore>,
    events: &AsyncInvoker,
    sqs_auth: Option<Arc<kindling_auth::Verifier>>,
    sns_auth: Option<Arc<kindling_auth::Verifier>>,
) -> anyhow::Result<Messaging> {
    let queues = QueueService::new(
        QueuesConfig {
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            batch_max: 512,
        },
        store,
    )
    .context("starting the queue writer")?;
    let topics = TopicService::new(queues.clone());
    let wake = events.clone();
    topics.on_async_events(Arc::new(move || wake.wake()));
    queues
        .fail_interrupted_move_tasks()
        .await
        .context("reading message move tasks")?;
    let mut migrated = 0;
    loop {
        let n = forward::forward_once(&topics, Mode::Migrate).await;
        if n == 0 {
            break;
        }
        migrated += n;
    }
    if migrated > 0 {
        tracing::info!(
            records = migrated,
            "moved destination records into SQS queues"
        );
    }
    tokio::spawn(forward::run(topics.clone(), Duration::from_millis(200)));
    tokio::spawn(kindling_queues::http::run(topics.clone()));
    let sweeper = queues.clone();
    tokio::spawn(async move { sweeper.sweep_retention(Duration::from_secs(30)).await });
    Ok(Messaging {
        sqs: kindling_sqs::router(kindling_sqs::SqsState {
            queues,
            account_id: args.account_id.clone(),
            auth: sqs_auth,
        }),
        sns: kindling_sns::router(kindling_sns::SnsState {
            topics,
            account_id: args.account_id.clone(),
            auth: sns_auth,
        }),
    })
}

#[derive(Clone)]
struct Dispatch<L> {
    lambda: L,
    messaging: Messaging,
}

/// Form bodies read to find their service (`Version`); larger ones go to Lambda's API.
const MAX_FORM: usize = 8 * 1024 * 1024;

/// TEMPORARY (replaced by the edge listener's mounting on main): sends each request to the
/// service kindling-edge's dispatch table names; everything else to Lambda's API.
pub fn dispatcher<L>(lambda: L, messaging: Messaging) -> axum::Router
where
    L: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    L::Future: Send,
{
    axum::Router::new()
        .fallback(route::<L>)
        .with_state(Dispatch { lambda, messaging })
}

fn served(id: ServiceId) -> bool {
    matches!(
        id,
        ServiceId::Lambda | ServiceId::Sqs | ServiceId::Sns | ServiceId::Kindling
    )
}

async fn route<L>(State(d): State<Dispatch<L>>, req: Request) -> Response
where
    L: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    L::Future: Send,
{
    let decision = kindling_edge::classify(
        &RequestHead {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
        },
        &served,
    );
    let (req, decision) = match decision {
        Decision::NeedsForm => {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
                return (
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                )
                    .into_response();
            };
            let decision = kindling_edge::classify_form(&bytes, &served);
            (Request::from_parts(parts, Body::from(bytes)), decision)
        }
        other => (req, other),
    };
    let result = match decision {
        Decision::Service(ServiceId::Sqs) => d.messaging.sqs.oneshot(req).await,
        Decision::Service(ServiceId::Sns) => d.messaging.sns.oneshot(req).await,
        _ => d.lambda.oneshot(req).await,
    };
    match result {
        Ok(r) => r,
        Err(never) => match never {},
    }
}
