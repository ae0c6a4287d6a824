//! CloudFormation in the server: the deploy engine with handlers over this process's own
//! services (control plane, queues and topics, object store), mounted behind the edge.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kindling_control::ControlPlane;
use kindling_deploy::handlers::{Kindling, ProvisionedConcurrency};
use kindling_deploy::{BoxFuture, DeployConfig, Deployer, TemplateSource};
use kindling_edge::gate::{AuthPolicy, Gate};
use kindling_events::AsyncInvoker;
use kindling_objects::Objects;
use kindling_queues::TopicService;
use kindling_store::StackStore;

use crate::cli::ServeArgs;

/// How long stack operations may run before CreateStack/UpdateStack/DeleteStack/
/// ExecuteChangeSet answer (clients' waiters then find them finished at their first poll).
const LINGER: Duration = Duration::from_secs(20);

/// Reads `TemplateURL`s from the object store: path style (`http(s)://host/bucket/key`,
/// what the SAM CLI and `aws cloudformation deploy` build from the endpoint) or virtual-hosted
/// (`https://bucket.s3[.region].amazonaws.com/key`).
struct S3Templates(Objects);

fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/')?;
    let path = path.split('?').next().unwrap_or(path);
    let decode = percent_decode;
    if let Some(bucket) = host.split_once(".s3").map(|(b, _)| b)
        && !bucket.is_empty()
        && host.contains(".s3")
        && !host.starts_with("s3.")
    {
        return Some((bucket.to_string(), decode(path)));
    }
    let (bucket, key) = path.split_once('/')?;
    Some((bucket.to_string(), decode(key)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TemplateSource for S3Templates {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let (bucket, key) = parse_url(url)
                .ok_or_else(|| format!("TemplateURL must be a supported URL: {url}"))?;
            let (_, bytes) = self
                .0
                .read_object(&bucket, &key, 1_000_000)
                .await
                .map_err(|e| format!("TemplateURL {url} could not be read: {e}"))?;
            String::from_utf8(bytes).map_err(|_| "Template format error: not UTF-8".to_string())
        })
    }
}

/// Rules' and schedules' targets: Lambda functions, invoked asynchronously (the event is
/// stored before the tick or `PutEvents` counts it as delivered), SQS queues (a message sent)
/// and SNS topics (a message published).
struct Targets {
    events: AsyncInvoker,
    topics: TopicService,
}

impl kindling_cron::Fire for Targets {
    fn fire<'a>(
        &'a self,
        target: &'a kindling_cron::Target,
        payload: Vec<u8>,
    ) -> kindling_cron::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let arn = target.arn.as_str();
            if arn.starts_with("arn:aws:sqs:") {
                let queues = self.topics.queues();
                let q = queues
                    .queue_by_arn(arn)
                    .await
                    .map_err(|e| format!("{arn}: {e}"))?;
                let account = arn.split(':').nth(4).unwrap_or_default();
                let input = kindling_queues::SendInput {
                    body: String::from_utf8_lossy(&payload).into_owned(),
                    ..Default::default()
                };
                queues
                    .send(&q, &input, account)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{arn}: {e}"))
            } else if arn.starts_with("arn:aws:sns:") {
                let input = kindling_queues::PublishInput {
                    topic_arn: Some(arn.to_string()),
                    message: Some(String::from_utf8_lossy(&payload).into_owned()),
                    ..Default::default()
                };
                self.topics
                    .publish(&input)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{arn}: {e}"))
            } else {
                let r = kindling_model::FunctionRef::parse(arn, true)
                    .map_err(|e| format!("{arn}: {e}"))?;
                self.events
                    .enqueue(
                        uuid::Uuid::new_v4().to_string(),
                        r.name,
                        r.qualifier.map(|q| q.to_string()),
                        payload,
                        None,
                    )
                    .await
                    .map_err(|e| e.to_string())
            }
        })
    }
}

/// Provisioned concurrency of templates' aliases and versions, kept by this node's scheduler
/// as for the Lambda API.
struct DataPlane {
    control: Arc<ControlPlane>,
    scheduler: kindling_scheduler::Scheduler,
}

impl ProvisionedConcurrency for DataPlane {
    fn apply<'a>(&'a self, function: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(kindling_api::provision(
            &self.control,
            &self.scheduler,
            function,
        ))
    }

    fn status(&self, function: &str, qualifier: &str) -> Option<(&'static str, Option<String>)> {
        self.scheduler
            .provisioned_status(function, qualifier)
            .map(|s| (s.state.as_str(), s.reason))
    }
}

/// Opens the schedule runner and the engine (resuming interrupted operations); returns the
/// CloudFormation router and the rules (scheduled and pattern rules, for EventBridge's
/// PutEvents). The runner stops when `stopped` resolves.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    args: &ServeArgs,
    stores: &crate::stores::ServiceStores,
    cluster: kindling_cluster::Cluster,
    control: Arc<ControlPlane>,
    scheduler: kindling_scheduler::Scheduler,
    topics: TopicService,
    objects: Objects,
    events: AsyncInvoker,
    mappings: kindling_esm::Mappings,
    apigw: Arc<kindling_apigw::ApiGateway>,
    policy: Arc<AuthPolicy>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(axum::Router, kindling_cron::Cron)> {
    let cron = kindling_cron::Cron::open(
        Arc::clone(&stores.schedules),
        Arc::new(Targets {
            events,
            topics: topics.clone(),
        }),
        &args.region,
        &args.account_id,
    )
    .await
    .context("opening schedules")?;
    cron.set_cluster(cluster.clone());
    cron.start(stopped);
    let store: Arc<dyn StackStore> = Arc::clone(&stores.stacks);
    let host = if args.listen.ip().is_unspecified() {
        format!("127.0.0.1:{}", args.listen.port())
    } else {
        args.listen.to_string()
    };
    let provisioned: Arc<dyn ProvisionedConcurrency> = Arc::new(DataPlane {
        control: Arc::clone(&control),
        scheduler,
    });
    let provider = Kindling {
        control,
        topics,
        objects: objects.clone(),
        account_id: args.account_id.clone(),
        region: args.region.clone(),
        base_url: format!("http://{host}"),
        cron: Some(cron.clone()),
        esm: Some(mappings),
        apigw: Some(apigw),
        shift_minute: Duration::from_secs_f64(args.traffic_shift_minute),
        provisioned: Some(provisioned),
    };
    let mut config = DeployConfig::new(&args.region, &args.account_id);
    config.linger = LINGER;
    let deployer = Deployer::open(
        config,
        store,
        Arc::new(provider),
        Arc::new(S3Templates(objects)),
        cluster.clone(),
    )
    .await
    .context("opening CloudFormation stacks")?;
    Ok((
        kindling_cloudformation::router(kindling_cloudformation::CfnState {
            deployer,
            gate: Gate::new(policy, "cloudformation"),
        }),
        cron,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn template_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:9000/bucket/a/b%20c.template"),
            Some(("bucket".into(), "a/b c.template".into()))
        );
        assert_eq!(
            parse_url("https://s3.us-east-1.amazonaws.com/bkt/key"),
            Some(("bkt".into(), "key".into()))
        );
        assert_eq!(
            parse_url("https://bkt.s3.amazonaws.com/dir/key"),
            Some(("bkt".into(), "dir/key".into()))
        );
        assert_eq!(parse_url("ftp://x/y"), None);
    }
}
