//! SNS on the wire (the query protocol: `Action=<Op>&Version=2010-03-31` forms in the body or
//! the URL, XML results in `<Op>Response><Op>Result>`), over the topic domain in
//! `kindling-queues`. `GET /?Action=ConfirmSubscription&…` (the `SubscribeURL` sent to HTTP
//! subscribers) and `GET /?Action=Unsubscribe&…` work as on SNS.

pub mod error;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_edge::gate::{Access, Gate, GateError};
use kindling_protocol::query::{self, Params};
use kindling_protocol::xml::Xml;
use kindling_protocol::{ProtocolError, WireError};
use kindling_queues::{AttributeInput, PublishInput, SubscribeInput, TopicError, TopicService};

use crate::error::{SnsError, topic_codes};

pub const NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// Largest request body read (a 256 KiB batch, form-encoded).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Clone)]
pub struct SnsState {
    pub topics: TopicService,
    pub account_id: String,
    /// Signatures and function access, shared with every service (signing name `sns`).
    pub gate: Gate,
}

pub fn router(state: SnsState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// What an operation writes inside its `<Op>Result>` (None: no result element).
type Output = Option<Box<dyn Fn(&mut Xml) + Send>>;

async fn handle(State(state): State<SnsState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (action, result) = serve(&state, req).await;
    let response = match result {
        Ok(out) => query::response(
            &action,
            NAMESPACE,
            &request_id,
            out.as_ref().map(|f| f.as_ref() as &dyn Fn(&mut Xml)),
        ),
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(error = &e as &dyn std::error::Error, "SNS request failed");
            }
            query::error_response(&e, NAMESPACE, &request_id)
        }
    };
    response.map(Body::from).into_response()
}

async fn serve(state: &SnsState, req: Request) -> (String, Result<Output, SnsError>) {
    let (parts, body) = req.into_parts();
    let action = parts
        .uri
        .query()
        .and_then(|q| Params::parse(q.as_bytes()).ok())
        .and_then(|p| p.action().map(str::to_string))
        .unwrap_or_default();
    // Confirming and unsubscribing through the URLs SNS sends need no signature.
    let public = parts.method == http::Method::GET
        && matches!(action.as_str(), "ConfirmSubscription" | "Unsubscribe");
    let caller = if public {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(_) => None,
            Err(_) => return (action, Err(SnsError::TooLarge(MAX_BODY))),
        }
    } else {
        let admission = match state.gate.check_head(&parts) {
            Ok(a) => a,
            Err(e) => return (action, Err(e.into())),
        };
        match state
            .gate
            .read_body(admission, &parts, body, MAX_BODY)
            .await
        {
            Ok((caller, body)) => Some((caller, body)),
            Err(e) => return (action, Err(e.into())),
        }
    };
    let mut params = Params::default();
    if let Some((_, body)) = &caller {
        match Params::parse(&body.bytes) {
            Ok(p) => params = p,
            Err(e) => return (action, Err(e.into())),
        }
    }
    if let Some(q) = parts.uri.query() {
        match Params::parse(q.as_bytes()) {
            Ok(p) => params.extend(p),
            Err(e) => return (action, Err(e.into())),
        }
    }
    let action = params.action().unwrap_or_default().to_string();
    if let Some((caller, _)) = &caller {
        let resource = ["TopicArn", "TargetArn", "ResourceArn", "SubscriptionArn"]
            .iter()
            .find_map(|k| params.get(k))
            .unwrap_or("*");
        if let Err(e) = state.gate.authorize(
            caller,
            access(&action),
            &format!("sns:{action}"),
            resource,
            false,
        ) {
            return (action, Err(e.into()));
        }
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base_url = format!("http://{host}");
    let trace = parts
        .headers
        .get("x-amzn-trace-id")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 2048);
    let result = execute(state, &action, &params, &base_url, trace).await;
    (action, result)
}

fn req<'a>(p: &'a Params, name: &str) -> Result<&'a str, SnsError> {
    Ok(p.require(name)?)
}

fn attributes(p: &Params) -> BTreeMap<String, String> {
    p.string_map("Attributes", "key", "value")
        .into_iter()
        .collect()
}

fn tags(p: &Params) -> BTreeMap<String, String> {
    p.string_map("Tags", "Key", "Value").into_iter().collect()
}

