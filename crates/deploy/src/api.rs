//! The engine's operations, one per CloudFormation action (the wire crate parses requests
//! into these inputs and renders the results).

use std::collections::HashMap;
use std::sync::Arc;

use kindling_cfn_template::{
    DeployedResource, EvalMode, MASKED_VALUE, MAX_TEMPLATE_BODY_BYTES, MAX_TEMPLATE_URL_BYTES,
    NO_CHANGES_REASON, NothingKnown, ParameterInput, PlannedResource, ResourceResolver,
    plan_changes, required_capabilities,
};

use kindling_store::StoreError;

use crate::engine::{Deployer, now_ms};
use crate::error::{DeployError, Result, no_stack};
use crate::model::{
    Change, ChangeDetailRecord, ChangeSet, Operation, OperationKind, Snapshot, Stack, StackEvent,
    StackParameter, StackResource, status,
};
use crate::prepare::{Prepared, Surroundings, prepare};
use crate::run::{STACK_TYPE, resolver, user_initiated};

/// Where a template comes from.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    pub body: Option<String>,
    pub url: Option<String>,
    pub use_previous: bool,
}

/// The members CreateStack, UpdateStack and CreateChangeSet share.
#[derive(Debug, Clone, Default)]
pub struct StackInput {
    pub stack_name: String,
    pub template: TemplateInput,
    pub parameters: Vec<ParameterInput>,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub notification_arns: Vec<String>,
    pub role_arn: Option<String>,
    pub disable_rollback: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeSetInput {
    pub stack: StackInput,
    pub change_set_name: String,
    pub change_set_type: Option<String>,
    pub description: Option<String>,
}

/// ValidateTemplate / GetTemplateSummary.
#[derive(Debug, Clone, Default)]
pub struct TemplateSummary {
    pub description: Option<String>,
    pub parameters: Vec<SummaryParameter>,
    pub capabilities: Vec<String>,
    pub capabilities_reason: Option<String>,
    pub declared_transforms: Vec<String>,
    pub resource_types: Vec<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SummaryParameter {
    pub key: String,
    pub parameter_type: String,
    pub default: Option<String>,
    pub no_echo: bool,
    pub description: Option<String>,
    pub allowed_values: Vec<String>,
}

fn check_name(name: &str, member: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok || (member == "stackName" && name.starts_with("arn:")) {
        Ok(())
    } else {
        Err(DeployError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*"
        )))
    }
}

impl Deployer {
    fn arn(&self, kind: &str, name: &str) -> String {
        let c = self.config();
        format!(
            "arn:{}:cloudformation:{}:{}:{kind}/{name}/{}",
            c.partition,
            c.region,
            c.account_id,
            uuid::Uuid::new_v4()
        )
    }

    /// Exports of every live stack but `stack_id`.
    pub(crate) fn exports_except(&self, stack_id: &str) -> HashMap<String, String> {
        self.state()
            .stacks
            .iter()
            .filter(|s| !s.is_deleted() && s.stack_id != stack_id)
            .flat_map(|s| s.outputs.iter())
            .filter_map(|o| o.export_name.clone().map(|n| (n, o.value.clone())))
            .collect()
    }

    /// The stack of that name or id.
    pub fn stack(&self, name_or_id: &str) -> Result<Stack> {
        self.state()
            .find(name_or_id)
            .cloned()
            .ok_or_else(|| no_stack(name_or_id))
    }

    async fn template_text(&self, t: &TemplateInput, current: Option<&Stack>) -> Result<String> {
        match (&t.body, &t.url, t.use_previous) {
            (Some(body), None, false) => {
                if body.len() > MAX_TEMPLATE_BODY_BYTES {
                    return Err(DeployError::Validation(format!(
                        "1 validation error detected: Value at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to {MAX_TEMPLATE_BODY_BYTES}"
                    )));
                }
                Ok(body.clone())
            }
            (None, Some(url), false) => {
                let text = self
                    .inner
                    .templates
                    .fetch(url)
                    .await
                    .map_err(DeployError::Validation)?;
                if text.len() > MAX_TEMPLATE_URL_BYTES {
                    return Err(DeployError::Validation(format!(
                        "Template may not exceed {MAX_TEMPLATE_URL_BYTES} bytes in size."
                    )));
                }
                Ok(text)
            }
            (None, None, true) => match current {
                Some(s) => Ok(s.template_body.clone()),
                None => Err(DeployError::Validation(
                    "UsePreviousTemplate can only be used for an existing stack".into(),
                )),
            },
            (None, None, false) => Err(DeployError::Validation(
                "Either Template URL or Template Body must be specified.".into(),
            )),
            _ => Err(DeployError::Validation(
                "Specify exactly one of TemplateBody, TemplateURL or UsePreviousTemplate.".into(),
            )),
        }
    }

