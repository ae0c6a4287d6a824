//! Running a stack operation: create, update (with cleanup) and delete, each resource in
//! dependency order, and their rollbacks. Every step is written (with its events) before
//! the handler runs and again after, so a crash leaves a journal that says what to undo.

use std::collections::HashSet;

use kindling_cfn_template::{
    DependencyGraph, EvalMode, MapResolver, RetentionPolicy, Template, types,
};
use serde_json::{Map, Value};

use crate::engine::{Deployer, now_ms};
use crate::error::Result;
use crate::model::{OperationKind, Stack, StackEvent, StackResource, Step, StepAction, status};
use crate::prepare::{Surroundings, reload};
use crate::provider::ResourceContext;

pub(crate) const STACK_TYPE: &str = "AWS::CloudFormation::Stack";
const USER_INITIATED: &str = "User Initiated";
const IN_PLACE_REASON: &str =
    "Requested update requires the creation of a new physical resource; hence creating one.";

/// Runs (or, `resumed` after its run was interrupted, with the reason, recovers) the stack's
/// operation to its end.
pub(crate) async fn run(d: &Deployer, stack: Stack, resumed: Option<String>) -> Result<()> {
    let Some(op) = stack.operation.clone() else {
        return Ok(());
    };
    let mut r = Runner {
        d,
        stack,
        pending: Vec::new(),
        active: HashSet::new(),
        shifting: std::collections::HashMap::new(),
    };
    let interrupted = resumed.clone().unwrap_or_default();
    let resumed = resumed.is_some();
    if resumed {
        // Exports of stacks other nodes changed meanwhile.
        d.sync().await?;
    }
    match op.kind {
        OperationKind::Delete => r.delete().await,
        OperationKind::Create => {
            if resumed && !op.rolling_back {
                r.fail_create(interrupted).await
            } else if op.rolling_back {
                r.rollback_create().await
            } else {
                r.create().await
            }
        }
        OperationKind::Update => match r.stack.status.as_str() {
            status::UPDATE_COMPLETE_CLEANUP_IN_PROGRESS => r.finish_update().await,
            status::UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS => {
                r.finish_update_rollback().await
            }
            _ if op.rolling_back => r.rollback_update().await,
            _ if resumed => r.fail_update(interrupted).await,
            _ => r.update().await,
        },
    }
}

/// A generated physical name: `{stack}-{logical id}-{13 random}` (handlers shorten or
/// lowercase it to their service's rules).
pub(crate) fn physical_name(stack: &str, logical_id: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let suffix: String = (0..13)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    format!("{stack}-{logical_id}-{suffix}")
}

/// Scalars compare by their text (CloudFormation passes `5` and `"5"` alike).
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::String(x), Value::Number(n)) | (Value::Number(n), Value::String(x)) => {
            *x == n.to_string()
        }
        (Value::String(x), Value::Bool(t)) | (Value::Bool(t), Value::String(x)) => {
            *x == t.to_string()
        }
        _ => a == b,
    }
}

pub(crate) fn resolver(stack: &Stack) -> MapResolver {
    let mut m = MapResolver::default();
    for r in &stack.resources {
        if r.status == status::DELETE_COMPLETE || r.physical_id.is_none() {
            continue;
        }
        if let Some(v) = &r.ref_value {
            m.refs.insert(r.logical_id.clone(), v.clone());
        }
        for (k, v) in &r.attributes {
            m.attributes
                .insert((r.logical_id.clone(), k.clone()), v.clone());
        }
    }
    m
}

struct Runner<'a> {
    d: &'a Deployer,
    stack: Stack,
    pending: Vec<StackEvent>,
    /// The new template's resources whose condition holds (set by `apply_target`).
    active: HashSet<String>,
    /// Aliases of the new template that shift traffic (SAM's `DeploymentPreference`).
    shifting: std::collections::HashMap<String, kindling_cfn_template::TrafficShifting>,
}

/// A failed step: the resource and the reason.
struct Failed {
    logical_id: String,
    verb: &'static str,
}

