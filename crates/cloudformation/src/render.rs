//! The engine's records as CloudFormation's XML shapes (lists as `<member>`s).

use kindling_deploy::model::{ChangeSet, Stack, StackEvent, StackResource};
use kindling_deploy::{TemplateSummary, shown_parameters};
use kindling_protocol::time::iso8601;
use kindling_protocol::xml::Xml;

fn parameters(x: &mut Xml, params: &[(String, String)]) {
    x.elem("Parameters", |x| {
        for (k, v) in params {
            x.elem("member", |x| {
                x.leaf("ParameterKey", k).leaf("ParameterValue", v);
            });
        }
    });
}

fn strings(x: &mut Xml, tag: &str, list: &[String]) {
    x.elem(tag, |x| {
        for s in list {
            x.leaf("member", s);
        }
    });
}

fn tags(x: &mut Xml, tags: &[(String, String)]) {
    x.elem("Tags", |x| {
        for (k, v) in tags {
            x.elem("member", |x| {
                x.leaf("Key", k).leaf("Value", v);
            });
        }
    });
}

pub fn stacks(x: &mut Xml, stacks: &[Stack]) {
    x.elem("Stacks", |x| {
        for s in stacks {
            x.elem("member", |x| stack(x, s));
        }
    });
}

fn stack(x: &mut Xml, s: &Stack) {
    x.leaf("StackId", &s.stack_id)
        .leaf("StackName", &s.stack_name)
        .opt_leaf("ChangeSetId", s.change_set_id.as_ref())
        .opt_leaf("Description", s.description.as_ref());
    parameters(x, &shown_parameters(&s.parameters));
    x.leaf("CreationTime", iso8601(s.creation_ms))
        .opt_leaf("DeletionTime", s.deletion_ms.map(iso8601))
        .opt_leaf("LastUpdatedTime", s.last_updated_ms.map(iso8601))
        .leaf("StackStatus", &s.status)
        .opt_leaf("StackStatusReason", s.status_reason.as_ref())
        .leaf("DisableRollback", s.disable_rollback);
    strings(x, "NotificationARNs", &s.notification_arns);
    strings(x, "Capabilities", &s.capabilities);
    x.elem("Outputs", |x| {
        for o in &s.outputs {
            x.elem("member", |x| {
                x.leaf("OutputKey", &o.key)
                    .leaf("OutputValue", &o.value)
                    .opt_leaf("Description", o.description.as_ref())
                    .opt_leaf("ExportName", o.export_name.as_ref());
            });
        }
    });
    x.opt_leaf("RoleARN", s.role_arn.as_ref());
    tags(x, &s.tags);
    x.leaf("EnableTerminationProtection", false);
    x.elem("DriftInformation", |x| {
        x.leaf("StackDriftStatus", "NOT_CHECKED");
    });
}

pub fn stack_summaries(x: &mut Xml, stacks: &[Stack]) {
    x.elem("StackSummaries", |x| {
        for s in stacks {
            x.elem("member", |x| {
                x.leaf("StackId", &s.stack_id)
                    .leaf("StackName", &s.stack_name)
                    .opt_leaf("TemplateDescription", s.description.as_ref())
                    .leaf("CreationTime", iso8601(s.creation_ms))
                    .opt_leaf("LastUpdatedTime", s.last_updated_ms.map(iso8601))
                    .opt_leaf("DeletionTime", s.deletion_ms.map(iso8601))
                    .leaf("StackStatus", &s.status)
                    .opt_leaf("StackStatusReason", s.status_reason.as_ref());
            });
        }
    });
}

pub fn events(x: &mut Xml, events: &[StackEvent]) {
    x.elem("StackEvents", |x| {
        for e in events {
            x.elem("member", |x| {
                x.leaf("StackId", &e.stack_id)
                    .leaf("EventId", &e.event_id)
                    .leaf("StackName", &e.stack_name)
                    .leaf("LogicalResourceId", &e.logical_id)
                    .leaf("PhysicalResourceId", e.physical_id.as_deref().unwrap_or(""))
                    .leaf("ResourceType", &e.resource_type)
                    .leaf("Timestamp", iso8601(e.timestamp_ms))
                    .leaf("ResourceStatus", &e.status)
                    .opt_leaf("ResourceStatusReason", e.status_reason.as_ref())
                    .opt_leaf("ResourceProperties", e.properties.as_ref());
            });
        }
    });
}

fn resource_common(x: &mut Xml, r: &StackResource) {
    x.leaf("LogicalResourceId", &r.logical_id)
        .opt_leaf("PhysicalResourceId", r.physical_id.as_ref())
        .leaf("ResourceType", &r.resource_type);
}

pub fn resource_detail(x: &mut Xml, s: &Stack, r: &StackResource) {
    x.elem("StackResourceDetail", |x| {
        x.leaf("StackName", &s.stack_name)
            .leaf("StackId", &s.stack_id);
        resource_common(x, r);
        x.leaf("LastUpdatedTimestamp", iso8601(r.last_updated_ms))
            .leaf("ResourceStatus", &r.status)
            .opt_leaf("ResourceStatusReason", r.status_reason.as_ref())
            .opt_leaf("Metadata", r.metadata.as_ref().map(|m| m.to_string()));
        x.elem("DriftInformation", |x| {
            x.leaf("StackResourceDriftStatus", "NOT_CHECKED");
        });
    });
}

