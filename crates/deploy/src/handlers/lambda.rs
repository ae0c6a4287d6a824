//! AWS::Lambda::* over the control plane.

use std::io::Write;

use base64::Engine;
use kindling_control::ControlError;
use kindling_control::input::{
    AddPermission, CreateAlias, CreateFunction, EventInvokeConfigInput, PublishLayerVersion,
    PublishVersion, UpdateAlias, UpdateFunctionCode, UpdateFunctionConfiguration,
};
use kindling_model::FunctionRef;
use kindling_model::layer::LayerVersionRef;
use serde_json::{Map, Value, json};

use super::props::{number, string, tags, text};
use super::{Kindling, Outcome, blocking, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

fn err(e: ControlError) -> ProvisionError {
    ProvisionError::new(e.to_string())
}

fn missing_ok(r: Result<(), ControlError>) -> Result<(), ProvisionError> {
    match r {
        Ok(()) | Err(ControlError::NotFound(_)) => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// A function's name from a name or an ARN (qualifier dropped).
fn name_of(raw: &str) -> String {
    FunctionRef::parse(raw, true).map_or_else(|_| raw.to_string(), |r| r.name)
}

pub fn function_name(ctx: &ResourceContext, props: &Map<String, Value>) -> String {
    string(props, "FunctionName").unwrap_or_else(|| generated(ctx, 64))
}

/// Inline `Code.ZipFile` source as a zip with `index.py` / `index.js` (CloudFormation's rule).
fn inline_zip(source: &str, runtime: &str) -> Result<String, ProvisionError> {
    let file = if runtime.starts_with("nodejs") {
        "index.js"
    } else {
        "index.py"
    };
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        zip.start_file(file, options)
            .map_err(|e| ProvisionError::new(format!("packaging inline code: {e}")))?;
        zip.write_all(source.as_bytes())
            .map_err(|e| ProvisionError::new(format!("packaging inline code: {e}")))?;
        zip.finish()
            .map_err(|e| ProvisionError::new(format!("packaging inline code: {e}")))?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(buf.into_inner()))
}

/// The control plane's JSON shape from CloudFormation's properties.
fn api_shape(props: &Map<String, Value>) -> Result<Value, ProvisionError> {
    let mut m = props.clone();
    for key in ["MemorySize", "Timeout"] {
        if let Some(v) = m.get(key).and_then(number) {
            m.insert(key.to_string(), json!(v));
        }
    }
    if let Some(size) = m
        .get("EphemeralStorage")
        .and_then(|e| e.get("Size"))
        .and_then(number)
    {
        m.insert("EphemeralStorage".into(), json!({ "Size": size }));
    }
    if let Some(Value::Object(env)) = m.get("Environment").cloned() {
        let mut vars = Map::new();
        if let Some(Value::Object(v)) = env.get("Variables") {
            for (k, val) in v {
                vars.insert(k.clone(), Value::String(text(val).unwrap_or_default()));
            }
        }
        m.insert("Environment".into(), json!({ "Variables": vars }));
    }
    if let Some(Value::Object(code)) = m.get("Code").cloned() {
        let mut code = code;
        if let Some(Value::String(src)) = code.get("ZipFile").cloned() {
            let runtime = string(props, "Runtime").unwrap_or_default();
            code.insert("ZipFile".into(), Value::String(inline_zip(&src, &runtime)?));
        }
        m.insert("Code".into(), Value::Object(code));
    }
    m.remove("Tags");
    m.remove("ReservedConcurrentExecutions");
    Ok(Value::Object(m))
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ProvisionError> {
    serde_json::from_value(v)
        .map_err(|e| ProvisionError::new(format!("Properties validation failed: {e}")))
}

fn function_outcome(k: &Kindling, name: &str) -> Provisioned {
    let arn = k.control.arn().function_arn(name);
    Provisioned::named(name).attr("Arn", arn)
}

pub async fn create_function(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let name = function_name(ctx, props);
    let mut shape = api_shape(props)?;
    if let Some(o) = shape.as_object_mut() {
        o.insert("FunctionName".into(), Value::String(name.clone()));
    }
    let mut req: CreateFunction = parse(shape)?;
    let t = tags(props);
    if !t.is_empty() {
        req.tags = Some(t);
    }
    let reserved = props.get("ReservedConcurrentExecutions").and_then(number);
    let control = std::sync::Arc::clone(&k.control);
    let n = name.clone();
    blocking(move || {
        control.create_function(req).map_err(err)?;
        if let Some(r) = reserved {
            control.put_concurrency(&n, Some(r)).map_err(err)?;
        }
        Ok(())
    })
    .await?;
    Ok(function_outcome(k, &name))
}

pub async fn update_function(
    k: &Kindling,
    name: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let mut shape = api_shape(new)?;
    let code_changed = old.get("Code") != new.get("Code");
    let code: Option<UpdateFunctionCode> = if code_changed {
        let code = shape.get("Code").cloned().unwrap_or(Value::Null);
        Some(parse(code)?)
    } else {
        None
    };
    if let Some(o) = shape.as_object_mut() {
        o.remove("Code");
        o.remove("FunctionName");
        o.remove("PackageType");
        o.remove("Architectures");
        // Members the new template dropped go back to Lambda's defaults.
        o.entry("Environment").or_insert(json!({ "Variables": {} }));
        o.entry("Layers").or_insert(json!([]));
        o.entry("Description").or_insert(json!(""));
        o.entry("MemorySize").or_insert(json!(128));
        o.entry("Timeout").or_insert(json!(3));
    }
    let config: UpdateFunctionConfiguration = parse(shape)?;
    let reserved_old = old.get("ReservedConcurrentExecutions").and_then(number);
    let reserved_new = new.get("ReservedConcurrentExecutions").and_then(number);
    let control = std::sync::Arc::clone(&k.control);
    let n = name.to_string();
    blocking(move || {
        if let Some(code) = code {
            control.update_function_code(&n, code).map_err(err)?;
        }
        control
            .update_function_configuration(&n, config)
            .map_err(err)?;
        if reserved_old != reserved_new {
            match reserved_new {
                Some(r) => {
                    control.put_concurrency(&n, Some(r)).map_err(err)?;
                }
                None => control.delete_concurrency(&n).map_err(err)?,
            }
        }
        Ok(())
    })
    .await?;
    Ok(function_outcome(k, name))
}

pub async fn delete_function(k: &Kindling, name: &str) -> Result<(), ProvisionError> {
    let control = std::sync::Arc::clone(&k.control);
    let n = name.to_string();
    blocking(move || missing_ok(control.delete_function(&n, None))).await
}

pub fn version_outcome(k: &Kindling, arn: &str) -> Outcome {
    let r = FunctionRef::parse(arn, true).map_err(|e| ProvisionError::new(e.to_string()))?;
    let version = match &r.qualifier {
        Some(q) => q.to_string(),
        None => String::new(),
    };
    Ok(Provisioned::named(arn)
        .attr("Version", version)
        .attr("FunctionArn", k.control.arn().function_arn(&r.name)))
}

pub async fn create_version(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let function = name_of(&super::props::required(props, "FunctionName")?);
    let req = PublishVersion {
        code_sha256: string(props, "CodeSha256"),
        description: string(props, "Description"),
        revision_id: None,
    };
    let control = std::sync::Arc::clone(&k.control);
    let f = function.clone();
    let rec = blocking(move || control.publish_version(&f, req).map_err(err)).await?;
    let arn = k.control.arn().qualified_arn(&function, &rec.qualifier());
    let config = props.get("ProvisionedConcurrencyConfig");
    super::provisioned::apply(k, &function, &rec.qualifier().to_string(), config, false).await?;
    version_outcome(k, &arn)
}

/// A version is immutable; only its `ProvisionedConcurrencyConfig` can change in place.
pub async fn update_version(
    k: &Kindling,
    arn: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let r = FunctionRef::parse(arn, true).map_err(|e| ProvisionError::new(e.to_string()))?;
    let config = new.get("ProvisionedConcurrencyConfig");
    if let Some(q) = &r.qualifier
        && config != old.get("ProvisionedConcurrencyConfig")
    {
        let had = old.contains_key("ProvisionedConcurrencyConfig");
        super::provisioned::apply(k, &r.name, &q.to_string(), config, had).await?;
    }
    version_outcome(k, arn)
}

pub async fn delete_version(k: &Kindling, arn: &str) -> Result<(), ProvisionError> {
    let control = std::sync::Arc::clone(&k.control);
    let a = arn.to_string();
    blocking(move || match control.delete_function(&a, None) {
        // A version an alias still points at stays (the alias goes first in a deletion).
        Err(ControlError::Conflict(_)) => Ok(()),
        other => missing_ok(other),
    })
    .await?;
    if let Ok(r) = FunctionRef::parse(arn, true) {
        super::provisioned::released(k, &r.name).await;
    }
    Ok(())
}

fn routing(props: &Map<String, Value>) -> Value {
    let mut weights = Map::new();
    if let Some(list) = props
        .get("RoutingConfig")
        .and_then(|r| r.get("AdditionalVersionWeights"))
        .and_then(Value::as_array)
    {
        for w in list {
            if let (Some(v), Some(weight)) = (
                w.get("FunctionVersion").and_then(text),
                w.get("FunctionWeight")
                    .and_then(|x| x.as_f64().or_else(|| text(x)?.parse().ok())),
            ) {
                weights.insert(v, json!(weight));
            }
        }
    }
    json!({ "AdditionalVersionWeights": weights })
}

fn alias_outcome(k: &Kindling, function: &str, name: &str) -> Provisioned {
    let arn = format!("{}:{name}", k.control.arn().function_arn(function));
    Provisioned::named(arn.clone()).attr("AliasArn", arn)
}

pub async fn create_alias(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let function = name_of(&super::props::required(props, "FunctionName")?);
    let name = super::props::required(props, "Name")?;
    let req = CreateAlias {
        name: Some(name.clone()),
        function_version: string(props, "FunctionVersion"),
        description: string(props, "Description"),
        routing_config: Some(parse(routing(props))?),
    };
    let control = std::sync::Arc::clone(&k.control);
    let f = function.clone();
    blocking(move || control.create_alias(&f, req).map(|_| ()).map_err(err)).await?;
    let config = props.get("ProvisionedConcurrencyConfig");
    super::provisioned::apply(k, &function, &name, config, false).await?;
    Ok(alias_outcome(k, &function, &name))
}

fn split_alias(arn: &str) -> Result<(String, String), ProvisionError> {
    let r = FunctionRef::parse(arn, true).map_err(|e| ProvisionError::new(e.to_string()))?;
    let alias = r
        .qualifier
        .map(|q| q.to_string())
        .ok_or_else(|| ProvisionError::new(format!("{arn} is not an alias ARN")))?;
    Ok((r.name, alias))
}

pub async fn update_alias(
    k: &Kindling,
    arn: &str,
    old: &Map<String, Value>,
    props: &Map<String, Value>,
) -> Outcome {
    let (function, name) = split_alias(arn)?;
    let req = UpdateAlias {
        function_version: string(props, "FunctionVersion"),
        description: Some(string(props, "Description").unwrap_or_default()),
        routing_config: Some(parse(routing(props))?),
        revision_id: None,
    };
    let control = std::sync::Arc::clone(&k.control);
    let (f, n) = (function.clone(), name.clone());
    blocking(move || control.update_alias(&f, &n, req).map(|_| ()).map_err(err)).await?;
    // The alias may have moved to another version (its environments follow it) and its
    // configuration may have changed: either way it is READY before the alias is complete.
    let config = props.get("ProvisionedConcurrencyConfig");
    let had = old.contains_key("ProvisionedConcurrencyConfig");
    if config.is_some() || had {
        super::provisioned::apply(k, &function, &name, config, had).await?;
    }
    Ok(alias_outcome(k, &function, &name))
}

pub async fn delete_alias(k: &Kindling, arn: &str) -> Result<(), ProvisionError> {
    let (function, name) = split_alias(arn)?;
    let control = std::sync::Arc::clone(&k.control);
    let f = function.clone();
    blocking(move || missing_ok(control.delete_alias(&f, &name))).await?;
    super::provisioned::released(k, &function).await;
    Ok(())
}

/// The function and qualifier a permission's `FunctionName` names.
fn target(raw: &str) -> (String, Option<String>) {
    match FunctionRef::parse(raw, true) {
        Ok(r) => (r.name, r.qualifier.map(|q| q.to_string())),
        Err(_) => (raw.to_string(), None),
    }
}

pub async fn add_permission(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let (function, qualifier) = target(&super::props::required(props, "FunctionName")?);
    let sid = generated(ctx, 100);
    let req = AddPermission {
        statement_id: Some(sid.clone()),
        action: string(props, "Action"),
        principal: string(props, "Principal"),
        source_arn: string(props, "SourceArn"),
        source_account: string(props, "SourceAccount"),
        event_source_token: string(props, "EventSourceToken"),
        revision_id: None,
        principal_org_id: string(props, "PrincipalOrgID"),
        function_url_auth_type: string(props, "FunctionUrlAuthType"),
        invoked_via_function_url: props.get("InvokedViaFunctionUrl").and_then(Value::as_bool),
    };
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || {
        control
            .add_permission(&function, qualifier.as_deref(), req)
            .map(|_| ())
            .map_err(err)
    })
    .await?;
    Ok(Provisioned::named(sid))
}

pub async fn remove_permission(
    k: &Kindling,
    sid: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let Some(raw) = string(props, "FunctionName") else {
        return Ok(());
    };
    let (function, qualifier) = target(&raw);
    let control = std::sync::Arc::clone(&k.control);
    let sid = sid.to_string();
    blocking(move || {
        missing_ok(control.remove_permission(&function, &sid, qualifier.as_deref(), None))
    })
    .await
}

pub async fn publish_layer(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let name = string(props, "LayerName").unwrap_or_else(|| generated(ctx, 140));
    let mut shape = props.clone();
    shape.remove("LayerName");
    let req: PublishLayerVersion = parse(Value::Object(shape))?;
    let control = std::sync::Arc::clone(&k.control);
    let n = name.clone();
    let rec = blocking(move || control.publish_layer_version(&n, req).map_err(err)).await?;
    let arn = k.control.arn().layer_version_arn(&name, rec.version);
    Ok(Provisioned::named(arn.clone()).attr("LayerVersionArn", arn))
}

pub async fn delete_layer(k: &Kindling, arn: &str) -> Result<(), ProvisionError> {
    let Some(r) = LayerVersionRef::parse(arn) else {
        return Ok(());
    };
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || missing_ok(control.delete_layer_version(&r.name, &r.version.to_string())))
        .await
}

fn invoke_config(props: &Map<String, Value>) -> Result<EventInvokeConfigInput, ProvisionError> {
    let mut m = Map::new();
    for key in ["MaximumRetryAttempts", "MaximumEventAgeInSeconds"] {
        if let Some(v) = props.get(key).and_then(number) {
            m.insert(key.to_string(), json!(v));
        }
    }
    if let Some(d) = props.get("DestinationConfig") {
        m.insert("DestinationConfig".into(), d.clone());
    }
    parse(Value::Object(m))
}

pub async fn put_invoke_config(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let function = name_of(&super::props::required(props, "FunctionName")?);
    let qualifier = super::props::required(props, "Qualifier")?;
    let input = invoke_config(props)?;
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || {
        control
            .put_event_invoke_config(&function, Some(&qualifier), input)
            .map(|_| ())
            .map_err(err)
    })
    .await?;
    Ok(Provisioned::named(ctx.physical_name.clone()))
}

