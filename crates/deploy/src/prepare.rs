//! From a template body and parameter inputs to what the engine deploys: parsed, transformed,
//! validated, parameters resolved. Pure (no I/O): `TemplateURL`s are fetched by the caller.

use std::collections::HashMap;

use indexmap::IndexMap;
use kindling_cfn_template::{
    Environment, Evaluator, ParameterInput, PseudoParameters, ResolvedParameters, SamContext,
    Template, parameter_declarations, parse_document, process, resolve_parameters,
    validate_template,
};
use serde_json::Value;

use crate::error::{DeployError, Result};
use crate::model::StackParameter;

/// A template ready to deploy.
pub struct Prepared {
    pub body: String,
    pub template: Template,
    pub parameters: ResolvedParameters,
}

impl Prepared {
    /// The parameters as stored on the stack.
    pub fn stack_parameters(&self) -> Vec<StackParameter> {
        self.parameters
            .values
            .iter()
            .map(|(k, v)| StackParameter {
                key: k.clone(),
                value: v.raw.clone(),
                no_echo: v.no_echo,
            })
            .collect()
    }

    /// The processed template (what `GetTemplate(Processed)` returns).
    pub fn processed(&self) -> Value {
        self.template.document().clone()
    }
}

/// Parses, transforms and validates `body` with `inputs` (and the stack's previous values for
/// `UsePreviousValue`).
pub fn prepare(
    body: &str,
    inputs: &[ParameterInput],
    previous: &[StackParameter],
    partition: &str,
) -> Result<Prepared> {
    let document = parse_document(body)?;
    let declarations = parameter_declarations(&document)?;
    let previous: IndexMap<String, String> = previous
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    let parameters = resolve_parameters(&declarations, inputs, Some(&previous))?;
    let sam = SamContext::with_parameters(partition, &parameters);
    let template = process(document, &sam)?;
    validate_template(&template)?;
    Ok(Prepared {
        body: body.to_string(),
        template,
        parameters,
    })
}

/// A deployed template again, from its processed document and stored parameter values.
pub fn reload(
    processed: &Value,
    parameters: &[StackParameter],
) -> Result<(Template, ResolvedParameters)> {
    let template = Template::from_value(processed.clone())?;
    let inputs: Vec<ParameterInput> = parameters
        .iter()
        .filter(|p| template.parameters.contains_key(&p.key))
        .map(|p| ParameterInput {
            key: p.key.clone(),
            value: Some(p.value.clone()),
            use_previous_value: false,
        })
        .collect();
    let resolved = resolve_parameters(&template.parameters, &inputs, None)?;
    Ok((template, resolved))
}

/// What intrinsic functions see besides the template.
pub struct Surroundings {
    pub pseudo: PseudoParameters,
    pub azs: Vec<String>,
    pub exports: HashMap<String, String>,
}

impl Surroundings {
    pub fn new(
        account: &str,
        region: &str,
        stack_name: &str,
        stack_id: &str,
        exports: HashMap<String, String>,
    ) -> Self {
        Self {
            pseudo: PseudoParameters::new(account, region, stack_name, stack_id),
            azs: ["a", "b", "c"]
                .iter()
                .map(|z| format!("{region}{z}"))
                .collect(),
            exports,
        }
    }

    pub fn evaluator<'a>(
        &'a self,
        template: &'a Template,
        parameters: &'a ResolvedParameters,
    ) -> Result<Evaluator<'a>> {
        Evaluator::new(
            template,
            parameters,
            Environment {
                pseudo: &self.pseudo,
                availability_zones: &self.azs,
                exports: &self.exports,
            },
        )
        .map_err(DeployError::from)
    }
}
