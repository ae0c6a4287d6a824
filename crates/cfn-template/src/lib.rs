//! The pure core of Kindling's CloudFormation engine: templates in, plans out, no I/O.
//!
//! Pipeline (what the engine does with a `CreateChangeSet`):
//! 1. [`parse_document`] — JSON or YAML text (short-form tags) → JSON value.
//! 2. [`process`] — runs the SAM transform when declared → the processed [`Template`]
//!    (what `GetTemplate(TemplateStage=Processed)` returns is [`Template::document`]).
//! 3. [`validate_template`] — references, types, cycles (`ValidateTemplate`).
//! 4. [`resolve_parameters`] — given/previous/default values and their constraints.
//! 5. [`Evaluator::new`] — conditions; then per resource [`Evaluator::resource_properties`]
//!    against the engine's [`ResourceResolver`], in [`DependencyGraph`] order.
//! 6. [`plan_changes`] — the change set entries between the deployed and the new template.

pub mod document;
pub mod error;
pub mod eval;
pub mod graph;
pub mod params;
pub mod plan;
pub mod refs;
pub mod sam;
pub mod template;
pub mod types;
pub mod validate;
mod yaml;

pub use document::{MAX_TEMPLATE_BODY_BYTES, MAX_TEMPLATE_URL_BYTES, parse_document};
pub use error::{Location, ParameterError, Result, TemplateError};
pub use eval::{
    Environment, EvalMode, EvaluatedOutput, Evaluator, KNOWN_AFTER_APPLY, MapResolver,
    NothingKnown, PseudoParameters, ResourceResolver, is_known,
};
pub use graph::DependencyGraph;
pub use params::{
    MASKED_VALUE, ParameterDecl, ParameterInput, ParameterType, ParameterValue, ResolvedParameter,
    ResolvedParameters, resolve_parameters,
};
pub use plan::{
    ChangeAction, ChangeDetail, DeployedResource, NO_CHANGES_REASON, PlannedResource, Replacement,
    ResourceChange, plan_changes,
};
pub use sam::{SamContext, TrafficShifting, TrafficShiftingKind, traffic_shifting};
pub use template::{
    LANGUAGE_EXTENSIONS, Output, Resource, RetentionPolicy, SAM_TRANSFORM, Template,
};
pub use validate::{Capability, required_capabilities, validate_template};

/// The `Parameters` section of a document before any transform runs (the engine resolves
/// their values first: the SAM transform needs them, see [`SamContext::with_parameters`]).
pub fn parameter_declarations(
    document: &serde_json::Value,
) -> Result<indexmap::IndexMap<String, ParameterDecl>> {
    let mut out = indexmap::IndexMap::new();
    match document.get("Parameters") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(section)) => {
            for (name, decl) in section {
                out.insert(name.clone(), ParameterDecl::parse(name, decl)?);
            }
        }
        Some(_) => return Err(error::format_err("Parameters must be an object")),
    }
    Ok(out)
}

/// Runs the transforms a document declares and reads the result as a [`Template`].
/// Only `AWS::Serverless-2016-10-31` (run here) and `AWS::LanguageExtensions` (honoured by
/// the evaluator) are supported; other macros are an error.
pub fn process(document: serde_json::Value, sam: &SamContext) -> Result<Template> {
    let transforms = template::declared_transforms(&document)?;
    let document = if transforms.iter().any(|t| t == SAM_TRANSFORM) {
        sam::transform(document, sam)?
    } else {
        document
    };
    Template::from_value(document)
}