pub async fn update_invoke_config(k: &Kindling, id: &str, props: &Map<String, Value>) -> Outcome {
    let function = name_of(&super::props::required(props, "FunctionName")?);
    let qualifier = super::props::required(props, "Qualifier")?;
    let input = invoke_config(props)?;
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || {
        control
            .put_event_invoke_config(&function, Some(&qualifier), input)
            .map(|_| ())
            .map_err(err)
    })
    .await?;
    Ok(Provisioned::named(id))
}

pub async fn delete_invoke_config(
    k: &Kindling,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let Some(function) = string(props, "FunctionName").map(|f| name_of(&f)) else {
        return Ok(());
    };
    let qualifier = string(props, "Qualifier");
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || {
        missing_ok(control.delete_event_invoke_config(&function, qualifier.as_deref()))
    })
    .await
}

// ------------------------------------------------------------------ function URLs

fn url_input(
    props: &Map<String, Value>,
) -> Result<kindling_control::input::FunctionUrlConfigInput, ProvisionError> {
    let mut m = Map::new();
    for key in ["AuthType", "InvokeMode", "Cors"] {
        if let Some(v) = props.get(key) {
            m.insert(key.to_string(), v.clone());
        }
    }
    if let Some(Value::Object(cors)) = m.get_mut("Cors")
        && let Some(age) = cors.get("MaxAge").and_then(number)
    {
        cors.insert("MaxAge".into(), json!(age));
    }
    parse(Value::Object(m))
}

