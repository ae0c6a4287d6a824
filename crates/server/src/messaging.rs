//! SQS and SNS in the server: the queue and topic domains, their background tasks, and their
//! routers (mounted behind the edge's dispatch table).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kindling_edge::gate::{AuthPolicy, Gate};
use kindling_events::AsyncInvoker;
use kindling_queues::forward::{self, Mode};
use kindling_queues::{QueueService, QueuesConfig, TopicService};
use kindling_store::QueueStore;

use crate::cli::ServeArgs;

/// The SQS and SNS routers.
#[derive(Clone)]
pub struct Messaging {
    pub sqs: axum::Router,
    pub sns: axum::Router,
    /// The queue domain, for event source mappings' pollers.
    pub queues: QueueService,
    /// The topic domain (and through it the queues), for the deploy engine's handlers.
    pub topics: TopicService,
}

/// Starts the queue and topic domains: migrates records of the former built-in dead-letter
/// store into queues, then runs the destination forwarder, HTTP deliveries and retention.
pub async fn start(
    args: &ServeArgs,
    store: Arc<dyn QueueStore>,
    refresh: Option<std::time::Duration>,
    events: &AsyncInvoker,
    policy: Arc<AuthPolicy>,
) -> anyhow::Result<Messaging> {
    let queues = QueueService::new(
        QueuesConfig {
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            batch_max: 512,
            refresh,
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
        queues: queues.clone(),
        sqs: kindling_sqs::router(kindling_sqs::SqsState {
            queues,
            account_id: args.account_id.clone(),
            gate: Gate::new(Arc::clone(&policy), "sqs"),
        }),
        topics: topics.clone(),
        sns: kindling_sns::router(kindling_sns::SnsState {
            topics,
            account_id: args.account_id.clone(),
            gate: Gate::new(policy, "sns"),
        }),
    })
}