fn message_attributes(p: &Params) -> Result<BTreeMap<String, AttributeInput>, SnsError> {
    let mut out = BTreeMap::new();
    for item in p.indexed("MessageAttributes") {
        let Some(name) = item.get("Name") else {
            continue;
        };
        let v = item.sub("Value");
        let binary = match v.get("BinaryValue") {
            Some(b) => Some(STANDARD.decode(b.trim()).map_err(|_| {
                SnsError::Topic(TopicError::InvalidParameterValue(format!(
                    "The message attribute '{name}' has a BinaryValue that is not valid base64."
                )))
            })?),
            None => None,
        };
        out.insert(
            name.to_string(),
            AttributeInput {
                data_type: v.get("DataType").map(str::to_string),
                string_value: v.get("StringValue").map(str::to_string),
                binary_value: binary,
                has_list_values: false,
            },
        );
    }
    Ok(out)
}

fn publish_input(p: &Params, trace: Option<&str>) -> Result<PublishInput, SnsError> {
    let get = |k: &str| p.get(k).map(str::to_string);
    Ok(PublishInput {
        topic_arn: get("TopicArn"),
        target_arn: get("TargetArn"),
        phone_number: get("PhoneNumber"),
        message: get("Message"),
        subject: get("Subject"),
        message_structure: get("MessageStructure"),
        attributes: message_attributes(p)?,
        group_id: get("MessageGroupId"),
        dedup_id: get("MessageDeduplicationId"),
        trace_header: trace.map(str::to_string),
    })
}

fn write_map(x: &mut Xml, map: &BTreeMap<String, String>) {
    x.open("Attributes");
    for (k, v) in map {
        x.open("entry")
            .leaf("key", k)
            .leaf("value", v)
            .close("entry");
    }
    x.close("Attributes");
}

fn some(f: impl Fn(&mut Xml) + Send + 'static) -> Output {
    Some(Box::new(f))
}