impl Runner<'_> {
    fn event(
        &mut self,
        logical_id: &str,
        physical_id: Option<&str>,
        resource_type: &str,
        status: &str,
        reason: Option<&str>,
        properties: Option<&Map<String, Value>>,
    ) {
        self.pending.push(StackEvent {
            event_id: format!("{logical_id}-{status}-{}", uuid::Uuid::new_v4()),
            stack_id: self.stack.stack_id.clone(),
            stack_name: self.stack.stack_name.clone(),
            logical_id: logical_id.to_string(),
            physical_id: physical_id.map(str::to_string),
            resource_type: resource_type.to_string(),
            timestamp_ms: now_ms(),
            status: status.to_string(),
            status_reason: reason.map(str::to_string),
            properties: properties.map(|p| Value::Object(p.clone()).to_string()),
        });
    }

    /// Sets the stack's status with its event.
    fn stack_status(&mut self, status: &str, reason: Option<String>) {
        self.stack.status = status.to_string();
        self.stack.status_reason.clone_from(&reason);
        let (name, id) = (self.stack.stack_name.clone(), self.stack.stack_id.clone());
        self.event(
            &name,
            Some(&id),
            STACK_TYPE,
            status,
            reason.as_deref(),
            None,
        );
    }

    async fn flush(&mut self) -> Result<()> {
        let events = std::mem::take(&mut self.pending);
        self.d.save(&mut self.stack, events).await
    }

    fn ctx(&self, logical_id: &str, resource_type: &str, name: String) -> ResourceContext {
        ResourceContext {
            stack_name: self.stack.stack_name.clone(),
            stack_id: self.stack.stack_id.clone(),
            logical_id: logical_id.to_string(),
            resource_type: resource_type.to_string(),
            physical_name: name,
            traffic_shifting: self.shifting.get(logical_id).cloned(),
        }
    }

    fn surroundings(&self) -> Surroundings {
        let exports = self.d.exports_except(&self.stack.stack_id);
        let c = self.d.config();
        Surroundings::new(
            &c.account_id,
            &c.region,
            &self.stack.stack_name,
            &self.stack.stack_id,
            exports,
        )
    }

    fn journal(&mut self) -> &mut Vec<Step> {
        &mut self
            .stack
            .operation
            .get_or_insert_with(empty_operation)
            .journal
    }

    // ------------------------------------------------------------------ create

    async fn create(&mut self) -> Result<()> {
        match self.apply_target().await? {
            Ok(()) => {
                self.stack_status(status::CREATE_COMPLETE, None);
                self.finish_operation(true).await
            }
            Err(failed) => {
                let reason = if failed.logical_id == self.stack.stack_name {
                    self.stack.status_reason.clone().unwrap_or_default()
                } else {
                    format!(
                        "The following resource(s) failed to {}: [{}]. Rollback requested by user.",
                        failed.verb, failed.logical_id
                    )
                };
                self.fail_create(reason).await
            }
        }
    }

    async fn fail_create(&mut self, reason: String) -> Result<()> {
        if self.stack.disable_rollback {
            self.stack_status(status::CREATE_FAILED, Some(reason));
            return self.finish_operation(false).await;
        }
        if let Some(op) = &mut self.stack.operation {
            op.rolling_back = true;
        }
        self.stack_status(status::ROLLBACK_IN_PROGRESS, Some(reason));
        self.flush().await?;
        self.rollback_create().await
    }

    async fn rollback_create(&mut self) -> Result<()> {
        let mut failed = Vec::new();
        while let Some(step) = self.journal().last().cloned() {
            if let Err(id) = self.undo_create(&step, false).await? {
                failed.push(id);
            }
            self.journal().pop();
            self.flush().await?;
        }
        if failed.is_empty() {
            self.stack_status(status::ROLLBACK_COMPLETE, None);
        } else {
            self.stack_status(
                status::ROLLBACK_FAILED,
                Some(format!(
                    "The following resource(s) failed to delete: [{}]. ",
                    failed.join(", ")
                )),
            );
        }
        self.finish_operation(false).await
    }

    /// Creates or updates every resource of the operation's target; `Err` names the resource
    /// that failed (its status and reason are recorded).
    async fn apply_target(&mut self) -> Result<std::result::Result<(), Failed>> {
        let r = self.apply_target_resources().await;
        // Rollbacks and cleanups move aliases at once, as CodeDeploy's rollback does.
        self.shifting.clear();
        r
    }

    async fn apply_target_resources(&mut self) -> Result<std::result::Result<(), Failed>> {
        let Some(target) = self.stack.operation.as_ref().and_then(|o| o.target.clone()) else {
            return Ok(Ok(()));
        };
        let (template, params) = match reload(&target.processed, &target.parameters) {
            Ok(t) => t,
            Err(e) => return Ok(Err(self.stack_failure(e.to_string()))),
        };
        let surroundings = self.surroundings();
        let ev = match surroundings.evaluator(&template, &params) {
            Ok(ev) => ev,
            Err(e) => return Ok(Err(self.stack_failure(e.to_string()))),
        };
        let graph = match DependencyGraph::build(&template, ev.conditions()) {
            Ok(g) => g,
            Err(e) => return Ok(Err(self.stack_failure(e.to_string()))),
        };
        let order = graph.creation_order();
        self.active = order.iter().cloned().collect();
        self.shifting = template
            .resources
            .iter()
            .filter(|(_, r)| r.resource_type == "AWS::Lambda::Alias")
            .filter_map(|(id, _)| {
                kindling_cfn_template::traffic_shifting(&template, id).map(|t| (id.clone(), t))
            })
            .collect();
        for id in order {
            let Some(decl) = template.resources.get(&id) else {
                continue;
            };
            let props = match ev.resource_properties(&id, &resolver(&self.stack), EvalMode::Apply) {
                Ok(p) => p,
                Err(e) => {
                    let verb = if self.live(&id).is_some() {
                        "update"
                    } else {
                        "create"
                    };
                    self.record_failure(&id, &decl.resource_type, verb, &e.to_string());
                    self.flush().await?;
                    return Ok(Err(Failed {
                        logical_id: id,
                        verb,
                    }));
                }
            };
            let retain = matches!(
                decl.deletion_policy,
                RetentionPolicy::Retain | RetentionPolicy::RetainExceptOnCreate
            );
            let outcome = match self.live(&id).cloned() {
                None => {
                    self.create_resource(
                        &id,
                        &decl.resource_type,
                        props,
                        retain,
                        decl.metadata.clone(),
                        None,
                    )
                    .await?
                }
                Some(old) => {
                    let replace = old.resource_type != decl.resource_type
                        || self.needs_replacement(&old, &props);
                    if replace {
                        self.create_resource(
                            &id,
                            &decl.resource_type,
                            props,
                            retain,
                            decl.metadata.clone(),
                            Some(old),
                        )
                        .await?
                    } else if same(
                        &Value::Object(old.properties.clone()),
                        &Value::Object(props.clone()),
                    ) {
                        if let Some(r) = self.stack.resource_mut(&id) {
                            r.retain = retain;
                            r.metadata.clone_from(&decl.metadata);
                        }
                        Ok(())
                    } else {
                        self.update_resource(&old, props, retain, decl.metadata.clone())
                            .await?
                    }
                }
            };
            if let Err(verb) = outcome {
                return Ok(Err(Failed {
                    logical_id: id,
                    verb,
                }));
            }
        }
        match ev.outputs(&resolver(&self.stack), EvalMode::Apply) {
            Ok(outputs) => {
                if let Some(t) = self
                    .stack
                    .operation
                    .as_mut()
                    .and_then(|o| o.target.as_mut())
                {
                    t.outputs = outputs
                        .into_iter()
                        .map(|o| crate::model::StackOutput {
                            key: o.key,
                            value: o.value,
                            description: o.description,
                            export_name: o.export_name,
                        })
                        .collect();
                }
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(self.stack_failure(e.to_string()))),
        }
    }

    /// A failure of the stack as a whole (template evaluation).
    fn stack_failure(&mut self, reason: String) -> Failed {
        let name = self.stack.stack_name.clone();
        self.stack.status_reason = Some(reason);
        Failed {
            logical_id: name,
            verb: "create",
        }
    }

    fn live(&self, logical_id: &str) -> Option<&StackResource> {
        self.stack
            .resource(logical_id)
            .filter(|r| r.status != status::DELETE_COMPLETE && r.physical_id.is_some())
    }

    fn needs_replacement(&self, old: &StackResource, new: &Map<String, Value>) -> bool {
        let spec = types::resource_type(&old.resource_type);
        let listed = spec.is_some_and(|s| {
            s.replace_on_change.iter().any(|p| {
                let (a, b) = (old.properties.get(*p), new.get(*p));
                match (a, b) {
                    (None, None) => false,
                    (Some(a), Some(b)) => !same(a, b),
                    _ => true,
                }
            })
        });
        listed
            || self
                .d
                .inner
                .provider
                .requires_replacement(&old.resource_type, &old.properties, new)
    }

    fn record_failure(&mut self, id: &str, rtype: &str, verb: &str, reason: &str) {
        let st = if verb == "update" {
            status::UPDATE_FAILED
        } else {
            status::CREATE_FAILED
        };
        let physical = self.stack.resource(id).and_then(|r| r.physical_id.clone());
        if let Some(r) = self.stack.resource_mut(id) {
            r.status = st.to_string();
            r.status_reason = Some(reason.to_string());
            r.last_updated_ms = now_ms();
        }
        self.event(id, physical.as_deref(), rtype, st, Some(reason), None);
    }

    /// Creates a resource (or its replacement); `Err(verb)` when it failed.
    async fn create_resource(
        &mut self,
        id: &str,
        rtype: &str,
        props: Map<String, Value>,
        retain: bool,
        metadata: Option<Value>,
        replacing: Option<StackResource>,
    ) -> Result<std::result::Result<(), &'static str>> {
        let provider = std::sync::Arc::clone(&self.d.inner.provider);
        let (in_progress, complete, failed_status, verb) = if replacing.is_some() {
            (
                status::UPDATE_IN_PROGRESS,
                status::UPDATE_COMPLETE,
                status::UPDATE_FAILED,
                "update",
            )
        } else {
            (
                status::CREATE_IN_PROGRESS,
                status::CREATE_COMPLETE,
                status::CREATE_FAILED,
                "create",
            )
        };
        let ctx = self.ctx(id, rtype, physical_name(&self.stack.stack_name, id));
        let record = StackResource {
            logical_id: id.to_string(),
            resource_type: rtype.to_string(),
            physical_id: None,
            status: in_progress.to_string(),
            status_reason: None,
            last_updated_ms: now_ms(),
            properties: props.clone(),
            ref_value: None,
            attributes: Map::new(),
            retain,
            metadata,
        };
        if !provider.supports(rtype) {
            let reason =
                format!("Resource type {rtype} is not supported by Kindling (resource {id})");
            self.stack.put_resource(StackResource {
                status: failed_status.to_string(),
                status_reason: Some(reason.clone()),
                ..record
            });
            self.event(id, None, rtype, failed_status, Some(&reason), None);
            self.flush().await?;
            return Ok(Err(verb));
        }
        let expected = provider.expected_physical_id(&ctx, &props);
        let action = match &replacing {
            Some(old) => StepAction::Replace {
                old: Box::new(old.clone()),
            },
            None => StepAction::Create,
        };
        self.journal().push(Step {
            logical_id: id.to_string(),
            action,
            expected,
            done: false,
        });
        self.stack.put_resource(record);
        let old_physical = replacing.as_ref().and_then(|o| o.physical_id.clone());
        self.event(
            id,
            old_physical.as_deref(),
            rtype,
            in_progress,
            replacing.as_ref().map(|_| IN_PLACE_REASON),
            Some(&props),
        );
        self.flush().await?;
        match provider.create(&ctx, &props).await {
            Ok(p) => {
                if let Some(r) = self.stack.resource_mut(id) {
                    r.physical_id = Some(p.physical_id.clone());
                    r.ref_value = Some(p.ref_value.clone());
                    r.attributes = p.attributes.clone();
                    r.status = complete.to_string();
                    r.status_reason = p.note.clone();
                    r.last_updated_ms = now_ms();
                }
                if let Some(step) = self.journal().last_mut() {
                    step.done = true;
                }
                if replacing.is_none() {
                    self.event(
                        id,
                        Some(&p.physical_id),
                        rtype,
                        in_progress,
                        Some("Resource creation Initiated"),
                        Some(&props),
                    );
                }
                self.event(
                    id,
                    Some(&p.physical_id),
                    rtype,
                    complete,
                    p.note.as_deref(),
                    Some(&props),
                );
                self.flush().await?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.record_failure(id, rtype, verb, &e.0);
                self.flush().await?;
                Ok(Err(verb))
            }
        }
    }

    async fn update_resource(
        &mut self,
        old: &StackResource,
        props: Map<String, Value>,
        retain: bool,
        metadata: Option<Value>,
    ) -> Result<std::result::Result<(), &'static str>> {
        let provider = std::sync::Arc::clone(&self.d.inner.provider);
        let id = old.logical_id.clone();
        let rtype = old.resource_type.clone();
        let physical = old.physical_id.clone().unwrap_or_default();
        self.journal().push(Step {
            logical_id: id.clone(),
            action: StepAction::Update {
                old: Box::new(old.clone()),
            },
            expected: None,
            done: false,
        });
        if let Some(r) = self.stack.resource_mut(&id) {
            r.status = status::UPDATE_IN_PROGRESS.to_string();
            r.status_reason = None;
            r.last_updated_ms = now_ms();
        }
        self.event(
            &id,
            Some(&physical),
            &rtype,
            status::UPDATE_IN_PROGRESS,
            None,
            Some(&props),
        );
        self.flush().await?;
        let ctx = self.ctx(&id, &rtype, physical.clone());
        match provider
            .update(&ctx, &physical, &old.properties, &props)
            .await
        {
            Ok(p) => {
                if let Some(r) = self.stack.resource_mut(&id) {
                    r.properties = props.clone();
                    r.physical_id = Some(p.physical_id.clone());
                    r.ref_value = Some(p.ref_value);
                    r.attributes = p.attributes;
                    r.status = status::UPDATE_COMPLETE.to_string();
                    r.status_reason = p.note.clone();
                    r.retain = retain;
                    r.metadata = metadata;
                    r.last_updated_ms = now_ms();
                }
                if let Some(step) = self.journal().last_mut() {
                    step.done = true;
                }
                self.event(
                    &id,
                    Some(&p.physical_id),
                    &rtype,
                    status::UPDATE_COMPLETE,
                    p.note.as_deref(),
                    Some(&props),
                );
                self.flush().await?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.record_failure(&id, &rtype, "update", &e.0);
                self.flush().await?;
                Ok(Err("update"))
            }
        }
    }

    /// Undoes one create (or the new half of a replacement): deletes what it made. With
    /// `drop_record`, the resource leaves the stack; else it stays as `DELETE_COMPLETE`.
    async fn undo_create(
        &mut self,
        step: &Step,
        drop_record: bool,
    ) -> Result<std::result::Result<(), String>> {
        let id = step.logical_id.clone();
        let Some(res) = self.stack.resource(&id).cloned() else {
            return Ok(Ok(()));
        };
        let physical = res.physical_id.clone().or_else(|| step.expected.clone());
        if let Some(physical) = &physical {
            self.event(
                &id,
                Some(physical),
                &res.resource_type,
                status::DELETE_IN_PROGRESS,
                None,
                None,
            );
            self.flush().await?;
            let ctx = self.ctx(&id, &res.resource_type, physical.clone());
            let provider = std::sync::Arc::clone(&self.d.inner.provider);
            if let Err(e) = provider.delete(&ctx, physical, &res.properties).await {
                if let Some(r) = self.stack.resource_mut(&id) {
                    r.status = status::DELETE_FAILED.to_string();
                    r.status_reason = Some(e.0.clone());
                }
                self.event(
                    &id,
                    Some(physical),
                    &res.resource_type,
                    status::DELETE_FAILED,
                    Some(&e.0),
                    None,
                );
                return Ok(Err(id));
            }
        }
        self.event(
            &id,
            physical.as_deref(),
            &res.resource_type,
            status::DELETE_COMPLETE,
            None,
            None,
        );
        if drop_record {
            self.stack.resources.retain(|r| r.logical_id != id);
        } else if let Some(r) = self.stack.resource_mut(&id) {
            r.status = status::DELETE_COMPLETE.to_string();
            r.status_reason = None;
            r.last_updated_ms = now_ms();
        }
        Ok(Ok(()))
    }

    /// Ends the operation: installs the target template (on success) and clears the journal.
    async fn finish_operation(&mut self, success: bool) -> Result<()> {
        if let Some(op) = self.stack.operation.take() {
            if success && let Some(t) = op.target {
                self.stack.template_body = t.template_body;
                self.stack.processed = t.processed;
                self.stack.parameters = t.parameters;
                self.stack.outputs = t.outputs;
                self.stack.description = t.description;
            }
            if let Some(cs) = op.change_set_id {
                self.d
                    .mark_change_set(
                        &cs,
                        if success {
                            status::EXEC_COMPLETE
                        } else {
                            status::EXEC_FAILED
                        },
                    )
                    .await?;
            }
        }
        self.flush().await
    }

    // ------------------------------------------------------------------ update

    async fn update(&mut self) -> Result<()> {
        match self.apply_target().await? {
            Ok(()) => {
                self.enter_cleanup();
                self.flush().await?;
                self.finish_update().await
            }
            Err(failed) => {
                let reason = if failed.logical_id == self.stack.stack_name {
                    self.stack.status_reason.clone().unwrap_or_default()
                } else {
                    format!(
                        "The following resource(s) failed to {}: [{}]. ",
                        failed.verb, failed.logical_id
                    )
                };
                self.fail_update(reason).await
            }
        }
    }

    /// After a successful update: the new template is installed; removed resources and
    /// replaced physical resources are queued for deletion.
    fn enter_cleanup(&mut self) {
        let Some(op) = self.stack.operation.as_mut() else {
            return;
        };
        if op.target.is_none() {
            return;
        }
        let keep = self.active.clone();
        let mut cleanup = Vec::new();
        for step in op.journal.iter().rev() {
            if let StepAction::Replace { old } = &step.action {
                cleanup.push((**old).clone());
            }
        }
        let previous_order = op
            .previous
            .as_ref()
            .and_then(|p| Template::from_value(p.processed.clone()).ok())
            .and_then(|t| DependencyGraph::build_static(&t).ok())
            .map(|g| g.deletion_order())
            .unwrap_or_default();
        let mut removed: Vec<StackResource> = self
            .stack
            .resources
            .iter()
            .filter(|r| !keep.contains(&r.logical_id))
            .cloned()
            .collect();
        removed.sort_by_key(|r| {
            previous_order
                .iter()
                .position(|id| *id == r.logical_id)
                .unwrap_or(0)
        });
        cleanup.extend(removed.iter().cloned());
        let removed_ids: HashSet<String> = removed.into_iter().map(|r| r.logical_id).collect();
        op.cleanup = cleanup;
        op.journal.clear();
        let target = op.target.take();
        self.stack
            .resources
            .retain(|r| !removed_ids.contains(&r.logical_id));
        if let Some(t) = target {
            self.stack.template_body = t.template_body;
            self.stack.processed = t.processed;
            self.stack.parameters = t.parameters;
            self.stack.outputs = t.outputs;
            self.stack.description = t.description;
        }
        self.stack_status(status::UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, None);
    }

    async fn run_cleanup(&mut self) -> Result<()> {
        while let Some(res) = self
            .stack
            .operation
            .as_ref()
            .and_then(|o| o.cleanup.first().cloned())
        {
            if res.status != status::DELETE_COMPLETE
                && let Some(physical) = res.physical_id.clone()
            {
                if res.retain {
                    self.event(
                        &res.logical_id,
                        Some(&physical),
                        &res.resource_type,
                        status::DELETE_SKIPPED,
                        None,
                        None,
                    );
                } else {
                    self.event(
                        &res.logical_id,
                        Some(&physical),
                        &res.resource_type,
                        status::DELETE_IN_PROGRESS,
                        None,
                        None,
                    );
                    self.flush().await?;
                    let ctx = self.ctx(&res.logical_id, &res.resource_type, physical.clone());
                    let provider = std::sync::Arc::clone(&self.d.inner.provider);
                    match provider.delete(&ctx, &physical, &res.properties).await {
                        Ok(()) => self.event(
                            &res.logical_id,
                            Some(&physical),
                            &res.resource_type,
                            status::DELETE_COMPLETE,
                            None,
                            None,
                        ),
                        Err(e) => self.event(
                            &res.logical_id,
                            Some(&physical),
                            &res.resource_type,
                            status::DELETE_FAILED,
                            Some(&e.0),
                            None,
                        ),
                    }
                }
            }
            if let Some(op) = self.stack.operation.as_mut() {
                op.cleanup.remove(0);
            }
            self.flush().await?;
        }
        Ok(())
    }

    async fn finish_update(&mut self) -> Result<()> {
        self.run_cleanup().await?;
        self.stack.last_updated_ms = Some(now_ms());
        self.stack_status(status::UPDATE_COMPLETE, None);
        self.finish_operation(true).await
    }

    async fn fail_update(&mut self, reason: String) -> Result<()> {
        if let Some(op) = &mut self.stack.operation {
            op.rolling_back = true;
        }
        self.stack_status(status::UPDATE_ROLLBACK_IN_PROGRESS, Some(reason));
        self.flush().await?;
        self.rollback_update().await
    }

    async fn rollback_update(&mut self) -> Result<()> {
        let mut failed = Vec::new();
        let mut new_halves = Vec::new();
        while let Some(step) = self.journal().last().cloned() {
            match &step.action {
                StepAction::Create => {
                    if let Err(id) = self.undo_create(&step, true).await? {
                        failed.push(id);
                    }
                }
                StepAction::Update { old } => {
                    if let Err(id) = self.restore(old).await? {
                        failed.push(id);
                    }
                }
                StepAction::Replace { old } => {
                    if let Some(new) = self.stack.resource(&step.logical_id).cloned() {
                        let physical = new.physical_id.clone().or(step.expected.clone());
                        if physical.is_some() {
                            new_halves.push(StackResource {
                                physical_id: physical,
                                ..new
                            });
                        }
                    }
                    let mut back = (**old).clone();
                    back.status = status::UPDATE_COMPLETE.to_string();
                    back.status_reason = None;
                    self.event(
                        &back.logical_id.clone(),
                        back.physical_id.clone().as_deref(),
                        &back.resource_type.clone(),
                        status::UPDATE_COMPLETE,
                        None,
                        None,
                    );
                    self.stack.put_resource(back);
                }
                StepAction::Delete => {}
            }
            self.journal().pop();
            if let Some(op) = self.stack.operation.as_mut() {
                op.cleanup.append(&mut new_halves);
            }
            self.flush().await?;
        }
        if !failed.is_empty() {
            self.stack_status(
                status::UPDATE_ROLLBACK_FAILED,
                Some(format!(
                    "The following resource(s) failed to update: [{}]. ",
                    failed.join(", ")
                )),
            );
            if let Some(op) = self.stack.operation.as_mut() {
                op.target = None;
            }
            return self.finish_operation(false).await;
        }
        if let Some(op) = self.stack.operation.as_mut()
            && let Some(prev) = op.previous.take()
        {
            self.stack.template_body = prev.template_body;
            self.stack.processed = prev.processed;
            self.stack.parameters = prev.parameters;
            self.stack.outputs = prev.outputs;
            self.stack.description = prev.description;
            op.target = None;
        }
        self.stack_status(status::UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS, None);
        self.flush().await?;
        self.finish_update_rollback().await
    }

    async fn finish_update_rollback(&mut self) -> Result<()> {
        self.run_cleanup().await?;
        self.stack_status(status::UPDATE_ROLLBACK_COMPLETE, None);
        if let Some(op) = self.stack.operation.as_mut() {
            op.target = None;
        }
        self.finish_operation(false).await
    }

    /// Puts an in-place-updated resource back as it was.
    async fn restore(&mut self, old: &StackResource) -> Result<std::result::Result<(), String>> {
        let id = old.logical_id.clone();
        let Some(current) = self.stack.resource(&id).cloned() else {
            return Ok(Ok(()));
        };
        let physical = old.physical_id.clone().unwrap_or_default();
        self.event(
            &id,
            Some(&physical),
            &old.resource_type,
            status::UPDATE_IN_PROGRESS,
            None,
            Some(&old.properties),
        );
        self.flush().await?;
        let ctx = self.ctx(&id, &old.resource_type, physical.clone());
        let provider = std::sync::Arc::clone(&self.d.inner.provider);
        match provider
            .update(&ctx, &physical, &current.properties, &old.properties)
            .await
        {
            Ok(p) => {
                let mut back = old.clone();
                back.ref_value = Some(p.ref_value);
                back.attributes = p.attributes;
                back.status = status::UPDATE_COMPLETE.to_string();
                back.status_reason = None;
                back.last_updated_ms = now_ms();
                self.stack.put_resource(back);
                self.event(
                    &id,
                    Some(&physical),
                    &old.resource_type,
                    status::UPDATE_COMPLETE,
                    None,
                    None,
                );
                Ok(Ok(()))
            }
            Err(e) => {
                if let Some(r) = self.stack.resource_mut(&id) {
                    r.status = status::UPDATE_FAILED.to_string();
                    r.status_reason = Some(e.0.clone());
                }
                self.event(
                    &id,
                    Some(&physical),
                    &old.resource_type,
                    status::UPDATE_FAILED,
                    Some(&e.0),
                    None,
                );
                Ok(Err(id))
            }
        }
    }

    // ------------------------------------------------------------------ delete

    async fn delete(&mut self) -> Result<()> {
        let order = Template::from_value(self.stack.processed.clone())
            .ok()
            .and_then(|t| DependencyGraph::build_static(&t).ok())
            .map(|g| g.deletion_order())
            .unwrap_or_default();
        let mut ids: Vec<String> = self
            .stack
            .resources
            .iter()
            .rev()
            .filter(|r| !order.contains(&r.logical_id))
            .map(|r| r.logical_id.clone())
            .collect();
        ids.extend(order);
        let mut failed = Vec::new();
        for id in ids {
            let Some(res) = self.stack.resource(&id).cloned() else {
                continue;
            };
            if res.status == status::DELETE_COMPLETE || res.status == status::DELETE_SKIPPED {
                continue;
            }
            let Some(physical) = res.physical_id.clone() else {
                if let Some(r) = self.stack.resource_mut(&id) {
                    r.status = status::DELETE_COMPLETE.to_string();
                }
                self.event(
                    &id,
                    None,
                    &res.resource_type,
                    status::DELETE_COMPLETE,
                    None,
                    None,
                );
                self.flush().await?;
                continue;
            };
            if res.retain {
                if let Some(r) = self.stack.resource_mut(&id) {
                    r.status = status::DELETE_SKIPPED.to_string();
                }
                self.event(
                    &id,
                    Some(&physical),
                    &res.resource_type,
                    status::DELETE_SKIPPED,
                    None,
                    None,
                );
                self.flush().await?;
                continue;
            }
            if let Some(r) = self.stack.resource_mut(&id) {
                r.status = status::DELETE_IN_PROGRESS.to_string();
            }
            self.event(
                &id,
                Some(&physical),
                &res.resource_type,
                status::DELETE_IN_PROGRESS,
                None,
                None,
            );
            self.flush().await?;
            let ctx = self.ctx(&id, &res.resource_type, physical.clone());
            let provider = std::sync::Arc::clone(&self.d.inner.provider);
            match provider.delete(&ctx, &physical, &res.properties).await {
                Ok(()) => {
                    if let Some(r) = self.stack.resource_mut(&id) {
                        r.status = status::DELETE_COMPLETE.to_string();
                        r.last_updated_ms = now_ms();
                    }
                    self.event(
                        &id,
                        Some(&physical),
                        &res.resource_type,
                        status::DELETE_COMPLETE,
                        None,
                        None,
                    );
                }
                Err(e) => {
                    if let Some(r) = self.stack.resource_mut(&id) {
                        r.status = status::DELETE_FAILED.to_string();
                        r.status_reason = Some(e.0.clone());
                    }
                    self.event(
                        &id,
                        Some(&physical),
                        &res.resource_type,
                        status::DELETE_FAILED,
                        Some(&e.0),
                        None,
                    );
                    failed.push(id.clone());
                }
            }
            self.flush().await?;
        }
        if failed.is_empty() {
            self.stack.deletion_ms = Some(now_ms());
            self.stack_status(status::DELETE_COMPLETE, None);
            self.stack.operation = None;
            self.flush().await?;
            self.d.drop_change_sets(&self.stack.stack_id).await
        } else {
            self.stack_status(
                status::DELETE_FAILED,
                Some(format!(
                    "The following resource(s) failed to delete: [{}]. ",
                    failed.join(", ")
                )),
            );
            self.stack.operation = None;
            self.flush().await
        }
    }
}

fn empty_operation() -> crate::model::Operation {
    crate::model::Operation {
        kind: OperationKind::Update,
        previous: None,
        journal: Vec::new(),
        target: None,
        rolling_back: false,
        cleanup: Vec::new(),
        change_set_id: None,
    }
}

pub(crate) const fn user_initiated() -> &'static str {
    USER_INITIATED
}