fn url_outcome(k: &Kindling, function: &str, qualifier: Option<&str>, url_id: &str) -> Provisioned {
    let arn = match qualifier {
        Some(q) => format!("{}:{q}", k.control.arn().function_arn(function)),
        None => k.control.arn().function_arn(function),
    };
    Provisioned::named(arn.clone())
        .attr("FunctionArn", arn)
        .attr(
            "FunctionUrl",
            format!("{}/lambda-url/{url_id}/", k.base_url),
        )
}

pub async fn create_url(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let (function, q) = target(&super::props::required(props, "TargetFunctionArn")?);
    let qualifier = string(props, "Qualifier").or(q);
    let input = url_input(props)?;
    let control = std::sync::Arc::clone(&k.control);
    let (f, qq) = (function.clone(), qualifier.clone());
    let view = blocking(move || {
        control
            .create_function_url_config(&f, qq.as_deref(), input)
            .map_err(err)
    })
    .await?;
    Ok(url_outcome(
        k,
        &function,
        qualifier.as_deref(),
        &view.record.url_id,
    ))
}

pub async fn update_url(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let (function, q) = target(&super::props::required(props, "TargetFunctionArn")?);
    let qualifier = string(props, "Qualifier").or(q);
    let input = url_input(props)?;
    let control = std::sync::Arc::clone(&k.control);
    let (f, qq) = (function.clone(), qualifier.clone());
    let view = blocking(move || {
        control
            .update_function_url_config(&f, qq.as_deref(), input)
            .map_err(err)
    })
    .await?;
    Ok(url_outcome(
        k,
        &function,
        qualifier.as_deref(),
        &view.record.url_id,
    ))
}