    fn check_capabilities(&self, prepared: &Prepared, given: &[String]) -> Result<()> {
        let (needed, _) = required_capabilities(&prepared.template);
        let missing: Vec<&str> = needed
            .iter()
            .map(|c| c.as_str())
            .filter(|c| {
                !given
                    .iter()
                    .any(|g| g == c || (*c == "CAPABILITY_IAM" && g == "CAPABILITY_NAMED_IAM"))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DeployError::InsufficientCapabilities(format!(
                "Requires capabilities : [{}]",
                missing.join(", ")
            )))
        }
    }

    /// Refuses a new stack past the `StacksPerAccount` quota ([`crate::DeployConfig::max_stacks`]).
    fn check_stack_quota(&self) -> Result<()> {
        let live = self
            .state()
            .stacks
            .iter()
            .filter(|s| !s.is_deleted())
            .count();
        if live >= self.config().max_stacks {
            return Err(DeployError::LimitExceeded(
                "Limit for stacks has been exceeded".into(),
            ));
        }
        Ok(())
    }

    fn new_stack(&self, input: &StackInput, status: &str) -> Stack {
        let now = now_ms();
        Stack {
            stack_id: self.arn("stack", &input.stack_name),
            stack_name: input.stack_name.clone(),
            description: None,
            status: status.to_string(),
            status_reason: None,
            creation_ms: now,
            last_updated_ms: None,
            deletion_ms: None,
            disable_rollback: input.disable_rollback,
            capabilities: input.capabilities.clone(),
            notification_arns: input.notification_arns.clone(),
            tags: input.tags.clone(),
            role_arn: input.role_arn.clone(),
            template_body: String::new(),
            processed: serde_json::Value::Null,
            parameters: Vec::new(),
            outputs: Vec::new(),
            resources: Vec::new(),
            change_set_id: None,
            operation: None,
            revision: 0,
            owner: None,
        }
    }

