//! `ValidateTemplate`: what CloudFormation checks before any parameter is known.

use indexmap::IndexSet;
use serde_json::Value;

use crate::error::{Result, TemplateError, format_err};
use crate::eval::PSEUDO_PARAMETERS;
use crate::graph::DependencyGraph;
use crate::refs::{References, collect};
use crate::template::Template;
use crate::types;

/// Capabilities a stack operation must acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Iam,
    NamedIam,
    AutoExpand,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iam => "CAPABILITY_IAM",
            Self::NamedIam => "CAPABILITY_NAMED_IAM",
            Self::AutoExpand => "CAPABILITY_AUTO_EXPAND",
        }
    }
}

/// IAM resource types and the property that gives them a custom name.
const IAM_TYPES: &[(&str, &str)] = &[
    ("AWS::IAM::Role", "RoleName"),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"),
    ("AWS::IAM::User", "UserName"),
    ("AWS::IAM::Group", "GroupName"),
    ("AWS::IAM::Policy", ""),
    ("AWS::IAM::InstanceProfile", "InstanceProfileName"),
    ("AWS::IAM::AccessKey", ""),
];

/// Capabilities the (processed) template's resources need, and CloudFormation's reason text.
pub fn required_capabilities(template: &Template) -> (Vec<Capability>, Option<String>) {
    let mut needed = None;
    let mut types_seen = IndexSet::new();
    for resource in template.resources.values() {
        if let Some((t, name_prop)) = IAM_TYPES.iter().find(|(t, _)| *t == resource.resource_type) {
            types_seen.insert(*t);
            let named = !name_prop.is_empty() && resource.properties.contains_key(*name_prop);
            if named {
                needed = Some(Capability::NamedIam);
            } else if needed.is_none() {
                needed = Some(Capability::Iam);
            }
        }
    }
    match needed {
        None => (Vec::new(), None),
        Some(c) => {
            let list: Vec<&str> = types_seen.into_iter().collect();
            (
                vec![c],
                Some(format!(
                    "The following resource(s) require capabilities: [{}]",
                    list.join(", ")
                )),
            )
        }
    }
}

/// Checks a processed template as `ValidateTemplate` does: supported resource types, every
/// `Ref`/`Fn::GetAtt`/`${}`/`DependsOn`/condition/mapping name defined, GetAtt attributes
/// known, no resource in the Conditions block, no circular dependency.
pub fn validate_template(template: &Template) -> Result<()> {
    let unsupported: IndexSet<String> = template
        .resources
        .values()
        .map(|r| r.resource_type.clone())
        .filter(|t| !types::is_supported(t))
        .collect();
    if !unsupported.is_empty() {
        return Err(TemplateError::UnrecognizedResourceTypes {
            types: unsupported.into_iter().collect(),
        });
    }

    let is_value_name =
        |n: &str| PSEUDO_PARAMETERS.contains(&n) || template.parameters.contains_key(n);

    // Conditions: parameters and other conditions only.
    let mut in_resources = IndexSet::new();
    let mut unknown = IndexSet::new();
    for expr in template.conditions.values() {
        let mut refs = References::default();
        collect(expr, None, true, &mut refs);
        for name in refs.targets() {
            if template.resources.contains_key(name) {
                in_resources.insert(name.to_string());
            } else if !is_value_name(name) {
                unknown.insert(name.to_string());
            }
        }
        check_conditions(template, &refs.conditions, "Conditions")?;
        check_mappings(template, &refs.mappings)?;
    }
    if !in_resources.is_empty() {
        return Err(TemplateError::ResourceInConditions {
            names: in_resources.into_iter().collect(),
        });
    }
    if !unknown.is_empty() {
        return Err(TemplateError::UnresolvedResources {
            names: unknown.into_iter().collect(),
            block: "Conditions",
        });
    }

    let mut unresolved = IndexSet::new();
    for resource in template.resources.values() {
        let mut refs = References::default();
        collect(
            &Value::Object(resource.properties.clone()),
            None,
            false,
            &mut refs,
        );
        if let Some(p) = &resource.update_policy {
            collect(p, None, false, &mut refs);
        }
        check_refs(template, &refs, &mut unresolved)?;
        for dep in &resource.depends_on {
            if !template.resources.contains_key(dep) {
                unresolved.insert(dep.clone());
            }
        }
        if let Some(c) = &resource.condition {
            check_conditions(template, std::slice::from_ref(c), "Resources")?;
        }
        check_conditions(template, &refs.conditions, "Resources")?;
        check_mappings(template, &refs.mappings)?;
    }
    if !unresolved.is_empty() {
        return Err(TemplateError::UnresolvedResources {
            names: unresolved.into_iter().collect(),
            block: "Resources",
        });
    }

    for output in template.outputs.values() {
        let mut refs = References::default();
        collect(&output.value, None, false, &mut refs);
        if let Some(e) = &output.export_name {
            collect(e, None, false, &mut refs);
        }
        check_refs(template, &refs, &mut unresolved)?;
        if let Some(c) = &output.condition {
            check_conditions(template, std::slice::from_ref(c), "Outputs")?;
        }
        check_conditions(template, &refs.conditions, "Outputs")?;
        check_mappings(template, &refs.mappings)?;
    }
    if !unresolved.is_empty() {
        return Err(TemplateError::UnresolvedResources {
            names: unresolved.into_iter().collect(),
            block: "Outputs",
        });
    }

    DependencyGraph::build_static(template)?;
    Ok(())
}