pub async fn delete_url(k: &Kindling, props: &Map<String, Value>) -> Result<(), ProvisionError> {
    let Some(raw) = string(props, "TargetFunctionArn") else {
        return Ok(());
    };
    let (function, q) = target(&raw);
    let qualifier = string(props, "Qualifier").or(q);
    let control = std::sync::Arc::clone(&k.control);
    blocking(move || {
        missing_ok(control.delete_function_url_config(&function, qualifier.as_deref()))
    })
    .await
}

// ------------------------------------------------------------------ event source mappings

fn mapping_shape(props: &Map<String, Value>) -> Value {
    let mut m = props.clone();
    for key in [
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "ParallelizationFactor",
        "TumblingWindowInSeconds",
    ] {
        if let Some(v) = m.get(key).and_then(number) {
            m.insert(key.to_string(), json!(v));
        }
    }
    if let Some(Value::Object(sc)) = m.get_mut("ScalingConfig")
        && let Some(v) = sc.get("MaximumConcurrency").and_then(number)
    {
        sc.insert("MaximumConcurrency".into(), json!(v));
    }
    if let Some(v) = m.get("Enabled").and_then(text) {
        m.insert("Enabled".into(), json!(v == "true"));
    }
    m.remove("Tags");
    Value::Object(m)
}