    fn stack_event(stack: &Stack, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.stack_name.clone(),
            logical_id: stack.stack_name.clone(),
            physical_id: Some(stack.stack_id.clone()),
            resource_type: STACK_TYPE.to_string(),
            timestamp_ms: now_ms(),
            status: status.to_string(),
            status_reason: reason.map(str::to_string),
            properties: None,
        }
    }

    fn snapshot(prepared: &Prepared) -> Snapshot {
        Snapshot {
            template_body: prepared.body.clone(),
            processed: prepared.processed(),
            parameters: prepared.stack_parameters(),
            outputs: Vec::new(),
            description: prepared.template.description.clone(),
            resources: Vec::new(),
        }
    }

    fn previous(stack: &Stack) -> Snapshot {
        Snapshot {
            template_body: stack.template_body.clone(),
            processed: stack.processed.clone(),
            parameters: stack.parameters.clone(),
            outputs: stack.outputs.clone(),
            description: stack.description.clone(),
            resources: stack.resources.clone(),
        }
    }

    /// Begins an operation on a stack whose status and operation are set: reserves the stack
    /// on this node and saves it, a compare-and-swap on the revision it was read at. When the
    /// stack changed meanwhile (another node began an operation on it first), nothing is
    /// written and the caller gets `busy`'s answer for the stack as it is now.
    async fn begin(
        &self,
        stack: &mut Stack,
        event: StackEvent,
        busy: fn(&Stack) -> DeployError,
    ) -> Result<()> {
        {
            let mut state = self.state();
            if !state.running.insert(stack.stack_id.clone()) {
                let current = state.find(&stack.stack_id).unwrap_or(&*stack).clone();
                return Err(busy(&current));
            }
        }
        match self.save(stack, vec![event]).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.state().running.remove(&stack.stack_id);
                if matches!(e, DeployError::Store(StoreError::RevisionMismatch))
                    && let Some(now) = self.reload(&stack.stack_id).await?
                {
                    return Err(busy(&now));
                }
                Err(e)
            }
        }
    }

    /// Runs a begun operation on a task and waits (up to the linger) for it to end.
    async fn launch(&self, stack: Stack) {
        let id = stack.stack_id.clone();
        self.spawn(stack, None);
        self.linger(&id).await;
    }

    /// Begins and runs an operation.
    async fn start(
        &self,
        mut stack: Stack,
        event: StackEvent,
        busy: fn(&Stack) -> DeployError,
    ) -> Result<()> {
        self.begin(&mut stack, event, busy).await?;
        self.launch(stack).await;
        Ok(())
    }

    fn updatable(stack: &Stack) -> Result<()> {
        match stack.status.as_str() {
            status::CREATE_COMPLETE
            | status::UPDATE_COMPLETE
            | status::UPDATE_ROLLBACK_COMPLETE => Ok(()),
            _ => Err(not_updatable(stack)),
        }
    }

    // ------------------------------------------------------------------ stacks

    pub async fn create_stack(&self, input: StackInput) -> Result<String> {
        check_name(&input.stack_name, "stackName")?;
        if let Some(s) = self.state().find(&input.stack_name) {
            return Err(DeployError::AlreadyExists(format!(
                "Stack [{}] already exists",
                s.stack_name
            )));
        }
        self.check_stack_quota()?;
        let body = self.template_text(&input.template, None).await?;
        let prepared = prepare(&body, &input.parameters, &[], &self.config().partition)?;
        self.check_capabilities(&prepared, &input.capabilities)?;
        let mut stack = self.new_stack(&input, status::CREATE_IN_PROGRESS);
        stack.description = prepared.template.description.clone();
        stack.operation = Some(Operation {
            kind: OperationKind::Create,
            previous: None,
            journal: Vec::new(),
            target: Some(Self::snapshot(&prepared)),
            rolling_back: false,
            cleanup: Vec::new(),
            change_set_id: None,
        });
        let event = Self::stack_event(&stack, status::CREATE_IN_PROGRESS, Some(user_initiated()));
        let id = stack.stack_id.clone();
        self.start(stack, event, already_exists).await?;
        Ok(id)
    }

    pub async fn update_stack(&self, input: StackInput) -> Result<String> {
        let mut stack = self.stack(&input.stack_name)?;
        Self::updatable(&stack)?;
        let body = self.template_text(&input.template, Some(&stack)).await?;
        let prepared = prepare(
            &body,
            &input.parameters,
            &stack.parameters,
            &self.config().partition,
        )?;
        self.check_capabilities(&prepared, &input.capabilities)?;
        let changes = self.plan(&stack, &prepared)?;
        if changes.is_empty() && !self.differs(&stack, &prepared) {
            return Err(DeployError::Validation(
                "No updates are to be performed.".into(),
            ));
        }
        stack.operation = Some(Operation {
            kind: OperationKind::Update,
            previous: Some(Self::previous(&stack)),
            journal: Vec::new(),
            target: Some(Self::snapshot(&prepared)),
            rolling_back: false,
            cleanup: Vec::new(),
            change_set_id: None,
        });
        if !input.capabilities.is_empty() {
            stack.capabilities = input.capabilities.clone();
        }
        stack.status = status::UPDATE_IN_PROGRESS.to_string();
        stack.status_reason = Some(user_initiated().to_string());
        let event = Self::stack_event(&stack, status::UPDATE_IN_PROGRESS, Some(user_initiated()));
        let id = stack.stack_id.clone();
        self.start(stack, event, not_updatable).await?;
        Ok(id)
    }

    pub async fn delete_stack(&self, name_or_id: &str) -> Result<()> {
        let Some(mut stack) = self.state().find(name_or_id).cloned() else {
            return Ok(());
        };
        if stack.is_deleted() {
            return Ok(());
        }
        if stack.status == status::DELETE_IN_PROGRESS {
            self.linger(&stack.stack_id).await;
            return Ok(());
        }
        if stack.is_busy() {
            return Err(not_deletable(&stack));
        }
        stack.status = status::DELETE_IN_PROGRESS.to_string();
        stack.status_reason = Some(user_initiated().to_string());
        stack.operation = Some(Operation {
            kind: OperationKind::Delete,
            previous: None,
            journal: Vec::new(),
            target: None,
            rolling_back: false,
            cleanup: Vec::new(),
            change_set_id: None,
        });
        let event = Self::stack_event(&stack, status::DELETE_IN_PROGRESS, Some(user_initiated()));
        self.start(stack, event, not_deletable).await
    }

    /// DescribeStacks: one stack (deleted ones by id), or every live stack.
    pub fn describe_stacks(&self, name_or_id: Option<&str>) -> Result<Vec<Stack>> {
        match name_or_id {
            Some(n) => Ok(vec![self.stack(n)?]),
            None => Ok(self
                .state()
                .stacks
                .iter()
                .filter(|s| !s.is_deleted())
                .cloned()
                .collect()),
        }
    }

    /// ListStacks: every stack (deleted ones too), newest first, filtered by status.
    pub fn list_stacks(&self, filter: &[String]) -> Vec<Stack> {
        let mut out: Vec<Stack> = self
            .state()
            .stacks
            .iter()
            .filter(|s| filter.is_empty() || filter.contains(&s.status))
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// DescribeStackEvents: newest first.
    pub async fn describe_stack_events(&self, name_or_id: &str) -> Result<Vec<StackEvent>> {
        let stack = self.stack(name_or_id)?;
        let mut events = self.events_of(&stack.stack_id).await?;
        events.reverse();
        Ok(events)
    }

    /// The stack's resources (those deleted during a rollback are not listed).
    pub fn stack_resources(&self, name_or_id: &str) -> Result<(Stack, Vec<StackResource>)> {
        let stack = self.stack(name_or_id)?;
        let list = stack.resources.clone();
        Ok((stack, list))
    }

    pub fn stack_resource(
        &self,
        name_or_id: &str,
        logical_id: &str,
    ) -> Result<(Stack, StackResource)> {
        let stack = self.stack(name_or_id)?;
        let res = stack.resource(logical_id).cloned().ok_or_else(|| {
            DeployError::Validation(format!(
                "Resource {logical_id} does not exist for stack {}",
                stack.stack_name
            ))
        })?;
        Ok((stack, res))
    }

    /// The stack that holds a physical resource.
    pub fn stack_of_physical(&self, physical_id: &str) -> Result<Stack> {
        self.state()
            .stacks
            .iter()
            .rev()
            .find(|s| {
                s.resources
                    .iter()
                    .any(|r| r.physical_id.as_deref() == Some(physical_id))
            })
            .cloned()
            .ok_or_else(|| {
                DeployError::Validation(format!("Stack for {physical_id} does not exist"))
            })
    }

    /// GetTemplate: the original body or the processed JSON of a stack or change set.
    pub async fn get_template(
        &self,
        stack: Option<&str>,
        change_set: Option<&str>,
        processed: bool,
    ) -> Result<String> {
        let (body, doc) = match change_set {
            Some(cs) => {
                let cs = self.change_set(cs, stack).await?;
                (cs.template_body, cs.processed)
            }
            None => {
                let name = stack.ok_or_else(|| {
                    DeployError::Validation("StackName or ChangeSetName is required".into())
                })?;
                let s = self.stack(name)?;
                if s.is_deleted() {
                    // Kept in the store only (as CloudFormation keeps it for 90 days).
                    return self.deleted_template(&s.stack_id).await;
                }
                (s.template_body, s.processed)
            }
        };
        if processed && !doc.is_null() {
            Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
        } else {
            Ok(body)
        }
    }

    /// The original template of a deleted stack, from the store (memory keeps only its
    /// summary).
    async fn deleted_template(&self, stack_id: &str) -> Result<String> {
        let store = Arc::clone(&self.inner.store);
        let ids = vec![stack_id.to_string()];
        let rows = crate::engine::blocking(move || store.stacks_by_id(&ids)).await?;
        let row = rows.into_iter().next().ok_or_else(|| no_stack(stack_id))?;
        let stack: Stack = serde_json::from_str(&row.document).map_err(|e| {
            DeployError::Internal(format!("stack record {stack_id} unreadable: {e}"))
        })?;
        Ok(stack.template_body)
    }

    /// ValidateTemplate / GetTemplateSummary.
    pub async fn template_summary(
        &self,
        template: &TemplateInput,
        stack: Option<&str>,
    ) -> Result<TemplateSummary> {
        let body = match stack {
            Some(name) if template.body.is_none() && template.url.is_none() => {
                let s = self.stack(name)?;
                if s.is_deleted() {
                    self.deleted_template(&s.stack_id).await?
                } else {
                    s.template_body
                }
            }
            _ => self.template_text(template, None).await?,
        };
        let document = kindling_cfn_template::parse_document(&body)?;
        let declarations = kindling_cfn_template::parameter_declarations(&document)?;
        let transforms = kindling_cfn_template::template::declared_transforms(&document)?;
        let mut summary = TemplateSummary {
            description: document
                .get("Description")
                .and_then(|d| d.as_str())
                .map(str::to_string),
            version: document
                .get("AWSTemplateFormatVersion")
                .and_then(|d| d.as_str())
                .map(str::to_string),
            declared_transforms: transforms.clone(),
            ..TemplateSummary::default()
        };
        for (k, d) in &declarations {
            summary.parameters.push(SummaryParameter {
                key: k.clone(),
                parameter_type: d.parameter_type.name().to_string(),
                default: d.default.clone(),
                no_echo: d.no_echo,
                description: d.description.clone(),
                allowed_values: d.allowed_values.clone(),
            });
        }
        if let Some(resources) = document.get("Resources").and_then(|r| r.as_object()) {
            for r in resources.values() {
                if let Some(t) = r.get("Type").and_then(|t| t.as_str())
                    && !summary.resource_types.iter().any(|x| x == t)
                {
                    summary.resource_types.push(t.to_string());
                }
            }
        }
        // Capabilities are judged on the processed template (defaults for the parameters).
        let inputs: Vec<ParameterInput> = Vec::new();
        if let Ok(p) = prepare(&body, &inputs, &[], &self.config().partition) {
            let (caps, reason) = required_capabilities(&p.template);
            summary.capabilities = caps.iter().map(|c| c.as_str().to_string()).collect();
            summary.capabilities_reason = reason;
        } else if transforms.is_empty() {
            // Surface template errors as ValidateTemplate does (parameters without defaults
            // are fine: only the structure is checked).
            let t = kindling_cfn_template::Template::from_value(document)?;
            kindling_cfn_template::validate_template(&t)?;
        }
        if !transforms.is_empty() {
            summary
                .capabilities
                .push("CAPABILITY_AUTO_EXPAND".to_string());
            summary.capabilities_reason.get_or_insert_with(|| {
                "The following resource(s) require capabilities: [AWS::Serverless-2016-10-31]"
                    .to_string()
            });
        }
        Ok(summary)
    }

    /// ListExports.
    pub fn list_exports(&self) -> Vec<(String, String, String)> {
        self.state()
            .stacks
            .iter()
            .filter(|s| !s.is_deleted())
            .flat_map(|s| {
                s.outputs.iter().filter_map(|o| {
                    o.export_name
                        .clone()
                        .map(|n| (s.stack_id.clone(), n, o.value.clone()))
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------ change sets

    /// The planned changes from the stack as deployed to `prepared`.
    fn plan(&self, stack: &Stack, prepared: &Prepared) -> Result<Vec<Change>> {
        let surroundings = Surroundings::new(
            &self.config().account_id,
            &self.config().region,
            &stack.stack_name,
            &stack.stack_id,
            self.exports_except(&stack.stack_id),
        );
        let ev = surroundings.evaluator(&prepared.template, &prepared.parameters)?;
        let known = resolver(stack);
        let nothing = NothingKnown;
        let res: &dyn ResourceResolver = if stack.resources.is_empty() {
            &nothing
        } else {
            &known
        };
        let mut planned = Vec::new();
        for id in ev.active_resources() {
            let Some(decl) = prepared.template.resources.get(id) else {
                continue;
            };
            planned.push(PlannedResource {
                logical_id: id.to_string(),
                resource_type: decl.resource_type.clone(),
                properties: ev.resource_properties(id, res, EvalMode::Preview)?,
                metadata: decl.metadata.clone(),
            });
        }
        let deployed: Vec<DeployedResource> = stack
            .resources
            .iter()
            .filter(|r| r.status != status::DELETE_COMPLETE && r.physical_id.is_some())
            .map(|r| DeployedResource {
                logical_id: r.logical_id.clone(),
                resource_type: r.resource_type.clone(),
                physical_id: r.physical_id.clone(),
                properties: r.properties.clone(),
                metadata: r.metadata.clone(),
            })
            .collect();
        let changes = plan_changes(&deployed, &planned)?;
        Ok(changes
            .into_iter()
            .map(|c| Change {
                action: c.action.as_str().to_string(),
                logical_id: c.logical_id,
                physical_id: c.physical_id,
                resource_type: c.resource_type,
                replacement: c.replacement.map(|r| r.as_str().to_string()),
                scope: c.scope.iter().map(|s| (*s).to_string()).collect(),
                details: c
                    .details
                    .into_iter()
                    .map(|d| ChangeDetailRecord {
                        attribute: d.attribute.to_string(),
                        name: d.name,
                        requires_recreation: d.requires_recreation.as_str().to_string(),
                        evaluation: d.evaluation.to_string(),
                        change_source: d.change_source.to_string(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Whether anything besides resources changes (outputs, parameters, description).
    fn differs(&self, stack: &Stack, prepared: &Prepared) -> bool {
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("Resources");
                o.remove("Metadata");
            }
            v
        };
        strip(&stack.processed) != strip(&prepared.processed())
            || stack.parameters != prepared.stack_parameters()
    }

    pub async fn create_change_set(&self, input: ChangeSetInput) -> Result<(String, String)> {
        check_name(&input.stack.stack_name, "stackName")?;
        check_name(&input.change_set_name, "changeSetName")?;
        let kind = input
            .change_set_type
            .clone()
            .unwrap_or_else(|| "UPDATE".to_string());
        let existing = self.state().find(&input.stack.stack_name).cloned();
        if let Some(s) = &existing
            && self
                .change_sets_of(&s.stack_id)
                .await?
                .iter()
                .any(|c| c.change_set_name == input.change_set_name)
        {
            return Err(DeployError::AlreadyExists(format!(
                "ChangeSet {} already exists",
                input.change_set_name
            )));
        }
        match (kind.as_str(), &existing) {
            ("CREATE", Some(s)) if s.status != status::REVIEW_IN_PROGRESS => {
                return Err(DeployError::Validation(format!(
                    "Stack [{}] already exists and cannot be created again with the changeSet [{}].",
                    s.stack_name, input.change_set_name
                )));
            }
            ("UPDATE", None) => {
                return Err(DeployError::Validation(format!(
                    "Stack [{}] does not exist",
                    input.stack.stack_name
                )));
            }
            ("UPDATE", Some(s)) if s.status == status::REVIEW_IN_PROGRESS => {
                return Err(DeployError::Validation(format!(
                    "Stack [{}] does not exist",
                    input.stack.stack_name
                )));
            }
            ("UPDATE", Some(s)) => Self::updatable(s)?,
            ("CREATE", _) => {}
            ("IMPORT", _) => {
                return Err(DeployError::Validation(
                    "Kindling does not support resource import change sets".into(),
                ));
            }
            (other, _) => {
                return Err(DeployError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'changeSetType' failed to satisfy constraint: Member must satisfy enum value set: [UPDATE, IMPORT, CREATE]"
                )));
            }
        }
        let body = self
            .template_text(&input.stack.template, existing.as_ref())
            .await?;
        let previous = existing
            .as_ref()
            .map(|s| s.parameters.clone())
            .unwrap_or_default();
        let prepared = prepare(
            &body,
            &input.stack.parameters,
            &previous,
            &self.config().partition,
        )?;
        self.check_capabilities(&prepared, &input.stack.capabilities)?;
        let stack = match existing {
            Some(s) => s,
            None => {
                self.check_stack_quota()?;
                let mut s = self.new_stack(&input.stack, status::REVIEW_IN_PROGRESS);
                let event =
                    Self::stack_event(&s, status::REVIEW_IN_PROGRESS, Some(user_initiated()));
                self.save(&mut s, vec![event]).await?;
                s
            }
        };
        let changes = self.plan(&stack, &prepared)?;
        let no_changes = kind == "UPDATE" && changes.is_empty() && !self.differs(&stack, &prepared);
        let cs = ChangeSet {
            change_set_id: self.arn("changeSet", &input.change_set_name),
            change_set_name: input.change_set_name.clone(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.stack_name.clone(),
            change_set_type: kind,
            description: input.description.clone(),
            status: if no_changes {
                status::CS_FAILED
            } else {
                status::CS_CREATE_COMPLETE
            }
            .to_string(),
            status_reason: no_changes.then(|| NO_CHANGES_REASON.to_string()),
            execution_status: if no_changes {
                status::EXEC_UNAVAILABLE
            } else {
                status::EXEC_AVAILABLE
            }
            .to_string(),
            creation_ms: now_ms(),
            template_body: prepared.body.clone(),
            processed: prepared.processed(),
            parameters: prepared.stack_parameters(),
            capabilities: input.stack.capabilities.clone(),
            tags: input.stack.tags.clone(),
            notification_arns: input.stack.notification_arns.clone(),
            role_arn: input.stack.role_arn.clone(),
            disable_rollback: input.stack.disable_rollback,
            changes,
        };
        self.save_change_set(&cs).await?;
        Ok((cs.change_set_id, stack.stack_id))
    }

    /// A change set by ARN, or by name within a stack.
    pub async fn change_set(&self, name_or_arn: &str, stack: Option<&str>) -> Result<ChangeSet> {
        let found = if name_or_arn.starts_with("arn:") {
            self.change_set_by_id(name_or_arn).await?
        } else {
            let stack = stack.and_then(|s| self.state().find(s).map(|s| s.stack_id.clone()));
            match stack {
                Some(id) => self
                    .change_sets_of(&id)
                    .await?
                    .into_iter()
                    .find(|c| c.change_set_name == name_or_arn),
                None => None,
            }
        };
        found.ok_or_else(|| {
            DeployError::ChangeSetNotFound(format!("ChangeSet [{name_or_arn}] does not exist"))
        })
    }

    pub async fn list_change_sets(&self, stack: &str) -> Result<Vec<ChangeSet>> {
        let s = self.stack(stack)?;
        self.change_sets_of(&s.stack_id).await
    }

    pub async fn delete_change_set(&self, name_or_arn: &str, stack: Option<&str>) -> Result<()> {
        let cs = self.change_set(name_or_arn, stack).await?;
        if cs.execution_status == status::EXEC_IN_PROGRESS {
            return Err(DeployError::InvalidChangeSetStatus(format!(
                "Cannot delete ChangeSet [{}] in its current status of [{}]",
                cs.change_set_id, cs.execution_status
            )));
        }
        self.forget_change_set(&cs.change_set_id).await?;
        // A stack that only ever had change sets goes with its last one.
        let stack = self.state().find(&cs.stack_id).cloned();
        if let Some(mut s) = stack
            && s.status == status::REVIEW_IN_PROGRESS
            && self.change_sets_of(&s.stack_id).await?.is_empty()
        {
            s.status = status::DELETE_COMPLETE.to_string();
            s.deletion_ms = Some(now_ms());
            let event = Self::stack_event(&s, status::DELETE_COMPLETE, None);
            self.save(&mut s, vec![event]).await?;
        }
        Ok(())
    }

    pub async fn execute_change_set(&self, name_or_arn: &str, stack: Option<&str>) -> Result<()> {
        let mut cs = self.change_set(name_or_arn, stack).await?;
        if cs.status != status::CS_CREATE_COMPLETE || cs.execution_status != status::EXEC_AVAILABLE
        {
            return Err(DeployError::InvalidChangeSetStatus(format!(
                "ChangeSet [{}] cannot be executed in its current execution status of [{}]",
                cs.change_set_id, cs.execution_status
            )));
        }
        let mut stack = self.stack(&cs.stack_id)?;
        if stack.is_busy() {
            return Err(busy_for_change_set(&stack));
        }
        let create = stack.status == status::REVIEW_IN_PROGRESS;
        let target = Snapshot {
            template_body: cs.template_body.clone(),
            processed: cs.processed.clone(),
            parameters: cs.parameters.clone(),
            outputs: Vec::new(),
            description: cs
                .processed
                .get("Description")
                .and_then(|d| d.as_str())
                .map(str::to_string),
            resources: Vec::new(),
        };
        stack.operation = Some(Operation {
            kind: if create {
                OperationKind::Create
            } else {
                OperationKind::Update
            },
            previous: (!create).then(|| Self::previous(&stack)),
            journal: Vec::new(),
            target: Some(target),
            rolling_back: false,
            cleanup: Vec::new(),
            change_set_id: Some(cs.change_set_id.clone()),
        });
        let st = if create {
            status::CREATE_IN_PROGRESS
        } else {
            status::UPDATE_IN_PROGRESS
        };
        stack.status = st.to_string();
        stack.status_reason = Some(user_initiated().to_string());
        stack.capabilities.clone_from(&cs.capabilities);
        stack.notification_arns.clone_from(&cs.notification_arns);
        if !cs.tags.is_empty() {
            stack.tags.clone_from(&cs.tags);
        }
        stack.disable_rollback = cs.disable_rollback;
        stack.change_set_id = Some(cs.change_set_id.clone());
        if create {
            stack.description.clone_from(
                &cs.processed
                    .get("Description")
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
            );
        }
        // The stack first: of two nodes executing change sets of one stack at once, one wins.
        let event = Self::stack_event(&stack, st, Some(user_initiated()));
        self.begin(&mut stack, event, busy_for_change_set).await?;
        cs.execution_status = status::EXEC_IN_PROGRESS.to_string();
        let marked = self.save_change_set(&cs).await;
        let others = match marked {
            Ok(()) => self.change_sets_of(&cs.stack_id).await,
            Err(e) => Err(e),
        };
        let mut failed = others.as_ref().err().map(|e| e.to_string());
        for mut other in others.unwrap_or_default() {
            if other.change_set_id != cs.change_set_id
                && other.execution_status == status::EXEC_AVAILABLE
                && failed.is_none()
            {
                other.execution_status = status::EXEC_OBSOLETE.to_string();
                if let Err(e) = self.save_change_set(&other).await {
                    failed = Some(e.to_string());
                }
            }
        }
        if let Some(e) = failed {
            // The operation is begun: it runs anyway (its end marks the change set).
            tracing::warn!(error = %e, "could not mark the stack's change sets");
        }
        self.launch(stack).await;
        Ok(())
    }

    pub(crate) async fn mark_change_set(&self, id: &str, execution_status: &str) -> Result<()> {
        if let Some(mut cs) = self.change_set_by_id(id).await? {
            cs.execution_status = execution_status.to_string();
            self.save_change_set(&cs).await?;
        }
        Ok(())
    }

    pub(crate) async fn drop_change_sets(&self, stack_id: &str) -> Result<()> {
        for cs in self.change_sets_of(stack_id).await? {
            self.forget_change_set(&cs.change_set_id).await?;
        }
        Ok(())
    }
}

/// A stack busy with an operation, to UpdateStack (and CreateChangeSet of type UPDATE).
fn not_updatable(stack: &Stack) -> DeployError {
    DeployError::Validation(format!(
        "Stack:{} is in {} state and can not be updated.",
        stack.stack_id, stack.status
    ))
}

/// A stack busy with an operation, to DeleteStack.
fn not_deletable(stack: &Stack) -> DeployError {
    DeployError::Validation(format!(
        "Stack [{}] cannot be deleted while in status {}",
        stack.stack_name, stack.status
    ))
}

/// A stack busy with an operation, to ExecuteChangeSet.
fn busy_for_change_set(stack: &Stack) -> DeployError {
    DeployError::InvalidChangeSetStatus(format!(
        "ChangeSet cannot be executed while the stack [{}] is in {}",
        stack.stack_name, stack.status
    ))
}

/// A new stack whose name another node took first.
fn already_exists(stack: &Stack) -> DeployError {
    DeployError::AlreadyExists(format!("Stack [{}] already exists", stack.stack_name))
}

/// Parameters as DescribeStacks shows them (NoEcho values masked).
pub fn shown_parameters(params: &[StackParameter]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|p| {
            (
                p.key.clone(),
                if p.no_echo {
                    MASKED_VALUE.to_string()
                } else {
                    p.value.clone()
                },
            )
        })
        .collect()
}
