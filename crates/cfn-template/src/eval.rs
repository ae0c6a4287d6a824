//! Conditions and intrinsic functions, evaluated against what the engine knows so far.
//!
//! The engine supplies a [`ResourceResolver`] (the `Ref` values and attributes of resources it
//! has created). In [`EvalMode::Apply`] a value the resolver does not know yet is an error
//! (the engine evaluates a resource only after its dependencies); in [`EvalMode::Preview`]
//! (change sets) it becomes the placeholder [`KNOWN_AFTER_APPLY`], and any function whose
//! argument is unknown is itself unknown.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashMap;

use crate::error::{Result, TemplateError, eval_err, format_err};
use crate::params::ResolvedParameters;
use crate::refs::{SubPart, parse_sub};
use crate::template::Template;
use crate::types;

/// What a change-set preview shows for a value known only after the change is applied.
pub const KNOWN_AFTER_APPLY: &str = "{{changeSet:KNOWN_AFTER_APPLY}}";

/// Whether a (previewed) value is fully known.
pub fn is_known(value: &Value) -> bool {
    match value {
        Value::String(s) => s != KNOWN_AFTER_APPLY,
        Value::Array(items) => items.iter().all(is_known),
        Value::Object(map) => map.values().all(is_known),
        _ => true,
    }
}

/// A value as text for messages: strings bare, everything else as JSON.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The pseudo parameters of one stack, supplied by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudoParameters {
    pub account_id: String,
    pub region: String,
    pub stack_id: String,
    pub stack_name: String,
    pub partition: String,
    pub url_suffix: String,
    pub notification_arns: Vec<String>,
}