fn mapping_outcome(v: &Value) -> Result<Provisioned, ProvisionError> {
    let uuid = v
        .get("UUID")
        .and_then(Value::as_str)
        .ok_or_else(|| ProvisionError::new("the event source mapping has no UUID"))?
        .to_string();
    let arn = v
        .get("EventSourceMappingArn")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Provisioned::named(uuid.clone())
        .attr("Id", uuid)
        .attr("EventSourceMappingArn", arn))
}

fn esm(k: &Kindling) -> Result<&kindling_esm::Mappings, ProvisionError> {
    k.esm
        .as_ref()
        .ok_or_else(|| ProvisionError::new("this Kindling runs no event source mappings"))
}

pub async fn create_mapping(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let input: kindling_esm::input::CreateMappingInput = parse(mapping_shape(props))?;
    let v = esm(k)?
        .create(input)
        .await
        .map_err(|e| ProvisionError::new(e.to_string()))?;
    mapping_outcome(&v)
}

pub async fn update_mapping(k: &Kindling, uuid: &str, props: &Map<String, Value>) -> Outcome {
    let mut shape = mapping_shape(props);
    if let Some(o) = shape.as_object_mut() {
        o.remove("EventSourceArn");
        o.remove("StartingPosition");
        o.remove("StartingPositionTimestamp");
        o.remove("SelfManagedEventSource");
        o.entry("Enabled").or_insert(json!(true));
    }
    let input: kindling_esm::input::UpdateMappingInput = parse(shape)?;
    let v = esm(k)?
        .update(uuid, input)
        .await
        .map_err(|e| ProvisionError::new(e.to_string()))?;
    mapping_outcome(&v)
}

pub async fn delete_mapping(k: &Kindling, uuid: &str) -> Result<(), ProvisionError> {
    match esm(k)?.delete(uuid).await {
        Ok(_) | Err(kindling_esm::EsmError::NotFound(_)) => Ok(()),
        Err(e) => Err(ProvisionError::new(e.to_string())),
    }
}
