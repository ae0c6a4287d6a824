//! Query parameters → the engine's inputs.

use kindling_cfn_template::ParameterInput;
use kindling_deploy::{ChangeSetInput, StackInput, TemplateInput};
use kindling_protocol::query::Params;

use crate::CfnError;

pub fn template(p: &Params) -> TemplateInput {
    TemplateInput {
        body: p.get("TemplateBody").map(str::to_string),
        url: p.get("TemplateURL").map(str::to_string),
        use_previous: p.get("UsePreviousTemplate") == Some("true"),
    }
}

pub fn stack(p: &Params) -> Result<StackInput, CfnError> {
    let parameters = p
        .indexed("Parameters")
        .into_iter()
        .map(|m| {
            Ok(ParameterInput {
                key: m
                    .get("ParameterKey")
                    .ok_or_else(|| CfnError::Validation("ParameterKey is required".into()))?
                    .to_string(),
                value: m.get("ParameterValue").map(str::to_string),
                use_previous_value: m.get("UsePreviousValue") == Some("true"),
            })
        })
        .collect::<Result<Vec<_>, CfnError>>()?;
    Ok(StackInput {
        stack_name: p.require("StackName")?.to_string(),
        template: template(p),
        parameters,
        capabilities: p.list("Capabilities"),
        tags: p.string_map("Tags", "Key", "Value"),
        notification_arns: p.list("NotificationARNs"),
        role_arn: p.get("RoleARN").map(str::to_string),
        disable_rollback: p.get("DisableRollback") == Some("true")
            || p.get("OnFailure") == Some("DO_NOTHING")
            || p.get("OnStackFailure") == Some("DO_NOTHING"),
    })
}

pub fn change_set(p: &Params) -> Result<ChangeSetInput, CfnError> {
    Ok(ChangeSetInput {
        stack: stack(p)?,
        change_set_name: p.require("ChangeSetName")?.to_string(),
        change_set_type: p.get("ChangeSetType").map(str::to_string),
        description: p.get("Description").map(str::to_string),
    })
}
