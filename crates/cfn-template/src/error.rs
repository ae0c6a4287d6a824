//! Errors, phrased as CloudFormation phrases its `ValidationError` messages.
//!
//! Every variant's `Display` is the message a client sees; the engine maps all of them to
//! the `ValidationError` code (HTTP 400) except [`TemplateError::NotYetKnown`], which is an
//! engine bug (it evaluated a resource before its dependencies).

use thiserror::Error;

/// Where in a YAML or JSON document something was found (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("Template format error: JSON not well-formed. ({at})")]
    Json {
        at: Location,
        #[source]
        source: serde_json::Error,
    },
    #[error("Template format error: YAML not well-formed. ({at})")]
    Yaml {
        at: Location,
        #[source]
        source: saphyr_parser::ScanError,
    },
    /// Well-formed YAML that CloudFormation does not accept (unknown tag, duplicate key, ...).
    #[error("Template format error: YAML not well-formed. {detail} ({at})")]
    YamlContent { at: Location, detail: String },
    /// A structural problem of the template ("Template format error: ...").
    #[error("Template format error: {0}")]
    Format(String),
    #[error(
        "Template format error: Unresolved resource dependencies [{}] in the {block} block of the template",
        .names.join(", ")
    )]
    UnresolvedResources {
        names: Vec<String>,
        block: &'static str,
    },
    #[error("Template format error: Unresolved dependencies [{}]. Cannot reference resources in the Conditions block of the template", .names.join(", "))]
    ResourceInConditions { names: Vec<String> },
    #[error("Template format error: Unrecognized resource types: [{}]", .types.join(", "))]
    UnrecognizedResourceTypes { types: Vec<String> },
    #[error("Circular dependency between resources: [{}]", .names.join(", "))]
    CircularDependency { names: Vec<String> },
    /// A problem found while evaluating intrinsic functions ("Template error: ...").
    #[error("Template error: {0}")]
    Evaluation(String),
    #[error(
        "Template error: resource {resource} does not support attribute type {attribute} in Fn::GetAtt"
    )]
    UnknownAttribute { resource: String, attribute: String },
    #[error("Template error: Unable to get mapping for {map}::{top}::{second}")]
    MappingNotFound {
        map: String,
        top: String,
        second: String,
    },
    #[error("No export named {0} found. Rollback requested by user.")]
    ExportNotFound(String),
    #[error("{0}")]
    Parameter(#[from] ParameterError),
    /// The SAM transform rejected the template; the message lists every problem.
    #[error(
        "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification document. Number of errors found: {}. {}",
        .problems.len(),
        .problems.join(" ")
    )]
    Transform { problems: Vec<String> },
    #[error("Template format error: Unsupported transform {0}")]
    UnsupportedTransform(String),
    /// Evaluation needed a value the resolver does not know yet (in apply mode).
    #[error("value of {0} is not known yet")]
    NotYetKnown(String),
}

/// Problems with parameter declarations or the values given for them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParameterError {
    #[error("Parameters: [{}] must have values", .0.join(", "))]
    MissingValues(Vec<String>),
    #[error("Parameters: [{}] do not exist in the template", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("Parameter '{name}' {problem}")]
    Invalid { name: String, problem: String },
    #[error("Template format error: Unrecognized parameter type: {type_name}")]
    UnrecognizedType { type_name: String },
    #[error(
        "Template format error: Parameter '{name}' of type {type_name} is not supported by Kindling (SSM parameter types need an SSM service)"
    )]
    UnsupportedType { name: String, type_name: String },
    #[error("Template format error: Every Parameters object must contain a Type member.")]
    MissingType { name: String },
    #[error("Template format error: Invalid template parameter property '{property}'")]
    UnknownProperty { name: String, property: String },
}

pub type Result<T, E = TemplateError> = std::result::Result<T, E>;

pub(crate) fn format_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Format(msg.into())
}

pub(crate) fn eval_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Evaluation(msg.into())
}
