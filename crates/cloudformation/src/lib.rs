//! CloudFormation's query protocol (`Action=…&Version=2010-05-15`) over `kindling-deploy`:
//! requests parsed into the engine's inputs ([`input`]), results written as the XML shapes of
//! botocore's model ([`render`]), every failure mapped to the wire once ([`CfnError`]).
//!
//! *Invariant: no stack logic here; the engine decides, this crate translates.*

mod input;
mod render;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use kindling_auth::AuthError;
use kindling_deploy::{DeployError, Deployer};
use kindling_edge::gate::{Access, Gate, GateError};
use kindling_protocol::query::{Params, error_response, response};
use kindling_protocol::xml::Xml;
use kindling_protocol::{ProtocolError, WireError};

/// CloudFormation's XML namespace.
pub const NS: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
/// Largest form body read (a 51,200-byte template, URL-encoded, with room to spare).
const MAX_BODY: usize = 1024 * 1024;

/// What the CloudFormation router serves with.
#[derive(Clone)]
pub struct CfnState {
    pub deployer: Deployer,
    /// Who may call (signing name `cloudformation`).
    pub gate: Gate,
}

/// Why a request failed, as the wire shows it.
#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("Could not find operation {0} for version 2010-05-15")]
    InvalidAction(String),
    #[error("{0}")]
    Validation(String),
    #[error("Request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("{}", .0.message())]
    Auth(AuthError),
    #[error("{0}")]
    Denied(String),
}

impl From<ProtocolError> for CfnError {
    fn from(e: ProtocolError) -> Self {
        Self::Validation(e.to_string())
    }
}

impl WireError for CfnError {
    fn status(&self) -> u16 {
        match self {
            Self::Deploy(DeployError::ChangeSetNotFound(_)) => 404,
            Self::Deploy(DeployError::Store(_) | DeployError::Internal(_)) => 500,
            Self::Auth(e) => e.status(),
            Self::Denied(_) => 403,
            Self::TooLarge => 413,
            _ => 400,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Deploy(e) => match e {
                DeployError::Validation(_) => "ValidationError",
                DeployError::AlreadyExists(_) => "AlreadyExistsException",
                DeployError::ChangeSetNotFound(_) => "ChangeSetNotFound",
                DeployError::InsufficientCapabilities(_) => "InsufficientCapabilitiesException",
                DeployError::InvalidChangeSetStatus(_) => "InvalidChangeSetStatus",
                DeployError::LimitExceeded(_) => "LimitExceededException",
                DeployError::Store(_) | DeployError::Internal(_) => "InternalFailure",
            },
            Self::InvalidAction(_) => "InvalidAction",
            Self::Validation(_) => "ValidationError",
            Self::TooLarge => "RequestEntityTooLarge",
            Self::Denied(_) => "AccessDenied",
            Self::Auth(e) => match e {
                AuthError::UnrecognizedClient => "InvalidClientTokenId",
                AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
                AuthError::IncompleteSignature(_) => "IncompleteSignature",
                AuthError::ExpiredToken => "ExpiredToken",
                _ => "SignatureDoesNotMatch",
            },
        }
    }

    fn message(&self) -> String {
        self.to_string()
    }
}

/// The CloudFormation API.
pub fn router(state: CfnState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<CfnState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let res = match serve(&state, &request_id, req).await {
        Ok(res) => res,
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(error = ?e, "CloudFormation request failed");
            }
            error_response(&e, NS, &request_id)
        }
    };
    res.map(Body::from)
}

fn access(action: &str) -> Access {
    if action.starts_with("Describe")
        || action.starts_with("List")
        || action.starts_with("Get")
        || action == "ValidateTemplate"
    {
        Access::Read
    } else {
        Access::Write
    }
}