pub fn resources(x: &mut Xml, s: &Stack, list: &[StackResource]) {
    x.elem("StackResources", |x| {
        for r in list {
            x.elem("member", |x| {
                x.leaf("StackName", &s.stack_name)
                    .leaf("StackId", &s.stack_id);
                resource_common(x, r);
                x.leaf("Timestamp", iso8601(r.last_updated_ms))
                    .leaf("ResourceStatus", &r.status)
                    .opt_leaf("ResourceStatusReason", r.status_reason.as_ref());
                x.elem("DriftInformation", |x| {
                    x.leaf("StackResourceDriftStatus", "NOT_CHECKED");
                });
            });
        }
    });
}

pub fn resource_summaries(x: &mut Xml, list: &[StackResource]) {
    x.elem("StackResourceSummaries", |x| {
        for r in list {
            x.elem("member", |x| {
                resource_common(x, r);
                x.leaf("LastUpdatedTimestamp", iso8601(r.last_updated_ms))
                    .leaf("ResourceStatus", &r.status)
                    .opt_leaf("ResourceStatusReason", r.status_reason.as_ref());
                x.elem("DriftInformation", |x| {
                    x.leaf("StackResourceDriftStatus", "NOT_CHECKED");
                });
            });
        }
    });
}

pub fn summary(x: &mut Xml, s: &TemplateSummary, full: bool) {
    x.elem("Parameters", |x| {
        for p in &s.parameters {
            x.elem("member", |x| {
                x.leaf("ParameterKey", &p.key)
                    .opt_leaf("DefaultValue", p.default.as_ref());
                if full {
                    x.leaf("ParameterType", &p.parameter_type);
                }
                x.leaf("NoEcho", p.no_echo)
                    .opt_leaf("Description", p.description.as_ref());
                if full {
                    x.elem("ParameterConstraints", |x| {
                        strings(x, "AllowedValues", &p.allowed_values);
                    });
                }
            });
        }
    });
    x.opt_leaf("Description", s.description.as_ref());
    strings(x, "Capabilities", &s.capabilities);
    x.opt_leaf("CapabilitiesReason", s.capabilities_reason.as_ref());
    strings(x, "DeclaredTransforms", &s.declared_transforms);
    if full {
        strings(x, "ResourceTypes", &s.resource_types);
        x.opt_leaf("Version", s.version.as_ref());
    }
}

pub fn exports(x: &mut Xml, exports: &[(String, String, String)]) {
    x.elem("Exports", |x| {
        for (stack, name, value) in exports {
            x.elem("member", |x| {
                x.leaf("ExportingStackId", stack)
                    .leaf("Name", name)
                    .leaf("Value", value);
            });
        }
    });
}

pub fn change_set(x: &mut Xml, cs: &ChangeSet) {
    x.leaf("ChangeSetName", &cs.change_set_name)
        .leaf("ChangeSetId", &cs.change_set_id)
        .leaf("StackId", &cs.stack_id)
        .leaf("StackName", &cs.stack_name)
        .opt_leaf("Description", cs.description.as_ref());
    parameters(x, &shown_parameters(&cs.parameters));
    x.leaf("CreationTime", iso8601(cs.creation_ms))
        .leaf("ExecutionStatus", &cs.execution_status)
        .leaf("Status", &cs.status)
        .opt_leaf("StatusReason", cs.status_reason.as_ref());
    strings(x, "NotificationARNs", &cs.notification_arns);
    strings(x, "Capabilities", &cs.capabilities);
    tags(x, &cs.tags);
    x.elem("Changes", |x| {
        for c in &cs.changes {
            x.elem("member", |x| {
                x.leaf("Type", "Resource");
                x.elem("ResourceChange", |x| {
                    x.leaf("Action", &c.action)
                        .leaf("LogicalResourceId", &c.logical_id)
                        .opt_leaf("PhysicalResourceId", c.physical_id.as_ref())
                        .leaf("ResourceType", &c.resource_type)
                        .opt_leaf("Replacement", c.replacement.as_ref());
                    strings(x, "Scope", &c.scope);
                    x.elem("Details", |x| {
                        for d in &c.details {
                            x.elem("member", |x| {
                                x.elem("Target", |x| {
                                    x.leaf("Attribute", &d.attribute)
                                        .opt_leaf("Name", d.name.as_ref())
                                        .leaf("RequiresRecreation", &d.requires_recreation);
                                });
                                x.leaf("Evaluation", &d.evaluation)
                                    .leaf("ChangeSource", &d.change_source);
                            });
                        }
                    });
                });
            });
        }
    });
    x.leaf("IncludeNestedStacks", false);
}

pub fn change_set_summaries(x: &mut Xml, list: &[ChangeSet]) {
    x.elem("Summaries", |x| {
        for cs in list {
            x.elem("member", |x| {
                x.leaf("StackId", &cs.stack_id)
                    .leaf("StackName", &cs.stack_name)
                    .leaf("ChangeSetId", &cs.change_set_id)
                    .leaf("ChangeSetName", &cs.change_set_name)
                    .leaf("ExecutionStatus", &cs.execution_status)
                    .leaf("Status", &cs.status)
                    .opt_leaf("StatusReason", cs.status_reason.as_ref())
                    .leaf("CreationTime", iso8601(cs.creation_ms))
                    .opt_leaf("Description", cs.description.as_ref())
                    .leaf("IncludeNestedStacks", false);
            });
        }
    });
}