async fn execute(
    state: &SnsState,
    action: &str,
    p: &Params,
    base_url: &str,
    trace: Option<&str>,
) -> Result<Output, SnsError> {
    let t = &state.topics;
    let account = state.account_id.as_str();
    Ok(match action {
        "CreateTopic" => {
            let name = req(p, "Name")?;
            let arn = t
                .create_topic(account, name, attributes(p), tags(p))
                .await?;
            some(move |x| {
                x.leaf("TopicArn", &arn);
            })
        }
        "DeleteTopic" => {
            t.delete_topic(req(p, "TopicArn")?).await?;
            None
        }
        "ListTopics" => {
            let (arns, next) = t.list_topics(account, p.get("NextToken")).await?;
            some(move |x| {
                x.open("Topics");
                for a in &arns {
                    x.open("member").leaf("TopicArn", a).close("member");
                }
                x.close("Topics");
                x.opt_leaf("NextToken", next.as_deref());
            })
        }
        "GetTopicAttributes" => {
            let attrs = t.topic_attributes(req(p, "TopicArn")?).await?;
            some(move |x| write_map(x, &attrs))
        }
        "SetTopicAttributes" => {
            t.set_topic_attribute(
                req(p, "TopicArn")?,
                req(p, "AttributeName")?,
                p.get("AttributeValue").unwrap_or_default(),
            )
            .await?;
            None
        }
        "Subscribe" => {
            let arn = t
                .subscribe(SubscribeInput {
                    topic_arn: req(p, "TopicArn")?.to_string(),
                    protocol: req(p, "Protocol")?.to_string(),
                    endpoint: p.get("Endpoint").map(str::to_string),
                    attributes: attributes(p),
                    return_subscription_arn: p.bool("ReturnSubscriptionArn")?.unwrap_or(false),
                    base_url: base_url.to_string(),
                })
                .await?;
            some(move |x| {
                x.leaf("SubscriptionArn", &arn);
            })
        }
        "ConfirmSubscription" => {
            let arn = t
                .confirm_subscription(req(p, "TopicArn")?, req(p, "Token")?)
                .await?;
            some(move |x| {
                x.leaf("SubscriptionArn", &arn);
            })
        }
        "Unsubscribe" => {
            t.unsubscribe(req(p, "SubscriptionArn")?).await?;
            None
        }
        "ListSubscriptions" | "ListSubscriptionsByTopic" => {
            let topic = if action == "ListSubscriptionsByTopic" {
                Some(req(p, "TopicArn")?)
            } else {
                None
            };
            let (subs, next) = t
                .list_subscriptions(account, topic, p.get("NextToken"))
                .await?;
            some(move |x| {
                x.open("Subscriptions");
                for s in &subs {
                    let arn = if s.confirmed {
                        s.arn.as_str()
                    } else {
                        "PendingConfirmation"
                    };
                    x.open("member")
                        .leaf("SubscriptionArn", arn)
                        .leaf("Owner", &s.owner)
                        .leaf("Protocol", &s.protocol)
                        .leaf("Endpoint", &s.endpoint)
                        .leaf("TopicArn", &s.topic_arn)
                        .close("member");
                }
                x.close("Subscriptions");
                x.opt_leaf("NextToken", next.as_deref());
            })
        }
        "GetSubscriptionAttributes" => {
            let attrs = t
                .subscription_attributes(req(p, "SubscriptionArn")?)
                .await?;
            some(move |x| write_map(x, &attrs))
        }
        "SetSubscriptionAttributes" => {
            t.set_subscription_attribute(
                req(p, "SubscriptionArn")?,
                req(p, "AttributeName")?,
                p.get("AttributeValue").unwrap_or_default(),
            )
            .await?;
            None
        }
        "Publish" => {
            let r = t.publish(&publish_input(p, trace)?).await?;
            some(move |x| {
                x.leaf("MessageId", &r.message_id);
                x.opt_leaf("SequenceNumber", r.sequence_number.as_deref());
            })
        }
        "PublishBatch" => {
            let topic = req(p, "TopicArn")?;
            let mut entries = Vec::new();
            for e in p.indexed("PublishBatchRequestEntries") {
                entries.push((
                    e.get("Id").unwrap_or_default().to_string(),
                    publish_input(&e, trace)?,
                ));
            }
            let results = t.publish_batch(topic, entries).await?;
            some(move |x| {
                x.open("Successful");
                for (id, r) in &results {
                    if let Ok(r) = r {
                        x.open("member")
                            .leaf("Id", id)
                            .leaf("MessageId", &r.message_id)
                            .opt_leaf("SequenceNumber", r.sequence_number.as_deref())
                            .close("member");
                    }
                }
                x.close("Successful");
                x.open("Failed");
                for (id, r) in &results {
                    if let Err(e) = r {
                        x.open("member")
                            .leaf("Id", id)
                            .leaf("Code", topic_codes(e).0)
                            .leaf("Message", e.to_string())
                            .leaf("SenderFault", !e.is_internal())
                            .close("member");
                    }
                }
                x.close("Failed");
            })
        }
        "TagResource" => {
            t.tag(req(p, "ResourceArn")?, tags(p)).await?;
            some(|_| {})
        }
        "UntagResource" => {
            t.untag(req(p, "ResourceArn")?, &p.list("TagKeys")).await?;
            some(|_| {})
        }
        "ListTagsForResource" => {
            let tags = t.tags(req(p, "ResourceArn")?).await?;
            some(move |x| {
                x.open("Tags");
                for (k, v) in &tags {
                    x.open("member")
                        .leaf("Key", k)
                        .leaf("Value", v)
                        .close("member");
                }
                x.close("Tags");
            })
        }
        "" => return Err(SnsError::Protocol(ProtocolError::Missing("Action".into()))),
        other => return Err(SnsError::InvalidAction(other.to_string())),
    })
}

/// Who may call each operation with a function's session credentials.
fn access(action: &str) -> Access {
    match action {
        "Publish" | "PublishBatch" => Access::Data,
        "ListTopics"
        | "GetTopicAttributes"
        | "ListSubscriptions"
        | "ListSubscriptionsByTopic"
        | "GetSubscriptionAttributes"
        | "ListTagsForResource" => Access::Read,
        _ => Access::Write,
    }
}

impl From<GateError> for SnsError {
    fn from(e: GateError) -> Self {
        let (status, code, message) = match e {
            GateError::Auth(a) => (
                a.status(),
                match a.error_type() {
                    "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
                    "IncompleteSignatureException" => "IncompleteSignature",
                    "UnrecognizedClientException" => "InvalidClientTokenId",
                    _ => "SignatureDoesNotMatch",
                },
                a.message().to_string(),
            ),
            GateError::AccessDenied {
                caller,
                action,
                resource,
            } => (
                403,
                "AuthorizationError",
                GateError::access_denied_message(&caller, &action, &resource),
            ),
            GateError::Body(kindling_edge::BodyError::TooLarge { limit }) => {
                return Self::TooLarge(limit);
            }
            other => (403, "AuthorizationError", other.to_string()),
        };
        Self::Auth {
            status,
            code,
            message,
        }
    }
}