async fn serve(
    state: &CfnState,
    request_id: &str,
    req: Request,
) -> Result<kindling_protocol::Response, CfnError> {
    let (parts, body) = req.into_parts();
    let admission = state.gate.check_head(&parts).map_err(gate_error)?;
    let (caller, body) = state
        .gate
        .read_body(admission, &parts, body, MAX_BODY)
        .await
        .map_err(gate_error)?;
    let mut params = Params::parse(parts.uri.query().unwrap_or("").as_bytes())?;
    if !body.bytes.is_empty() {
        params.extend(Params::parse(&body.bytes)?);
    }
    let action = params
        .action()
        .ok_or_else(|| CfnError::Validation("Value for parameter Action is missing".into()))?
        .to_string();
    let resource = params.get("StackName").unwrap_or("*").to_string();
    state
        .gate
        .authorize(
            &caller,
            access(&action),
            &format!("cloudformation:{action}"),
            &resource,
            false,
        )
        .map_err(gate_error)?;
    let d = &state.deployer;
    // Stacks other nodes sharing the store created or changed.
    d.sync().await?;
    let ok = |write: &dyn Fn(&mut Xml)| Ok(response(&action, NS, request_id, Some(write)));
    match action.as_str() {
        "CreateStack" => {
            let id = d.create_stack(input::stack(&params)?).await?;
            ok(&|x| {
                x.leaf("StackId", &id);
            })
        }
        "UpdateStack" => {
            let id = d.update_stack(input::stack(&params)?).await?;
            ok(&|x| {
                x.leaf("StackId", &id);
            })
        }
        "DeleteStack" => {
            d.delete_stack(params.require("StackName")?).await?;
            Ok(response(&action, NS, request_id, None))
        }
        "DescribeStacks" => {
            let stacks = d.describe_stacks(params.get("StackName"))?;
            ok(&|x| render::stacks(x, &stacks))
        }
        "ListStacks" => {
            let filter = params.list("StackStatusFilter");
            let stacks = d.list_stacks(&filter);
            ok(&|x| render::stack_summaries(x, &stacks))
        }
        "DescribeStackEvents" => {
            let events = d
                .describe_stack_events(params.require("StackName")?)
                .await?;
            ok(&|x| render::events(x, &events))
        }
        "DescribeStackResource" => {
            let (stack, res) = d.stack_resource(
                params.require("StackName")?,
                params.require("LogicalResourceId")?,
            )?;
            ok(&|x| render::resource_detail(x, &stack, &res))
        }
        "DescribeStackResources" => {
            let stack = match (params.get("StackName"), params.get("PhysicalResourceId")) {
                (Some(name), _) => d.stack(name)?,
                (None, Some(physical)) => d.stack_of_physical(physical)?,
                (None, None) => {
                    return Err(CfnError::Validation(
                        "Either StackName or PhysicalResourceId must be specified".into(),
                    ));
                }
            };
            let logical = params.get("LogicalResourceId");
            let physical = params.get("PhysicalResourceId");
            let list: Vec<_> = stack
                .resources
                .iter()
                .filter(|r| logical.is_none_or(|l| r.logical_id == l))
                .filter(|r| physical.is_none_or(|p| r.physical_id.as_deref() == Some(p)))
                .cloned()
                .collect();
            ok(&|x| render::resources(x, &stack, &list))
        }
        "ListStackResources" => {
            let (_, list) = d.stack_resources(params.require("StackName")?)?;
            ok(&|x| render::resource_summaries(x, &list))
        }
        "GetTemplate" => {
            let processed = params.get("TemplateStage") == Some("Processed");
            let body = d
                .get_template(
                    params.get("StackName"),
                    params.get("ChangeSetName"),
                    processed,
                )
                .await?;
            ok(&|x| {
                x.leaf("TemplateBody", &body);
                x.elem("StagesAvailable", |x| {
                    x.leaf("member", "Original").leaf("member", "Processed");
                });
            })
        }
        "GetTemplateSummary" => {
            let summary = d
                .template_summary(&input::template(&params), params.get("StackName"))
                .await?;
            ok(&|x| render::summary(x, &summary, true))
        }
        "ValidateTemplate" => {
            let summary = d.template_summary(&input::template(&params), None).await?;
            ok(&|x| render::summary(x, &summary, false))
        }
        "ListExports" => {
            let exports = d.list_exports();
            ok(&|x| render::exports(x, &exports))
        }
        "CreateChangeSet" => {
            let (id, stack_id) = d.create_change_set(input::change_set(&params)?).await?;
            ok(&|x| {
                x.leaf("Id", &id).leaf("StackId", &stack_id);
            })
        }
        "DescribeChangeSet" => {
            let cs = d
                .change_set(params.require("ChangeSetName")?, params.get("StackName"))
                .await?;
            ok(&|x| render::change_set(x, &cs))
        }
        "ListChangeSets" => {
            let list = d.list_change_sets(params.require("StackName")?).await?;
            ok(&|x| render::change_set_summaries(x, &list))
        }
        "ExecuteChangeSet" => {
            d.execute_change_set(params.require("ChangeSetName")?, params.get("StackName"))
                .await?;
            ok(&|_| {})
        }
        "DeleteChangeSet" => {
            d.delete_change_set(params.require("ChangeSetName")?, params.get("StackName"))
                .await?;
            ok(&|_| {})
        }
        other => Err(CfnError::InvalidAction(other.to_string())),
    }
}

fn gate_error(e: GateError) -> CfnError {
    match e {
        GateError::Auth(e) => CfnError::Auth(e),
        GateError::Body(kindling_edge::BodyError::TooLarge { .. }) => CfnError::TooLarge,
        e => CfnError::Denied(e.to_string()),
    }
}