impl PseudoParameters {
    /// Pseudo parameters in the `aws` partition.
    pub fn new(account_id: &str, region: &str, stack_name: &str, stack_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            region: region.to_string(),
            stack_id: stack_id.to_string(),
            stack_name: stack_name.to_string(),
            partition: "aws".to_string(),
            url_suffix: "amazonaws.com".to_string(),
            notification_arns: Vec::new(),
        }
    }

    /// The value of `Ref: AWS::...` (`None` for unknown names and for `AWS::NoValue`).
    pub fn get(&self, name: &str) -> Option<Value> {
        Some(match name {
            "AWS::AccountId" => Value::from(self.account_id.as_str()),
            "AWS::Region" => Value::from(self.region.as_str()),
            "AWS::StackId" => Value::from(self.stack_id.as_str()),
            "AWS::StackName" => Value::from(self.stack_name.as_str()),
            "AWS::Partition" => Value::from(self.partition.as_str()),
            "AWS::URLSuffix" => Value::from(self.url_suffix.as_str()),
            "AWS::NotificationARNs" => Value::Array(
                self.notification_arns
                    .iter()
                    .map(|a| Value::from(a.as_str()))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

/// Names of all pseudo parameters (including `AWS::NoValue`).
pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
    "AWS::NoValue",
];

/// What the engine knows about resources: `None` means "not known yet".
pub trait ResourceResolver {
    /// The value `Ref` returns for a resource (see [`types::ResourceTypeSpec::ref_returns`]).
    fn ref_value(&self, logical_id: &str) -> Option<Value>;
    /// The value of `Fn::GetAtt [logical_id, attribute]`.
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<Value>;
}

/// A resolver that knows nothing (previews of a new stack).
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingKnown;

impl ResourceResolver for NothingKnown {
    fn ref_value(&self, _: &str) -> Option<Value> {
        None
    }
    fn attribute(&self, _: &str, _: &str) -> Option<Value> {
        None
    }
}

/// A resolver backed by maps (handy for the engine's stored state and for tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapResolver {
    pub refs: HashMap<String, Value>,
    pub attributes: HashMap<(String, String), Value>,
}

impl ResourceResolver for MapResolver {
    fn ref_value(&self, logical_id: &str) -> Option<Value> {
        self.refs.get(logical_id).cloned()
    }
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<Value> {
        self.attributes
            .get(&(logical_id.to_string(), attribute.to_string()))
            .cloned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalMode {
    /// Every value must be known; an unknown one is [`TemplateError::NotYetKnown`].
    Apply,
    /// Unknown values become [`KNOWN_AFTER_APPLY`].
    Preview,
}

/// What the caller supplies besides the template and its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Environment<'a> {
    pub pseudo: &'a PseudoParameters,
    /// What `Fn::GetAZs` returns.
    pub availability_zones: &'a [String],
    /// Exports of other stacks, for `Fn::ImportValue`.
    pub exports: &'a HashMap<String, String>,
}

/// An output after evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatedOutput {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub export_name: Option<String>,
}

/// An intermediate result.
#[derive(Clone)]
enum V {
    Val(Value),
    NoValue,
    Unknown,
}

/// Evaluates one template's conditions (at construction) and then its values.
pub struct Evaluator<'a> {
    template: &'a Template,
    parameters: &'a ResolvedParameters,
    env: Environment<'a>,
    conditions: HashMap<String, bool>,
    /// Bytes the intrinsic functions have produced so far (see [`MAX_EVALUATED_BYTES`]).
    produced: Cell<usize>,
    /// Intrinsic functions being evaluated inside one another (see [`MAX_NESTING`]).
    nesting: Cell<usize>,
}

/// How deep intrinsic functions may nest in one another. Each level costs the evaluator's
/// recursion several frames (over 10 KB of stack in a debug build): `Fn::Base64` nested 120
/// deep, a 4 KB template, overflowed a 2 MB worker's stack and aborted the server.
pub const MAX_NESTING: usize = 32;

/// How many bytes the intrinsic functions of one evaluator (one stack operation) may produce
/// in all. Without a bound a small template amplifies: `Fn::Sub` of `${A}${A}` nested 30
/// deep, or `Fn::Join` of a long delimiter over a long `Fn::Split`, builds terabytes.
pub const MAX_EVALUATED_BYTES: usize = 64 * 1024 * 1024;

const SUPPORTED_FUNCTIONS: &str = "[Fn::Base64, Fn::Cidr, Fn::FindInMap, Fn::GetAZs, Fn::GetAtt, Fn::If, Fn::ImportValue, Fn::Join, Fn::Length, Fn::Select, Fn::Split, Fn::Sub, Fn::ToJsonString, Ref]";

impl<'a> Evaluator<'a> {
    /// Evaluates every condition of the template.
    pub fn new(
        template: &'a Template,
        parameters: &'a ResolvedParameters,
        env: Environment<'a>,
    ) -> Result<Self> {
        let mut ev = Self {
            template,
            parameters,
            env,
            conditions: HashMap::new(),
            produced: Cell::new(0),
            nesting: Cell::new(0),
        };
        let mut done = HashMap::new();
        for name in template.conditions.keys() {
            let mut visiting = Vec::new();
            ev.condition_named(name, &mut done, &mut visiting)?;
        }
        ev.conditions = done;
        Ok(ev)
    }

    pub fn template(&self) -> &'a Template {
        self.template
    }

    /// Every condition's value.
    pub fn conditions(&self) -> &HashMap<String, bool> {
        &self.conditions
    }

    /// Whether a resource is part of the stack (no condition, or a true one).
    pub fn is_active(&self, logical_id: &str) -> bool {
        match self.template.resources.get(logical_id) {
            Some(r) => r
                .condition
                .as_ref()
                .is_none_or(|c| self.conditions.get(c).copied().unwrap_or(false)),
            None => false,
        }
    }

    /// Logical ids of the resources in the stack, in template order.
    pub fn active_resources(&self) -> Vec<&'a str> {
        self.template
            .resources
            .keys()
            .map(String::as_str)
            .filter(|id| self.is_active(id))
            .collect()
    }

    /// Evaluates any value of the template.
    pub fn evaluate(
        &self,
        value: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<Value> {
        match self.eval(value, resolver, mode)? {
            V::Val(v) => Ok(v),
            V::NoValue => Ok(Value::Null),
            V::Unknown => Ok(Value::from(KNOWN_AFTER_APPLY)),
        }
    }

    /// The properties of a resource with every intrinsic resolved and `AWS::NoValue` removed.
    pub fn resource_properties(
        &self,
        logical_id: &str,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<Map<String, Value>> {
        let resource = self
            .template
            .resources
            .get(logical_id)
            .ok_or_else(|| eval_err(format!("No resource named {logical_id}")))?;
        let props = Value::Object(resource.properties.clone());
        match self.evaluate(&props, resolver, mode)? {
            Value::Object(map) => Ok(map),
            _ => Ok(Map::new()),
        }
    }

    /// The outputs whose condition holds, evaluated.
    pub fn outputs(
        &self,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<Vec<EvaluatedOutput>> {
        let mut out = Vec::new();
        for (key, output) in &self.template.outputs {
            if let Some(c) = &output.condition
                && !self.condition(c)?
            {
                continue;
            }
            let text = |v: &Value, what: &str| -> Result<String> {
                match self.evaluate(v, resolver, mode)? {
                    Value::Array(_) | Value::Object(_) | Value::Null => Err(format_err(format!(
                        "The {what} field of every Outputs member must evaluate to a String and not a List or Map."
                    ))),
                    other => Ok(display_value(&other)),
                }
            };
            let value = text(&output.value, "Value")?;
            let description = output
                .description
                .as_ref()
                .map(|d| text(d, "Description"))
                .transpose()?;
            let export_name = output
                .export_name
                .as_ref()
                .map(|e| text(e, "Export Name"))
                .transpose()?;
            out.push(EvaluatedOutput {
                key: key.clone(),
                value,
                description,
                export_name,
            });
        }
        Ok(out)
    }

    /// A condition's value.
    pub fn condition(&self, name: &str) -> Result<bool> {
        self.conditions.get(name).copied().ok_or_else(|| {
            format_err(format!(
                "Unresolved condition dependencies [{name}] in the Resources block of the template"
            ))
        })
    }

    fn condition_named(
        &self,
        name: &str,
        done: &mut HashMap<String, bool>,
        visiting: &mut Vec<String>,
    ) -> Result<bool> {
        if let Some(v) = done.get(name) {
            return Ok(*v);
        }
        if visiting.iter().any(|v| v == name) {
            visiting.push(name.to_string());
            return Err(format_err(format!(
                "Circular dependency between conditions: [{}]",
                visiting.join(", ")
            )));
        }
        let expr = self.template.conditions.get(name).ok_or_else(|| {
            format_err(format!(
                "Unresolved condition dependencies [{name}] in the Conditions block of the template"
            ))
        })?;
        visiting.push(name.to_string());
        let value = self.condition_expr(expr, done, visiting)?;
        visiting.pop();
        done.insert(name.to_string(), value);
        Ok(value)
    }

    fn condition_expr(
        &self,
        expr: &Value,
        done: &mut HashMap<String, bool>,
        visiting: &mut Vec<String>,
    ) -> Result<bool> {
        let bad = || {
            eval_err(
                "Conditions can only be boolean operations on parameters and other conditions (Fn::And, Fn::Or, Fn::Not, Fn::Equals, Condition)",
            )
        };
        let map = expr.as_object().filter(|m| m.len() == 1).ok_or_else(bad)?;
        let Some((key, arg)) = map.iter().next() else {
            return Err(bad());
        };
        let list = |n_min: usize, n_max: usize, f: &str| -> Result<&Vec<Value>> {
            match arg {
                Value::Array(items) if items.len() >= n_min && items.len() <= n_max => Ok(items),
                _ => Err(eval_err(format!(
                    "{f} requires a list of {n_min} to {n_max} elements"
                ))),
            }
        };
        match key.as_str() {
            "Condition" => {
                let name = arg.as_str().ok_or_else(bad)?;
                self.condition_named(name, done, visiting)
            }
            "Fn::Equals" => {
                let items = list(2, 2, "Fn::Equals")?;
                let a = self.evaluate(&items[0], &NothingKnown, EvalMode::Apply)?;
                let b = self.evaluate(&items[1], &NothingKnown, EvalMode::Apply)?;
                Ok(normalize(&a) == normalize(&b))
            }
            "Fn::Not" => {
                let items = list(1, 1, "Fn::Not")?;
                Ok(!self.condition_expr(&items[0], done, visiting)?)
            }
            "Fn::And" => {
                for item in list(2, 10, "Fn::And")? {
                    if !self.condition_expr(item, done, visiting)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "Fn::Or" => {
                for item in list(2, 10, "Fn::Or")? {
                    if self.condition_expr(item, done, visiting)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            _ => Err(bad()),
        }
    }

    fn eval(&self, value: &Value, resolver: &dyn ResourceResolver, mode: EvalMode) -> Result<V> {
        match value {
            Value::Object(map) => {
                if map.len() == 1
                    && let Some((key, arg)) = map.iter().next()
                    && (key == "Ref" || key.starts_with("Fn::"))
                {
                    let depth = self.nesting.get() + 1;
                    if depth > MAX_NESTING {
                        return Err(eval_err(format!(
                            "intrinsic functions nest deeper than {MAX_NESTING}"
                        )));
                    }
                    self.nesting.set(depth);
                    let v = self.intrinsic(key, arg, resolver, mode);
                    self.nesting.set(depth - 1);
                    let v = v?;
                    if let V::Val(v) = &v {
                        self.charge(weight(v))?;
                    }
                    return Ok(v);
                }
                let mut out = Map::new();
                for (k, v) in map {
                    match self.eval(v, resolver, mode)? {
                        V::Val(v) => {
                            out.insert(k.clone(), v);
                        }
                        V::NoValue => {}
                        V::Unknown => {
                            out.insert(k.clone(), Value::from(KNOWN_AFTER_APPLY));
                        }
                    }
                }
                Ok(V::Val(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.eval(item, resolver, mode)? {
                        V::Val(v) => out.push(v),
                        V::NoValue => {}
                        V::Unknown => out.push(Value::from(KNOWN_AFTER_APPLY)),
                    }
                }
                Ok(V::Val(Value::Array(out)))
            }
            other => Ok(V::Val(other.clone())),
        }
    }

    /// Counts `bytes` more of produced output against [`MAX_EVALUATED_BYTES`].
    fn charge(&self, bytes: usize) -> Result<()> {
        let total = self.produced.get().saturating_add(bytes);
        self.produced.set(total);
        if total > MAX_EVALUATED_BYTES {
            return Err(eval_err(format!(
                "the intrinsic functions of the template produce more than {MAX_EVALUATED_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn unknown(&self, what: String, mode: EvalMode) -> Result<V> {
        match mode {
            EvalMode::Apply => Err(TemplateError::NotYetKnown(what)),
            EvalMode::Preview => Ok(V::Unknown),
        }
    }

    /// Evaluates an argument; `Ok(None)` means unknown (preview).
    fn arg(
        &self,
        value: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
        f: &str,
    ) -> Result<Option<Value>> {
        match self.eval(value, resolver, mode)? {
            V::Val(v) if is_known(&v) => Ok(Some(v)),
            V::Val(_) | V::Unknown => Ok(None),
            V::NoValue => Err(eval_err(format!(
                "AWS::NoValue is not allowed as an argument of {f}"
            ))),
        }
    }

    fn arg_string(
        &self,
        value: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
        f: &str,
    ) -> Result<Option<String>> {
        match self.arg(value, resolver, mode, f)? {
            None => Ok(None),
            Some(v) => scalar_string(&v)
                .map(Some)
                .ok_or_else(|| eval_err(format!("{f} expects a string argument"))),
        }
    }

    fn arg_list(
        &self,
        value: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
        f: &str,
    ) -> Result<Option<Vec<Value>>> {
        match self.arg(value, resolver, mode, f)? {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(eval_err(format!("{f} expects a list argument"))),
        }
    }

    fn intrinsic(
        &self,
        key: &str,
        arg: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<V> {
        let args = |n: usize| -> Result<&Vec<Value>> {
            match arg {
                Value::Array(items) if items.len() == n => Ok(items),
                _ => Err(eval_err(format!("{key} requires a list of {n} arguments"))),
            }
        };
        let need_extensions = || -> Result<()> {
            if self.template.has_language_extensions() {
                Ok(())
            } else {
                Err(format_err(format!(
                    "{key} requires the AWS::LanguageExtensions transform"
                )))
            }
        };
        match key {
            "Ref" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| eval_err("Ref requires a string argument"))?;
                self.reference(name, resolver, mode)
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match arg {
                    Value::String(s) => match s.split_once('.') {
                        Some((r, a)) => (r.to_string(), Value::from(a)),
                        None => {
                            return Err(eval_err(format!(
                                "Fn::GetAtt {s} needs a resource and an attribute"
                            )));
                        }
                    },
                    Value::Array(items) if items.len() == 2 => match items[0].as_str() {
                        Some(r) => (r.to_string(), items[1].clone()),
                        None => return Err(eval_err("Fn::GetAtt requires a resource name")),
                    },
                    _ => return Err(eval_err("Fn::GetAtt requires [resource, attribute]")),
                };
                let Some(attribute) = self.arg_string(&attribute, resolver, mode, key)? else {
                    return self.unknown(format!("{resource}.?"), mode);
                };
                self.get_att(&resource, &attribute, resolver, mode)
            }
            "Fn::Sub" => self.sub(arg, resolver, mode),
            "Fn::Join" => {
                let items = args(2)?;
                let delimiter = items[0]
                    .as_str()
                    .ok_or_else(|| eval_err("Fn::Join requires a string delimiter"))?;
                let Some(list) = self.arg_list(&items[1], resolver, mode, key)? else {
                    return self.unknown("Fn::Join".into(), mode);
                };
                let parts = list
                    .iter()
                    .map(|v| {
                        scalar_string(v).ok_or_else(|| eval_err("Fn::Join can only join strings"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let delimiters = delimiter
                    .len()
                    .saturating_mul(parts.len().saturating_sub(1));
                self.charge(
                    parts
                        .iter()
                        .map(String::len)
                        .fold(delimiters, usize::saturating_add),
                )?;
                Ok(V::Val(Value::String(parts.join(delimiter))))
            }
            "Fn::Select" => {
                let items = args(2)?;
                let Some(index) = self.arg(&items[0], resolver, mode, key)? else {
                    return self.unknown("Fn::Select".into(), mode);
                };
                let index = scalar_string(&index)
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .ok_or_else(|| eval_err("Fn::Select requires a non-negative integer index"))?;
                let Some(list) = self.arg_list(&items[1], resolver, mode, key)? else {
                    return self.unknown("Fn::Select".into(), mode);
                };
                list.get(index).cloned().map(V::Val).ok_or_else(|| {
                    eval_err(format!(
                        "Fn::Select cannot select nonexistent value at index {index}"
                    ))
                })
            }
            "Fn::Split" => {
                let items = args(2)?;
                let delimiter = items[0]
                    .as_str()
                    .ok_or_else(|| eval_err("Fn::Split requires a string delimiter"))?;
                if delimiter.is_empty() {
                    return Err(eval_err("Fn::Split requires a non-empty delimiter"));
                }
                let Some(source) = self.arg_string(&items[1], resolver, mode, key)? else {
                    return self.unknown("Fn::Split".into(), mode);
                };
                Ok(V::Val(Value::Array(
                    source.split(delimiter).map(Value::from).collect(),
                )))
            }
            "Fn::FindInMap" => self.find_in_map(arg, resolver, mode),
            "Fn::If" => {
                let items = args(3)?;
                let name = items[0]
                    .as_str()
                    .ok_or_else(|| eval_err("Fn::If requires a condition name"))?;
                let branch = if self.condition(name)? {
                    &items[1]
                } else {
                    &items[2]
                };
                self.eval(branch, resolver, mode)
            }
            "Fn::Base64" => match self.arg_string(arg, resolver, mode, key)? {
                Some(s) => Ok(V::Val(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(s),
                ))),
                None => self.unknown("Fn::Base64".into(), mode),
            },
            "Fn::GetAZs" => match self.arg_string(arg, resolver, mode, key)? {
                Some(_) => Ok(V::Val(Value::Array(
                    self.env
                        .availability_zones
                        .iter()
                        .map(|z| Value::from(z.as_str()))
                        .collect(),
                ))),
                None => self.unknown("Fn::GetAZs".into(), mode),
            },
            "Fn::Cidr" => {
                let items = args(3)?;
                let mut texts = Vec::new();
                for item in items {
                    match self.arg_string(item, resolver, mode, key)? {
                        Some(s) => texts.push(s),
                        None => return self.unknown("Fn::Cidr".into(), mode),
                    }
                }
                let count = texts[1]
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| eval_err("Fn::Cidr count must be a number"))?;
                let bits = texts[2]
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| eval_err("Fn::Cidr cidrBits must be a number"))?;
                let blocks = cidr(&texts[0], count, bits)?;
                Ok(V::Val(Value::Array(
                    blocks.into_iter().map(Value::String).collect(),
                )))
            }
            "Fn::ImportValue" => match self.arg_string(arg, resolver, mode, key)? {
                Some(name) => match self.env.exports.get(&name) {
                    Some(v) => Ok(V::Val(Value::String(v.clone()))),
                    None => Err(TemplateError::ExportNotFound(name)),
                },
                None => self.unknown("Fn::ImportValue".into(), mode),
            },
            "Fn::Length" => {
                need_extensions()?;
                match self.arg_list(arg, resolver, mode, key)? {
                    Some(list) => Ok(V::Val(Value::from(list.len()))),
                    None => self.unknown("Fn::Length".into(), mode),
                }
            }
            "Fn::ToJsonString" => {
                need_extensions()?;
                match self.arg(arg, resolver, mode, key)? {
                    Some(v) => Ok(V::Val(Value::String(v.to_string()))),
                    None => self.unknown("Fn::ToJsonString".into(), mode),
                }
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => Err(eval_err(format!(
                "{key} can only be used in the Conditions block of the template"
            ))),
            "Fn::Transform" | "Fn::ForEach" => {
                Err(format_err(format!("{key} is not supported by Kindling")))
            }
            other => Err(format_err(format!(
                "Encountered unsupported function: {other} Supported functions are: {SUPPORTED_FUNCTIONS}"
            ))),
        }
    }

    fn reference(&self, name: &str, resolver: &dyn ResourceResolver, mode: EvalMode) -> Result<V> {
        if name == "AWS::NoValue" {
            return Ok(V::NoValue);
        }
        if let Some(v) = self.env.pseudo.get(name) {
            return Ok(V::Val(v));
        }
        if let Some(p) = self.parameters.get(name) {
            return Ok(V::Val(p.value.to_value()));
        }
        if self.template.parameters.contains_key(name) {
            return Err(eval_err(format!("Parameter {name} has no value")));
        }
        if !self.is_active(name) {
            return Err(TemplateError::UnresolvedResources {
                names: vec![name.to_string()],
                block: "Resources",
            });
        }
        match resolver.ref_value(name) {
            Some(v) => Ok(V::Val(v)),
            None => self.unknown(name.to_string(), mode),
        }
    }

    fn get_att(
        &self,
        resource: &str,
        attribute: &str,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<V> {
        let Some(r) = self.template.resources.get(resource) else {
            return Err(TemplateError::UnresolvedResources {
                names: vec![resource.to_string()],
                block: "Resources",
            });
        };
        if !self.is_active(resource) {
            return Err(TemplateError::UnresolvedResources {
                names: vec![resource.to_string()],
                block: "Resources",
            });
        }
        if let Some(spec) = types::resource_type(&r.resource_type)
            && !spec.has_attribute(attribute)
        {
            return Err(TemplateError::UnknownAttribute {
                resource: resource.to_string(),
                attribute: attribute.to_string(),
            });
        }
        match resolver.attribute(resource, attribute) {
            Some(v) => Ok(V::Val(v)),
            None => self.unknown(format!("{resource}.{attribute}"), mode),
        }
    }

    fn sub(&self, arg: &Value, resolver: &dyn ResourceResolver, mode: EvalMode) -> Result<V> {
        let bad = || {
            eval_err(
                "One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string",
            )
        };
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(items) if items.len() == 1 || items.len() == 2 => {
                let text = items[0].as_str().ok_or_else(bad)?;
                let vars = match items.get(1) {
                    None => None,
                    Some(Value::Object(m)) => Some(m),
                    Some(_) => return Err(bad()),
                };
                (text, vars)
            }
            _ => return Err(bad()),
        };
        let mut out = String::new();
        let mut unknown = false;
        // Each local variable is evaluated once, however often the text names it.
        let mut locals: HashMap<String, V> = HashMap::new();
        for part in parse_sub(text) {
            match part {
                SubPart::Literal(l) => {
                    self.charge(l.len())?;
                    out.push_str(&l);
                }
                SubPart::Variable(name) => {
                    let v = match (vars.and_then(|m| m.get(&name)), locals.get(&name)) {
                        (Some(_), Some(done)) => done.clone(),
                        (Some(local), None) => {
                            let v = self.eval(local, resolver, mode)?;
                            locals.insert(name.clone(), v.clone());
                            v
                        }
                        (None, _) => match name.split_once('.') {
                            Some((r, a)) if !name.starts_with("AWS::") => {
                                self.get_att(r, a, resolver, mode)?
                            }
                            _ => {
                                if !is_defined_name(self.template, &name) {
                                    return Err(TemplateError::UnresolvedResources {
                                        names: vec![name.clone()],
                                        block: "Resources",
                                    });
                                }
                                self.reference(&name, resolver, mode)?
                            }
                        },
                    };
                    match v {
                        V::Val(v) if !is_known(&v) => unknown = true,
                        V::Val(v) => {
                            let text = scalar_string(&v).ok_or_else(|| {
                                eval_err(format!(
                                    "variable {name} in Fn::Sub expression does not resolve to a string"
                                ))
                            })?;
                            self.charge(text.len())?;
                            out.push_str(&text);
                        }
                        V::Unknown => unknown = true,
                        V::NoValue => {
                            return Err(eval_err(format!(
                                "variable {name} in Fn::Sub expression is AWS::NoValue"
                            )));
                        }
                    }
                }
            }
        }
        if unknown {
            self.unknown("Fn::Sub".into(), mode)
        } else {
            Ok(V::Val(Value::String(out)))
        }
    }

    fn find_in_map(
        &self,
        arg: &Value,
        resolver: &dyn ResourceResolver,
        mode: EvalMode,
    ) -> Result<V> {
        let items = match arg {
            Value::Array(items) if items.len() == 3 || items.len() == 4 => items,
            _ => {
                return Err(eval_err(
                    "Fn::FindInMap requires [MapName, TopLevelKey, SecondLevelKey]",
                ));
            }
        };
        let default = match items.get(3) {
            None => None,
            Some(Value::Object(o))
                if self.template.has_language_extensions() && o.contains_key("DefaultValue") =>
            {
                o.get("DefaultValue")
            }
            Some(_) => {
                return Err(format_err(
                    "Fn::FindInMap takes a DefaultValue only with the AWS::LanguageExtensions transform",
                ));
            }
        };
        let mut keys = Vec::new();
        for item in &items[..3] {
            match self.arg_string(item, resolver, mode, "Fn::FindInMap")? {
                Some(k) => keys.push(k),
                None => return self.unknown("Fn::FindInMap".into(), mode),
            }
        }
        let found = self
            .template
            .mappings
            .get(&keys[0])
            .and_then(|m| m.get(&keys[1]))
            .and_then(|m| m.get(&keys[2]));
        match (found, default) {
            (Some(v), _) => self.eval(v, resolver, mode),
            (None, Some(d)) => self.eval(d, resolver, mode),
            (None, None) => Err(TemplateError::MappingNotFound {
                map: keys[0].clone(),
                top: keys[1].clone(),
                second: keys[2].clone(),
            }),
        }
    }
}

fn is_defined_name(template: &Template, name: &str) -> bool {
    PSEUDO_PARAMETERS.contains(&name)
        || template.parameters.contains_key(name)
        || template.resources.contains_key(name)
}

/// A scalar as text (`5` → "5", `true` → "true").
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The bytes a value holds, roughly: its strings' lengths plus 8 per node.
fn weight(value: &Value) -> usize {
    match value {
        Value::String(s) => 8 + s.len(),
        Value::Array(items) => items.iter().map(weight).fold(8, usize::saturating_add),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| k.len() + weight(v))
            .fold(8, usize::saturating_add),
        _ => 8,
    }
}

/// Values compared by `Fn::Equals`: scalars by their text.
fn normalize(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Number(_) | Value::Bool(_) => {
            Value::String(scalar_string(value).unwrap_or_default())
        }
        other => other.clone(),
    }
}

/// `Fn::Cidr`: `count` blocks with `bits` host bits each, carved from `block` in order.
pub fn cidr(block: &str, count: u32, bits: u32) -> Result<Vec<String>> {
    let bad = || eval_err(format!("Fn::Cidr: {block} is not a valid CIDR block"));
    let (addr, prefix) = block.split_once('/').ok_or_else(bad)?;
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    if !(1..=256).contains(&count) {
        return Err(eval_err("Fn::Cidr count must be between 1 and 256"));
    }
    let (base, width, v6) = if let Ok(v4) = addr.parse::<std::net::Ipv4Addr>() {
        (u128::from(u32::from(v4)), 32u32, false)
    } else if let Ok(v6) = addr.parse::<std::net::Ipv6Addr>() {
        (u128::from(v6), 128u32, true)
    } else {
        return Err(bad());
    };
    if prefix > width || bits == 0 || bits >= 128 || bits > width - prefix {
        return Err(eval_err(format!(
            "Fn::Cidr: cidrBits {bits} does not fit in {block}"
        )));
    }
    let new_prefix = width - bits;
    let available: u128 = 1u128 << (new_prefix - prefix).min(127);
    if u128::from(count) > available {
        return Err(eval_err(format!(
            "Fn::Cidr: {block} cannot hold {count} blocks of {bits} bits"
        )));
    }
    let host_mask: u128 = if width - prefix >= 128 {
        u128::MAX
    } else {
        (1u128 << (width - prefix)) - 1
    };
    let network = base & !host_mask;
    let step = 1u128 << bits;
    Ok((0..u128::from(count))
        .map(|i| {
            let start = network + i * step;
            if v6 {
                format!("{}/{new_prefix}", std::net::Ipv6Addr::from(start))
            } else {
                format!("{}/{new_prefix}", std::net::Ipv4Addr::from(start as u32))
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ParameterInput, resolve_parameters};
    use serde_json::json;

    struct Fixture {
        template: Template,
        params: ResolvedParameters,
        pseudo: PseudoParameters,
        azs: Vec<String>,
        exports: HashMap<String, String>,
    }

    impl Fixture {
        fn new(doc: Value, inputs: &[(&str, &str)]) -> Self {
            let template = Template::from_value(doc).expect("template");
            let inputs: Vec<ParameterInput> = inputs
                .iter()
                .map(|(k, v)| ParameterInput {
                    key: (*k).into(),
                    value: Some((*v).into()),
                    use_previous_value: false,
                })
                .collect();
            let params = resolve_parameters(&template.parameters, &inputs, None).expect("params");
            let stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1";
            Self {
                template,
                params,
                pseudo: PseudoParameters::new("123456789012", "us-east-1", "app-stack", stack_id),
                azs: vec!["us-east-1a".into(), "us-east-1b".into()],
                exports: [("shared".to_string(), "exported".to_string())]
                    .into_iter()
                    .collect(),
            }
        }

        fn evaluator(&self) -> Evaluator<'_> {
            let env = Environment {
                pseudo: &self.pseudo,
                availability_zones: &self.azs,
                exports: &self.exports,
            };
            Evaluator::new(&self.template, &self.params, env).expect("conditions")
        }
    }

    fn doc(extra: Value) -> Value {
        let mut d = json!({
            "Parameters": {
                "Env": {"Type": "String", "Default": "dev"},
                "List": {"Type": "CommaDelimitedList", "Default": "a,b,c"},
                "Count": {"Type": "Number", "Default": 3}
            },
            "Mappings": {"M": {"dev": {"Size": 1, "Name": "small"}}},
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
                "Three": {"Fn::Equals": [{"Ref": "Count"}, 3]},
                "Both": {"Fn::And": [{"Condition": "NotProd"}, {"Condition": "Three"}]},
                "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["x", "y"]}]}
            },
            "Resources": {
                "Q": {"Type": "AWS::SQS::Queue"},
                "P": {"Type": "AWS::SNS::Topic", "Condition": "IsProd"}
            }
        });
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        d
    }

    fn resolver() -> MapResolver {
        let mut r = MapResolver::default();
        r.refs.insert("Q".into(), json!("https://sqs/q"));
        r.attributes.insert(
            ("Q".into(), "Arn".into()),
            json!("arn:aws:sqs:us-east-1:123456789012:q"),
        );
        r
    }

    fn eval(f: &Fixture, v: Value) -> Result<Value> {
        f.evaluator().evaluate(&v, &resolver(), EvalMode::Apply)
    }

    #[test]
    fn conditions() {
        let f = Fixture::new(doc(json!({})), &[]);
        let ev = f.evaluator();
        let c = ev.conditions();
        assert_eq!(
            (
                c["IsProd"],
                c["NotProd"],
                c["Three"],
                c["Both"],
                c["Either"]
            ),
            (false, true, true, true, false)
        );
        assert_eq!(ev.active_resources(), ["Q"]);
        let f = Fixture::new(doc(json!({})), &[("Env", "prod")]);
        assert_eq!(f.evaluator().active_resources(), ["Q", "P"]);
    }

    #[test]
    fn refs_getatt_sub() {
        let f = Fixture::new(doc(json!({})), &[]);
        assert_eq!(eval(&f, json!({"Ref": "Env"})).expect("ref"), json!("dev"));
        assert_eq!(
            eval(&f, json!({"Ref": "Count"})).expect("number param is a string"),
            json!("3")
        );
        assert_eq!(
            eval(&f, json!({"Ref": "List"})).expect("list"),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            eval(&f, json!({"Ref": "Q"})).expect("resource"),
            json!("https://sqs/q")
        );
        assert_eq!(
            eval(&f, json!({"Ref": "AWS::Region"})).expect("pseudo"),
            json!("us-east-1")
        );
        assert_eq!(
            eval(&f, json!({"Fn::GetAtt": ["Q", "Arn"]})).expect("getatt"),
            json!("arn:aws:sqs:us-east-1:123456789012:q")
        );
        assert_eq!(
            eval(&f, json!({"Fn::GetAtt": "Q.Arn"})).expect("string getatt"),
            json!("arn:aws:sqs:us-east-1:123456789012:q")
        );
        assert_eq!(
            eval(
                &f,
                json!({"Fn::Sub": "${Env}-${Q}-${Q.Arn}-${AWS::AccountId}-${!Literal}"})
            )
            .expect("sub"),
            json!("dev-https://sqs/q-arn:aws:sqs:us-east-1:123456789012:q-123456789012-${Literal}")
        );
        assert_eq!(
            eval(
                &f,
                json!({"Fn::Sub": ["${a}/${Env}", {"a": {"Fn::Join": ["+", ["x", "y"]]}}]})
            )
            .expect("sub vars"),
            json!("x+y/dev")
        );
        let err = eval(&f, json!({"Fn::GetAtt": ["Q", "Nope"]})).expect_err("bad attribute");
        assert_eq!(
            err.to_string(),
            "Template error: resource Q does not support attribute type Nope in Fn::GetAtt"
        );
        let err = eval(&f, json!({"Ref": "P"})).expect_err("inactive resource");
        assert!(
            err.to_string()
                .contains("Unresolved resource dependencies [P]"),
            "{err}"
        );
    }

    #[test]
    fn list_and_string_functions() {
        let f = Fixture::new(doc(json!({})), &[]);
        assert_eq!(
            eval(&f, json!({"Fn::Join": [",", {"Ref": "List"}]})).expect("join"),
            json!("a,b,c")
        );
        assert_eq!(
            eval(&f, json!({"Fn::Select": ["1", {"Ref": "List"}]})).expect("select"),
            json!("b")
        );
        assert_eq!(
            eval(&f, json!({"Fn::Split": ["|", "a|b"]})).expect("split"),
            json!(["a", "b"])
        );
        assert_eq!(
            eval(&f, json!({"Fn::FindInMap": ["M", {"Ref": "Env"}, "Name"]})).expect("map"),
            json!("small")
        );
        assert_eq!(
            eval(&f, json!({"Fn::Base64": "hello"})).expect("b64"),
            json!("aGVsbG8=")
        );
        assert_eq!(
            eval(&f, json!({"Fn::GetAZs": ""})).expect("azs"),
            json!(["us-east-1a", "us-east-1b"])
        );
        assert_eq!(
            eval(&f, json!({"Fn::ImportValue": "shared"})).expect("import"),
            json!("exported")
        );
        assert_eq!(
            eval(&f, json!({"Fn::Cidr": ["10.0.0.0/16", 3, 8]})).expect("cidr"),
            json!(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
        );
        assert_eq!(
            eval(&f, json!({"Fn::Cidr": ["2001:db8::/56", 2, 64]})).expect("cidr v6"),
            json!(["2001:db8::/64", "2001:db8:0:1::/64"])
        );
        assert!(eval(&f, json!({"Fn::Cidr": ["::/0", 1, 128]})).is_err());
        assert!(
            eval(&f, json!({"Fn::Cidr": ["10.0.0.0/24", 2, 8]})).is_err(),
            "two /24 in a /24"
        );
        assert_eq!(
            eval(&f, json!({"Fn::Cidr": ["0.0.0.0/0", 1, 32]})).expect("whole v4"),
            json!(["0.0.0.0/0"])
        );
        let err = eval(&f, json!({"Fn::Select": [5, ["a"]]})).expect_err("index");
        assert_eq!(
            err.to_string(),
            "Template error: Fn::Select cannot select nonexistent value at index 5"
        );
        let err = eval(&f, json!({"Fn::FindInMap": ["M", "prod", "Name"]})).expect_err("mapping");
        assert_eq!(
            err.to_string(),
            "Template error: Unable to get mapping for M::prod::Name"
        );
        let err = eval(&f, json!({"Fn::ImportValue": "nope"})).expect_err("export");
        assert_eq!(
            err.to_string(),
            "No export named nope found. Rollback requested by user."
        );
        let err = eval(&f, json!({"Fn::Length": [1]})).expect_err("needs extensions");
        assert!(err.to_string().contains("AWS::LanguageExtensions"), "{err}");
        let err = eval(&f, json!({"Fn::Bogus": 1})).expect_err("unknown fn");
        assert!(
            err.to_string()
                .starts_with("Template format error: Encountered unsupported function: Fn::Bogus"),
            "{err}"
        );
    }

    #[test]
    fn language_extensions() {
        let f = Fixture::new(doc(json!({"Transform": "AWS::LanguageExtensions"})), &[]);
        assert_eq!(
            eval(&f, json!({"Fn::Length": {"Ref": "List"}})).expect("length"),
            json!(3)
        );
        assert_eq!(
            eval(&f, json!({"Fn::ToJsonString": {"a": [1, {"Ref": "Env"}]}})).expect("json"),
            json!("{\"a\":[1,\"dev\"]}")
        );
        assert_eq!(
            eval(
                &f,
                json!({"Fn::FindInMap": ["M", "qa", "Name", {"DefaultValue": "fallback"}]})
            )
            .expect("default"),
            json!("fallback")
        );
    }

    #[test]
    fn if_and_no_value_remove_properties_and_items() {
        let f = Fixture::new(doc(json!({})), &[]);
        let v = json!({
            "Keep": 1,
            "Gone": {"Fn::If": ["IsProd", 5, {"Ref": "AWS::NoValue"}]},
            "List": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}, {"Fn::If": ["NotProd", "c", "d"]}]
        });
        assert_eq!(
            eval(&f, v).expect("if"),
            json!({"Keep": 1, "List": ["a", "c"]})
        );
    }

    /// `${A}${A}` nested `depth` deep around `inner`.
    fn doubling_sub(depth: usize, inner: Value) -> Value {
        (0..depth).fold(inner, |v, _| json!({"Fn::Sub": ["${A}${A}", {"A": v}]}))
    }

    #[test]
    fn amplifying_intrinsics_are_bounded() {
        let f = Fixture::new(doc(json!({})), &[]);
        let ev = f.evaluator();
        // Repeated locals keep their meaning, evaluated once.
        let v = doubling_sub(3, json!("ab"));
        let out = ev
            .evaluate(&v, &resolver(), EvalMode::Apply)
            .expect("small");
        assert_eq!(out, json!("ab".repeat(8)));
        let started = std::time::Instant::now();
        // 2^30 copies of one byte (and 2^30 evaluations before locals were evaluated once).
        let bomb = doubling_sub(30, json!("x"));
        let err = ev
            .evaluate(&bomb, &resolver(), EvalMode::Apply)
            .expect_err("bounded");
        assert!(err.to_string().contains("produce more than"), "{err}");
        // Unknown values (a change-set preview) must not re-evaluate exponentially either.
        let unknown = doubling_sub(30, json!({"Fn::Sub": "${Q.Arn}"}));
        let preview = f
            .evaluator()
            .evaluate(&unknown, &NothingKnown, EvalMode::Preview);
        assert_eq!(preview.expect("preview"), json!(KNOWN_AFTER_APPLY));
        // A long delimiter over a long split: 200k parts times 1 KB.
        let join =
            json!({"Fn::Join": ["d".repeat(1024), {"Fn::Split": [",", ",".repeat(200_000)]}]});
        let err = f
            .evaluator()
            .evaluate(&join, &resolver(), EvalMode::Apply)
            .expect_err("bounded");
        assert!(err.to_string().contains("produce more than"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn deep_intrinsics_are_refused_not_a_stack_overflow() {
        let nest =
            |depth: usize, f: &dyn Fn(Value) -> Value| (0..depth).fold(json!("x"), |v, _| f(v));
        let b64 = nest(120, &|v| json!({"Fn::Base64": v}));
        let select = nest(60, &|v| json!({"Fn::Select": [0, [v]]}));
        let ok = nest(MAX_NESTING, &|v| json!({"Fn::Select": [0, [v]]}));
        let plain = nest(120, &|v| json!([v]));
        let results = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let f = Fixture::new(doc(json!({})), &[]);
                [b64, select, ok, plain].map(|v| {
                    f.evaluator()
                        .evaluate(&v, &resolver(), EvalMode::Apply)
                        .map_err(|e| e.to_string())
                })
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        let [b64, select, ok, plain] = results;
        assert!(b64.unwrap_err().contains("nest deeper than 32"));
        assert!(select.unwrap_err().contains("nest deeper than 32"));
        assert_eq!(ok.expect("32 levels"), json!("x"));
        assert!(plain.is_ok());
    }

    #[test]
    fn preview_and_apply_modes() {
        let f = Fixture::new(doc(json!({})), &[]);
        let ev = f.evaluator();
        let v = json!({"Url": {"Ref": "Q"}, "Name": {"Fn::Sub": "x-${Q.Arn}"}, "Plain": {"Ref": "Env"}});
        let preview = ev
            .evaluate(&v, &NothingKnown, EvalMode::Preview)
            .expect("preview");
        assert_eq!(
            preview,
            json!({"Url": KNOWN_AFTER_APPLY, "Name": KNOWN_AFTER_APPLY, "Plain": "dev"})
        );
        assert!(!is_known(&preview));
        let err = ev
            .evaluate(&v, &NothingKnown, EvalMode::Apply)
            .expect_err("apply needs values");
        assert!(matches!(err, TemplateError::NotYetKnown(_)));
    }

    #[test]
    fn outputs() {
        let f = Fixture::new(
            doc(json!({"Outputs": {
                "A": {"Value": {"Ref": "Q"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-A"}}},
                "B": {"Value": {"Ref": "P"}, "Condition": "IsProd"},
                "C": {"Value": {"Fn::If": ["NotProd", "np", "p"]}, "Description": "d"}
            }})),
            &[],
        );
        let out = f
            .evaluator()
            .outputs(&resolver(), EvalMode::Apply)
            .expect("outputs");
        assert_eq!(
            out,
            vec![
                EvaluatedOutput {
                    key: "A".into(),
                    value: "https://sqs/q".into(),
                    description: None,
                    export_name: Some("app-stack-A".into())
                },
                EvaluatedOutput {
                    key: "C".into(),
                    value: "np".into(),
                    description: Some("d".into()),
                    export_name: None
                },
            ]
        );
    }

    #[test]
    fn condition_cycles_are_errors() {
        let d = json!({"Conditions": {"A": {"Condition": "B"}, "B": {"Fn::Not": [{"Condition": "A"}]}},
                       "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}});
        let template = Template::from_value(d).expect("template");
        let params = ResolvedParameters::default();
        let pseudo = PseudoParameters::new("1", "r", "s", "id");
        let exports = HashMap::new();
        let env = Environment {
            pseudo: &pseudo,
            availability_zones: &[],
            exports: &exports,
        };
        let err = Evaluator::new(&template, &params, env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("Circular dependency between conditions"),
            "{err}"
        );
    }
}