fn check_refs(
    template: &Template,
    refs: &References,
    unresolved: &mut IndexSet<String>,
) -> Result<()> {
    for name in &refs.refs {
        if !(PSEUDO_PARAMETERS.contains(&name.as_str())
            || template.parameters.contains_key(name)
            || template.resources.contains_key(name))
        {
            unresolved.insert(name.clone());
        }
    }
    for (resource, attribute) in &refs.get_atts {
        match template.resources.get(resource) {
            None => {
                unresolved.insert(resource.clone());
            }
            Some(r) => {
                if let Some(spec) = types::resource_type(&r.resource_type)
                    && !attribute.is_empty()
                    && !spec.has_attribute(attribute)
                {
                    return Err(TemplateError::UnknownAttribute {
                        resource: resource.clone(),
                        attribute: attribute.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn check_conditions(template: &Template, names: &[String], block: &str) -> Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !template.conditions.contains_key(*n))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format_err(format!(
            "Unresolved condition dependencies [{}] in the {block} block of the template",
            missing.join(", ")
        )))
    }
}

fn check_mappings(template: &Template, names: &[String]) -> Result<()> {
    match names
        .iter()
        .find(|n| !template.mappings.contains_key(n.as_str()))
    {
        None => Ok(()),
        Some(n) => Err(format_err(format!(
            "Mapping named '{n}' is not present in the 'Mappings' section of template."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<()> {
        validate_template(&Template::from_value(v).expect("structure"))
    }

    #[test]
    fn unresolved_and_unsupported() {
        let err = check(json!({"Resources": {
            "A": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "Missing"}, "Y": {"Fn::Sub": "${Gone.Arn}"}}}
        }}))
        .expect_err("unresolved");
        assert_eq!(
            err.to_string(),
            "Template format error: Unresolved resource dependencies [Missing, Gone] in the Resources block of the template"
        );
        let err =
            check(json!({"Resources": {"A": {"Type": "AWS::EC2::Instance"}}})).expect_err("type");
        assert_eq!(
            err.to_string(),
            "Template format error: Unrecognized resource types: [AWS::EC2::Instance]"
        );
        let err = check(json!({"Resources": {"A": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {"O": {"Value": {"Fn::GetAtt": ["A", "Nope"]}}}}))
        .expect_err("attribute");
        assert_eq!(
            err.to_string(),
            "Template error: resource A does not support attribute type Nope in Fn::GetAtt"
        );
        let err = check(json!({"Resources": {"A": {"Type": "AWS::SQS::Queue"}},
            "Conditions": {"C": {"Fn::Equals": [{"Ref": "A"}, "x"]}}}))
        .expect_err("resource in conditions");
        assert!(
            err.to_string()
                .contains("Cannot reference resources in the Conditions block"),
            "{err}"
        );
        let err =
            check(json!({"Resources": {"A": {"Type": "AWS::SQS::Queue", "Condition": "Nope"}}}))
                .expect_err("condition");
        assert!(
            err.to_string()
                .contains("Unresolved condition dependencies [Nope]"),
            "{err}"
        );
    }

    #[test]
    fn capabilities() {
        let t = Template::from_value(json!({"Resources": {"R": {"Type": "AWS::IAM::Role"}}}))
            .expect("t");
        let (caps, reason) = required_capabilities(&t);
        assert_eq!(caps, [Capability::Iam]);
        assert_eq!(
            reason.as_deref(),
            Some("The following resource(s) require capabilities: [AWS::IAM::Role]")
        );
        let t = Template::from_value(json!({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}}}))
            .expect("t");
        assert_eq!(required_capabilities(&t).0, [Capability::NamedIam]);
    }
}
