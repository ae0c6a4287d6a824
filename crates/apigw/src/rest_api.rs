//! REST APIs (API Gateway v1): the document kept per API (a resource tree whose resources hold
//! methods and their integrations, deployments with snapshots of the tree, stages) and every
//! control-plane operation. Field names are the v1 wire's; timestamps are epoch seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApigwError, Result, bad};
use crate::openapi::{self, Imported};
use crate::routing::{Candidate, PathTemplate, Segment};
use crate::service::{ApiGateway, Deployed, DeployedRest, Kind};
use crate::{ids, retention, target, time};

/// Resources per REST API (AWS's default quota).
pub const MAX_RESOURCES: usize = 300;
pub const MAX_STAGES: usize = 10;
/// Deployments kept per API (the oldest no stage serves are forgotten).
pub const MAX_DEPLOYMENTS: usize = 100;
/// The integration timeout's range for REST APIs, milliseconds (29 s by default).
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 50..=29_000;

pub const METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub binary_media_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: String,
    pub endpoint_configuration: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub disable_execute_api_endpoint: bool,
    pub root_resource_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestIntegration {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
    pub timeout_in_millis: i64,
    pub cache_namespace: String,
    #[serde(default)]
    pub cache_key_parameters: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_templates: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_responses: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub http_method: String,
    pub authorization_type: String,
    pub api_key_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<BTreeMap<String, bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_models: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_responses: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_integration: Option<RestIntegration>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_part: Option<String>,
    pub path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub resource_methods: BTreeMap<String, Method>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestStage {
    pub stage_name: String,
    pub deployment_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub created_date: f64,
    pub last_updated_date: f64,
    pub tracing_enabled: bool,
    pub cache_cluster_enabled: bool,
    pub cache_cluster_status: String,
    #[serde(default)]
    pub method_settings: Value,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestDeployment {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: f64,
}

/// Everything stored for one REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestApiDoc {
    pub api: RestApi,
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub deployments: Vec<RestDeployment>,
    #[serde(default)]
    pub stages: Vec<RestStage>,
    /// The resource trees of the deployments a stage still serves.
    #[serde(default)]
    pub snapshots: BTreeMap<String, Vec<Resource>>,
}

// ---- inputs ----

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApiInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub clone_from: Option<String>,
    pub binary_media_types: Option<Vec<String>>,
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: Option<String>,
    pub endpoint_configuration: Option<Value>,
    pub policy: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub disable_execute_api_endpoint: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodInput {
    pub authorization_type: Option<String>,
    pub authorizer_id: Option<String>,
    pub api_key_required: Option<bool>,
    pub operation_name: Option<String>,
    pub request_parameters: Option<BTreeMap<String, bool>>,
    pub request_models: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub passthrough_behavior: Option<String>,
    pub content_handling: Option<String>,
    pub timeout_in_millis: Option<i64>,
    pub cache_namespace: Option<String>,
    pub cache_key_parameters: Option<Vec<String>>,
    pub connection_type: Option<String>,
    pub credentials: Option<String>,
    pub request_parameters: Option<Value>,
    pub request_templates: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInput {
    pub stage_name: Option<String>,
    pub stage_description: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub tracing_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    pub stage_name: Option<String>,
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub tracing_enabled: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// One operation of a PATCH body (`{"op":"replace","path":"/name","value":"x"}`).
#[derive(Debug, Clone, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    pub path: String,
    pub value: Option<String>,
    pub from: Option<String>,
}

/// How PutRestApi combines the document with the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    Merge,
    Overwrite,
}

fn now_s() -> f64 {
    time::epoch_seconds(time::now_ms())
}

fn name_length(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 1024 {
        return Err(bad(
            "Invalid name: length must be between 1 and 1024 characters.",
        ));
    }
    Ok(())
}

/// `~1` is `/` and `~0` is `~` in a patch path.
fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

pub(crate) fn check_method_name(m: &str) -> Result<String> {
    let up = m.to_ascii_uppercase();
    if METHODS.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(bad(format!(
            "Invalid HTTP method '{m}': must be one of {}.",
            METHODS.join(", ")
        )))
    }
}

pub(crate) fn check_authorization(kind: Option<&str>) -> Result<String> {
    match kind {
        Some("NONE") => Ok("NONE".into()),
        None => Err(bad("Invalid input: authorizationType is required.")),
        Some(k @ ("AWS_IAM" | "CUSTOM" | "COGNITO_USER_POOLS")) => Err(bad(format!(
            "Kindling does not enforce method authorization: authorizationType {k} is not supported (use NONE)."
        ))),
        Some(other) => Err(bad(format!(
            "Invalid authorizationType '{other}': must be one of NONE, AWS_IAM, CUSTOM, COGNITO_USER_POOLS."
        ))),
    }
}

/// An integration as stored, from its parts; `where_` names the method for messages.
pub(crate) fn build_integration(
    input: IntegrationInput,
    ctx: &kindling_model::ArnContext,
    where_: &str,
) -> Result<RestIntegration> {
    let kind = input
        .kind
        .as_deref()
        .ok_or_else(|| bad(format!("Invalid integration{where_}: type is required.")))?
        .to_ascii_uppercase();
    match kind.as_str() {
        "AWS_PROXY" => {
            let uri = input.uri.as_deref().ok_or_else(|| {
                bad(format!(
                    "Invalid integration{where_}: uri is required for AWS_PROXY integrations."
                ))
            })?;
            target::parse(uri, ctx).map_err(|e| bad(format!("{e}{where_}")))?;
            if let Some(m) = &input.http_method
                && !m.eq_ignore_ascii_case("POST")
            {
                return Err(bad(format!(
                    "Invalid integration{where_}: Lambda proxy integrations use httpMethod POST, not {m}."
                )));
            }
        }
        "MOCK" => {}
        "AWS" | "HTTP" | "HTTP_PROXY" => {
            return Err(bad(format!(
                "Kindling serves AWS_PROXY (Lambda proxy) and MOCK integrations; type {kind}{where_} is not supported."
            )));
        }
        other => {
            return Err(bad(format!(
                "Invalid integration type '{other}'{where_}: must be one of AWS, AWS_PROXY, HTTP, HTTP_PROXY, MOCK."
            )));
        }
    }
    let timeout = input.timeout_in_millis.unwrap_or(29_000);
    if !TIMEOUT_RANGE.contains(&timeout) {
        return Err(bad(format!(
            "Invalid timeoutInMillis {timeout}{where_}: must be between 50 and 29000."
        )));
    }
    if let Some(c) = &input.content_handling
        && c != "CONVERT_TO_BINARY"
        && c != "CONVERT_TO_TEXT"
    {
        return Err(bad(format!(
            "Invalid contentHandling '{c}'{where_}: must be CONVERT_TO_BINARY or CONVERT_TO_TEXT."
        )));
    }
    let is_proxy = kind == "AWS_PROXY";
    Ok(RestIntegration {
        kind,
        http_method: if is_proxy {
            Some("POST".into())
        } else {
            input.http_method
        },
        uri: input.uri,
        passthrough_behavior: Some(
            input
                .passthrough_behavior
                .map_or_else(|| "WHEN_NO_MATCH".into(), |p| p.to_ascii_uppercase()),
        ),
        content_handling: input.content_handling,
        timeout_in_millis: timeout,
        cache_namespace: input.cache_namespace.unwrap_or_else(ids::resource_id),
        cache_key_parameters: input.cache_key_parameters.unwrap_or_default(),
        connection_type: input.connection_type,
        credentials: input.credentials,
        request_parameters: input.request_parameters,
        request_templates: input.request_templates,
        integration_responses: None,
    })
}

impl RestApiDoc {
    fn resource_index(&self, id: &str) -> Result<usize> {
        self.resources
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(|| ApigwError::NotFound("Invalid Resource identifier specified".into()))
    }

    fn stage_index(&self, name: &str) -> Result<usize> {
        self.stages
            .iter()
            .position(|s| s.stage_name == name)
            .ok_or_else(|| ApigwError::NotFound("Invalid Stage identifier specified".into()))
    }

    /// Adds a child resource (validated against its siblings).
    pub(crate) fn add_resource(&mut self, parent_id: &str, part: &str) -> Result<Resource> {
        let p = self.resource_index(parent_id)?;
        let parent = self.resources[p].clone();
        let seg = PathTemplate::segment(part).ok_or_else(|| {
            bad(format!(
                "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace: '{part}'."
            ))
        })?;
        if parent
            .path_part
            .as_deref()
            .is_some_and(|pp| pp.ends_with("+}"))
        {
            return Err(bad(format!(
                "Cannot create a child of a resource with a greedy path variable: {}",
                parent.path
            )));
        }
        for sib in self
            .resources
            .iter()
            .filter(|r| r.parent_id.as_deref() == Some(parent_id))
        {
            let sp = sib.path_part.as_deref().unwrap_or("");
            if sp == part {
                return Err(ApigwError::Conflict(format!(
                    "Another resource with the same parent already has this name: {part}"
                )));
            }
            let sib_var = sp.starts_with('{');
            if sib_var && !matches!(seg, Segment::Literal(_)) {
                return Err(bad(format!(
                    "A sibling ({sp}) of this resource already has a variable path part -- only one is allowed"
                )));
            }
        }
        if self.resources.len() >= MAX_RESOURCES {
            return Err(ApigwError::LimitExceeded(format!(
                "A REST API has at most {MAX_RESOURCES} resources."
            )));
        }
        let path = if parent.path == "/" {
            format!("/{part}")
        } else {
            format!("{}/{part}", parent.path)
        };
        let r = Resource {
            id: ids::resource_id(),
            parent_id: Some(parent_id.to_string()),
            path_part: Some(part.to_string()),
            path,
            resource_methods: BTreeMap::new(),
        };
        self.resources.push(r.clone());
        Ok(r)
    }

    /// The resource at `path`, created with its ancestors when missing.
    pub(crate) fn ensure_path(&mut self, path: &str) -> Result<usize> {
        PathTemplate::parse(path).map_err(bad)?;
        let mut current = self.api.root_resource_id.clone();
        let trimmed = path.trim_matches('/');
        if !trimmed.is_empty() {
            for part in trimmed.split('/') {
                let existing = self
                    .resources
                    .iter()
                    .find(|r| {
                        r.parent_id.as_deref() == Some(current.as_str())
                            && r.path_part.as_deref() == Some(part)
                    })
                    .map(|r| r.id.clone());
                current = match existing {
                    Some(id) => id,
                    None => self.add_resource(&current, part)?.id,
                };
            }
        }
        self.resource_index(&current)
    }

    fn deploy(&mut self, description: Option<String>) -> Result<RestDeployment> {
        if self.resources.iter().all(|r| r.resource_methods.is_empty()) {
            return Err(bad("The REST API doesn't contain any methods"));
        }
        for r in &self.resources {
            for (m, method) in &r.resource_methods {
                if method.method_integration.is_none() {
                    return Err(bad(format!(
                        "No integration defined for method {m} on resource {}",
                        r.path
                    )));
                }
            }
        }
        let d = RestDeployment {
            id: ids::resource_id() + &ids::new_id(4),
            description,
            created_date: now_s(),
        };
        self.snapshots.insert(d.id.clone(), self.resources.clone());
        self.deployments.push(d.clone());
        Ok(d)
    }

    fn forget(&mut self) {
        let served: Vec<String> = self
            .stages
            .iter()
            .map(|s| s.deployment_id.clone())
            .collect();
        retention::forget(
            &mut self.deployments,
            &mut self.snapshots,
            &served,
            (MAX_DEPLOYMENTS, crate::http_api::UNSERVED_SNAPSHOTS),
            |d| &d.id,
            |_| true,
        );
    }

    /// Applies an imported document.
    fn apply(&mut self, imported: Imported, mode: PutMode) -> Result<()> {
        if mode == PutMode::Overwrite {
            let root = self.api.root_resource_id.clone();
            self.resources.retain(|r| r.id == root);
            if let Some(r) = self.resources.first_mut() {
                r.resource_methods.clear();
            }
            self.api.binary_media_types = imported.binary_media_types.clone();
            if imported.description.is_some() {
                self.api.description.clone_from(&imported.description);
            }
        } else {
            for t in &imported.binary_media_types {
                if !self.api.binary_media_types.contains(t) {
                    self.api.binary_media_types.push(t.clone());
                }
            }
        }
        if let Some(n) = &imported.name {
            self.api.name.clone_from(n);
        }
        if imported.version.is_some() {
            self.api.version.clone_from(&imported.version);
        }
        for (path, methods) in imported.paths {
            let i = self.ensure_path(&path)?;
            for (name, m) in methods {
                self.resources[i].resource_methods.insert(name, m);
            }
        }
        self.api.warnings = imported.warnings;
        Ok(())
    }
}

impl ApiGateway {
    fn rest_doc(&self, api_id: &str) -> Result<RestApiDoc> {
        self.load(api_id, Kind::Rest)
    }

    fn with_rest<T>(&self, api_id: &str, f: impl FnMut(&mut RestApiDoc) -> Result<T>) -> Result<T> {
        self.update(api_id, Kind::Rest, f)
    }

    fn new_rest_doc(&self, input: &RestApiInput) -> Result<RestApiDoc> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| bad("Invalid input: name is required."))?;
        name_length(&name)?;
        if input.clone_from.is_some() {
            return Err(bad("cloneFrom is not supported by Kindling."));
        }
        let types = match &input.endpoint_configuration {
            None => serde_json::json!({"types": ["EDGE"]}),
            Some(e) => {
                let ok = e["types"].as_array().is_some_and(|t| {
                    t.len() == 1 && matches!(t[0].as_str(), Some("EDGE" | "REGIONAL" | "PRIVATE"))
                });
                if !ok {
                    return Err(bad(
                        "Invalid endpointConfiguration: types must hold one of EDGE, REGIONAL, PRIVATE.",
                    ));
                }
                e.clone()
            }
        };
        if let Some(k) = &input.api_key_source
            && k != "HEADER"
            && k != "AUTHORIZER"
        {
            return Err(bad(format!(
                "Invalid apiKeySource '{k}': must be HEADER or AUTHORIZER."
            )));
        }
        for t in input.binary_media_types.iter().flatten() {
            check_media_type(t)?;
        }
        let root = Resource {
            id: ids::new_id(10),
            parent_id: None,
            path_part: None,
            path: "/".into(),
            resource_methods: BTreeMap::new(),
        };
        Ok(RestApiDoc {
            api: RestApi {
                id: ids::api_id(),
                name,
                description: input.description.clone(),
                created_date: now_s(),
                version: input.version.clone(),
                binary_media_types: input.binary_media_types.clone().unwrap_or_default(),
                minimum_compression_size: input.minimum_compression_size,
                api_key_source: input
                    .api_key_source
                    .clone()
                    .unwrap_or_else(|| "HEADER".into()),
                endpoint_configuration: types,
                policy: input.policy.clone(),
                tags: input.tags.clone().unwrap_or_default(),
                disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
                root_resource_id: root.id.clone(),
                warnings: Vec::new(),
            },
            resources: vec![root],
            deployments: Vec::new(),
            stages: Vec::new(),
            snapshots: BTreeMap::new(),
        })
    }

    pub fn create_rest_api(&self, input: RestApiInput) -> Result<RestApi> {
        let doc = self.new_rest_doc(&input)?;
        self.insert(&doc.api.id.clone(), Kind::Rest, &doc)?;
        Ok(doc.api)
    }

    /// ImportRestApi: a new API from an OpenAPI 3 or Swagger 2 document (JSON or YAML).
    pub fn import_rest_api(&self, body: &[u8], fail_on_warnings: bool) -> Result<RestApi> {
        let imported = openapi::parse(body, self.arn(), fail_on_warnings)?;
        let name = imported.name.clone().ok_or_else(|| {
            bad("Errors found during import: the document has no info.title to name the API.")
        })?;
        let mut doc = self.new_rest_doc(&RestApiInput {
            name: Some(name),
            description: imported.description.clone(),
            ..RestApiInput::default()
        })?;
        doc.apply(imported, PutMode::Overwrite)?;
        self.insert(&doc.api.id.clone(), Kind::Rest, &doc)?;
        Ok(doc.api)
    }

    /// PutRestApi: the document merged into, or overwriting, an existing API.
    pub fn put_rest_api(
        &self,
        api_id: &str,
        body: &[u8],
        mode: PutMode,
        fail_on_warnings: bool,
    ) -> Result<RestApi> {
        let imported = openapi::parse(body, self.arn(), fail_on_warnings)?;
        self.with_rest(api_id, |doc| {
            doc.apply(imported.clone(), mode)?;
            Ok(doc.api.clone())
        })
    }

    pub fn get_rest_api(&self, api_id: &str) -> Result<RestApi> {
        Ok(self.rest_doc(api_id)?.api)
    }

    pub fn rest_apis(&self) -> Result<Vec<RestApi>> {
        Ok(self
            .list::<RestApiDoc>(Kind::Rest)?
            .into_iter()
            .map(|d| d.api)
            .collect())
    }

    pub fn delete_rest_api(&self, api_id: &str) -> Result<()> {
        self.remove(api_id, Kind::Rest)
    }

    /// UpdateRestApi: `/name`, `/description`, `/version`, `/binaryMediaTypes/<type>`,
    /// `/disableExecuteApiEndpoint`.
    pub fn update_rest_api(&self, api_id: &str, ops: Vec<PatchOperation>) -> Result<RestApi> {
        self.with_rest(api_id, |doc| {
            for op in &ops {
                let value = op.value.clone();
                match (op.op.as_str(), op.path.as_str()) {
                    ("replace", "/name") => {
                        let v = value.clone().unwrap_or_default();
                        name_length(&v)?;
                        doc.api.name = v;
                    }
                    ("replace", "/description") => doc.api.description.clone_from(&value),
                    ("replace", "/version") => doc.api.version.clone_from(&value),
                    ("replace", "/disableExecuteApiEndpoint") => {
                        doc.api.disable_execute_api_endpoint = value.as_deref() == Some("true");
                    }
                    ("add", p) if p.starts_with("/binaryMediaTypes/") => {
                        let t = unescape(&p["/binaryMediaTypes/".len()..]);
                        check_media_type(&t)?;
                        if !doc.api.binary_media_types.contains(&t) {
                            doc.api.binary_media_types.push(t);
                        }
                    }
                    ("remove", p) if p.starts_with("/binaryMediaTypes/") => {
                        let t = unescape(&p["/binaryMediaTypes/".len()..]);
                        doc.api.binary_media_types.retain(|x| *x != t);
                    }
                    (o, p) => {
                        return Err(bad(format!(
                            "Invalid patch operation specified. Must be one of: [replace /name, replace /description, replace /version, replace /disableExecuteApiEndpoint, add|remove /binaryMediaTypes/<type>]; got {o} {p}"
                        )));
                    }
                }
            }
            Ok(doc.api.clone())
        })
    }

    // ---- resources ----

    pub fn rest_resources(&self, api_id: &str) -> Result<Vec<Resource>> {
        Ok(self.rest_doc(api_id)?.resources)
    }

    pub fn rest_resource(&self, api_id: &str, id: &str) -> Result<Resource> {
        let doc = self.rest_doc(api_id)?;
        let i = doc.resource_index(id)?;
        Ok(doc.resources[i].clone())
    }

    pub fn create_resource(
        &self,
        api_id: &str,
        parent_id: &str,
        part: Option<String>,
    ) -> Result<Resource> {
        let part = part.ok_or_else(|| bad("Invalid input: pathPart is required."))?;
        self.with_rest(api_id, |doc| doc.add_resource(parent_id, &part))
    }

    /// DeleteResource: the resource and everything beneath it.
    pub fn delete_resource(&self, api_id: &str, id: &str) -> Result<()> {
        self.with_rest(api_id, |doc| {
            doc.resource_index(id)?;
            if id == doc.api.root_resource_id {
                return Err(bad("Cannot delete the root resource of a REST API."));
            }
            let mut doomed = vec![id.to_string()];
            loop {
                let more: Vec<String> = doc
                    .resources
                    .iter()
                    .filter(|r| {
                        r.parent_id.as_ref().is_some_and(|p| doomed.contains(p))
                            && !doomed.contains(&r.id)
                    })
                    .map(|r| r.id.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                doomed.extend(more);
            }
            doc.resources.retain(|r| !doomed.contains(&r.id));
            Ok(())
        })
    }

    // ---- methods and integrations ----

    pub fn put_method(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
        input: MethodInput,
    ) -> Result<Method> {
        let m = check_method_name(method)?;
        let auth = check_authorization(input.authorization_type.as_deref())?;
        self.with_rest(api_id, |doc| {
            let i = doc.resource_index(resource_id)?;
            let r = &mut doc.resources[i];
            if r.resource_methods.contains_key(&m) {
                return Err(ApigwError::Conflict(
                    "Method already exists for this resource".into(),
                ));
            }
            let method = Method {
                http_method: m.clone(),
                authorization_type: auth.clone(),
                api_key_required: input.api_key_required.unwrap_or(false),
                authorizer_id: input.authorizer_id.clone(),
                operation_name: input.operation_name.clone(),
                request_parameters: input.request_parameters.clone(),
                request_models: input.request_models.clone(),
                method_responses: None,
                method_integration: None,
            };
            r.resource_methods.insert(m.clone(), method.clone());
            Ok(method)
        })
    }

    fn method_ref<'a>(
        doc: &'a mut RestApiDoc,
        resource_id: &str,
        m: &str,
    ) -> Result<&'a mut Method> {
        let i = doc.resource_index(resource_id)?;
        doc.resources[i]
            .resource_methods
            .get_mut(m)
            .ok_or_else(|| ApigwError::NotFound("Invalid Method identifier specified".into()))
    }

    pub fn get_method(&self, api_id: &str, resource_id: &str, method: &str) -> Result<Method> {
        let m = check_method_name(method)?;
        let mut doc = self.rest_doc(api_id)?;
        Ok(Self::method_ref(&mut doc, resource_id, &m)?.clone())
    }

    pub fn delete_method(&self, api_id: &str, resource_id: &str, method: &str) -> Result<()> {
        let m = check_method_name(method)?;
        self.with_rest(api_id, |doc| {
            Self::method_ref(doc, resource_id, &m)?;
            let i = doc.resource_index(resource_id)?;
            doc.resources[i].resource_methods.remove(&m);
            Ok(())
        })
    }

    pub fn put_integration(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
        input: IntegrationInput,
    ) -> Result<RestIntegration> {
        let m = check_method_name(method)?;
        let integration = build_integration(input, self.arn(), "")?;
        self.with_rest(api_id, |doc| {
            let method = Self::method_ref(doc, resource_id, &m)?;
            method.method_integration = Some(integration.clone());
            Ok(integration.clone())
        })
    }

    pub fn get_integration_v1(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
    ) -> Result<RestIntegration> {
        let m = check_method_name(method)?;
        let mut doc = self.rest_doc(api_id)?;
        Self::method_ref(&mut doc, resource_id, &m)?
            .method_integration
            .clone()
            .ok_or_else(|| ApigwError::NotFound("No integration defined for method".into()))
    }

    pub fn delete_integration_v1(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
    ) -> Result<()> {
        let m = check_method_name(method)?;
        self.with_rest(api_id, |doc| {
            let method = Self::method_ref(doc, resource_id, &m)?;
            if method.method_integration.take().is_none() {
                return Err(ApigwError::NotFound(
                    "No integration defined for method".into(),
                ));
            }
            Ok(())
        })
    }

    // ---- deployments and stages ----

    pub fn create_rest_deployment(
        &self,
        api_id: &str,
        input: DeploymentInput,
    ) -> Result<RestDeployment> {
        if let Some(n) = &input.stage_name {
            check_stage_name(n)?;
        }
        if let Some(v) = &input.variables {
            crate::http_api::check_stage_variables(v)?;
        }
        self.with_rest(api_id, |doc| {
            let d = doc.deploy(input.description.clone())?;
            if let Some(name) = &input.stage_name {
                let now = now_s();
                match doc.stages.iter_mut().find(|s| &s.stage_name == name) {
                    Some(s) => {
                        s.deployment_id.clone_from(&d.id);
                        s.last_updated_date = now;
                        if let Some(v) = &input.variables {
                            s.variables.extend(v.clone());
                        }
                    }
                    None => {
                        if doc.stages.len() >= MAX_STAGES {
                            return Err(ApigwError::LimitExceeded(format!(
                                "A REST API has at most {MAX_STAGES} stages."
                            )));
                        }
                        doc.stages.push(RestStage {
                            stage_name: name.clone(),
                            deployment_id: d.id.clone(),
                            description: input.stage_description.clone(),
                            variables: input.variables.clone().unwrap_or_default(),
                            created_date: now,
                            last_updated_date: now,
                            tracing_enabled: input.tracing_enabled.unwrap_or(false),
                            cache_cluster_enabled: false,
                            cache_cluster_status: "NOT_AVAILABLE".into(),
                            method_settings: serde_json::json!({}),
                            tags: BTreeMap::new(),
                        });
                    }
                }
            }
            doc.forget();
            Ok(d.clone())
        })
    }

    pub fn rest_deployments(&self, api_id: &str) -> Result<Vec<RestDeployment>> {
        Ok(self.rest_doc(api_id)?.deployments)
    }

    pub fn rest_deployment(&self, api_id: &str, id: &str) -> Result<RestDeployment> {
        self.rest_doc(api_id)?
            .deployments
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| ApigwError::NotFound("Invalid Deployment identifier specified".into()))
    }

    pub fn create_rest_stage(&self, api_id: &str, input: StageInput) -> Result<RestStage> {
        let name = input
            .stage_name
            .clone()
            .ok_or_else(|| bad("Invalid input: stageName is required."))?;
        check_stage_name(&name)?;
        let deployment = input
            .deployment_id
            .clone()
            .ok_or_else(|| bad("Invalid input: deploymentId is required."))?;
        if let Some(v) = &input.variables {
            crate::http_api::check_stage_variables(v)?;
        }
        self.with_rest(api_id, |doc| {
            if doc.stages.iter().any(|s| s.stage_name == name) {
                return Err(ApigwError::Conflict("Stage already exists".into()));
            }
            if doc.stages.len() >= MAX_STAGES {
                return Err(ApigwError::LimitExceeded(format!(
                    "A REST API has at most {MAX_STAGES} stages."
                )));
            }
            if !doc.deployments.iter().any(|d| d.id == deployment) {
                return Err(bad("Invalid deployment identifier specified"));
            }
            if !doc.snapshots.contains_key(&deployment) {
                return Err(bad(format!(
                    "Deployment {deployment} is no longer available; create a new deployment."
                )));
            }
            let now = now_s();
            let s = RestStage {
                stage_name: name.clone(),
                deployment_id: deployment.clone(),
                description: input.description.clone(),
                variables: input.variables.clone().unwrap_or_default(),
                created_date: now,
                last_updated_date: now,
                tracing_enabled: input.tracing_enabled.unwrap_or(false),
                cache_cluster_enabled: false,
                cache_cluster_status: "NOT_AVAILABLE".into(),
                method_settings: serde_json::json!({}),
                tags: input.tags.clone().unwrap_or_default(),
            };
            doc.stages.push(s.clone());
            Ok(s)
        })
    }

    pub fn rest_stage(&self, api_id: &str, name: &str) -> Result<RestStage> {
        let doc = self.rest_doc(api_id)?;
        let i = doc.stage_index(name)?;
        Ok(doc.stages[i].clone())
    }

    pub fn rest_stages(&self, api_id: &str, deployment: Option<&str>) -> Result<Vec<RestStage>> {
        Ok(self
            .rest_doc(api_id)?
            .stages
            .into_iter()
            .filter(|s| deployment.is_none_or(|d| s.deployment_id == d))
            .collect())
    }

    pub fn delete_rest_stage(&self, api_id: &str, name: &str) -> Result<()> {
        self.with_rest(api_id, |doc| {
            let i = doc.stage_index(name)?;
            doc.stages.remove(i);
            doc.forget();
            Ok(())
        })
    }

    /// UpdateStage: `/variables/<name>` (replace, add, remove), `/deploymentId`,
    /// `/description`, `/tracingEnabled`.
    pub fn update_rest_stage(
        &self,
        api_id: &str,
        name: &str,
        ops: Vec<PatchOperation>,
    ) -> Result<RestStage> {
        self.with_rest(api_id, |doc| {
            let i = doc.stage_index(name)?;
            for op in &ops {
                let value = op.value.clone().unwrap_or_default();
                match (op.op.as_str(), op.path.as_str()) {
                    ("replace" | "add", p) if p.starts_with("/variables/") => {
                        let mut one = BTreeMap::new();
                        one.insert(unescape(&p["/variables/".len()..]), value);
                        crate::http_api::check_stage_variables(&one)?;
                        doc.stages[i].variables.extend(one);
                    }
                    ("remove", p) if p.starts_with("/variables/") => {
                        doc.stages[i].variables.remove(&unescape(&p["/variables/".len()..]));
                    }
                    ("replace", "/deploymentId") => {
                        if !doc.snapshots.contains_key(&value)
                            && !doc.deployments.iter().any(|d| d.id == value)
                        {
                            return Err(bad("Invalid deployment identifier specified"));
                        }
                        if !doc.snapshots.contains_key(&value) {
                            return Err(bad(format!(
                                "Deployment {value} is no longer available; create a new deployment."
                            )));
                        }
                        doc.stages[i].deployment_id = value;
                    }
                    ("replace", "/description") => doc.stages[i].description = Some(value),
                    ("replace", "/tracingEnabled") => doc.stages[i].tracing_enabled = value == "true",
                    (o, p) => {
                        return Err(bad(format!(
                            "Invalid patch operation specified: {o} {p}. Supported: /variables/<name>, /deploymentId, /description, /tracingEnabled."
                        )));
                    }
                }
            }
            doc.stages[i].last_updated_date = now_s();
            let s = doc.stages[i].clone();
            doc.forget();
            Ok(s)
        })
    }
}

fn check_stage_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad(format!(
            "Stage name only allows a-zA-Z0-9_- (1-128 characters): '{name}'"
        )));
    }
    Ok(())
}

pub(crate) fn check_media_type(t: &str) -> Result<()> {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && t.len() <= 256 && !t.contains(char::is_whitespace)
    });
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid binary media type '{t}': expected type/subtype (wildcards allowed, e.g. image/*, */*)."
        )))
    }
}

/// One method of a deployed resource, ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledResource {
    pub resource_id: String,
    pub resource_path: String,
    pub method: String,
    pub template: PathTemplate,
    pub integration: Option<RestIntegration>,
    /// The function its integration URI names, parsed once per deployment (`None`: no URI).
    pub function: Option<std::result::Result<target::FunctionTarget, target::TargetError>>,
}

impl Candidate for CompiledResource {
    fn template(&self) -> &PathTemplate {
        &self.template
    }
    fn method(&self) -> &str {
        &self.method
    }
}

pub(crate) fn compile(doc: &RestApiDoc, ctx: &kindling_model::ArnContext) -> Deployed {
    let mut stages = std::collections::HashMap::new();
    for s in &doc.stages {
        let Some(snapshot) = doc.snapshots.get(&s.deployment_id) else {
            continue;
        };
        let mut resources = Vec::new();
        for r in snapshot {
            let Ok(template) = PathTemplate::parse(&r.path) else {
                continue;
            };
            for (m, method) in &r.resource_methods {
                resources.push(CompiledResource {
                    resource_id: r.id.clone(),
                    resource_path: r.path.clone(),
                    method: m.clone(),
                    template: template.clone(),
                    integration: method.method_integration.clone(),
                    function: method
                        .method_integration
                        .as_ref()
                        .and_then(|i| i.uri.as_deref())
                        .map(|uri| target::parse(uri, ctx)),
                });
            }
        }
        stages.insert(
            s.stage_name.clone(),
            std::sync::Arc::new(DeployedRest {
                api_id: doc.api.id.clone(),
                stage: s.stage_name.clone(),
                stage_variables: s
                    .variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                resources,
                binary_media_types: doc.api.binary_media_types.clone(),
            }),
        );
    }
    Deployed::Rest {
        stages,
        disabled: doc.api.disable_execute_api_endpoint,
    }
}

/// Method and integration responses (what non-proxy integrations and MOCK CORS answers use;
/// kept as given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Method,
    Integration,
}

fn check_status(code: &str) -> Result<()> {
    let ok = code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && (b'1'..=b'5').contains(&code.as_bytes()[0]);
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid status code '{code}': expected 100-599."
        )))
    }
}

impl ApiGateway {
    /// PutMethodResponse / PutIntegrationResponse: stores the response for `status`.
    pub fn put_response(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
        status: &str,
        kind: ResponseKind,
        input: Value,
    ) -> Result<Value> {
        let m = check_method_name(method)?;
        check_status(status)?;
        let Value::Object(mut fields) = input else {
            return Err(bad("Invalid request body: expected a JSON object."));
        };
        fields.insert("statusCode".into(), Value::String(status.to_string()));
        let entry = Value::Object(fields);
        self.with_rest(api_id, |doc| {
            let method = Self::method_ref(doc, resource_id, &m)?;
            let slot = match kind {
                ResponseKind::Method => &mut method.method_responses,
                ResponseKind::Integration => {
                    let Some(i) = method.method_integration.as_mut() else {
                        return Err(ApigwError::NotFound(
                            "No integration defined for method".into(),
                        ));
                    };
                    &mut i.integration_responses
                }
            };
            let map = slot.get_or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(map) = map {
                map.insert(status.to_string(), entry.clone());
            }
            Ok(entry.clone())
        })
    }

    /// GetMethodResponse / GetIntegrationResponse.
    pub fn get_response(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
        status: &str,
        kind: ResponseKind,
    ) -> Result<Value> {
        let m = check_method_name(method)?;
        let mut doc = self.rest_doc(api_id)?;
        let method = Self::method_ref(&mut doc, resource_id, &m)?;
        let slot = match kind {
            ResponseKind::Method => method.method_responses.as_ref(),
            ResponseKind::Integration => method
                .method_integration
                .as_ref()
                .and_then(|i| i.integration_responses.as_ref()),
        };
        slot.and_then(|s| s.get(status))
            .cloned()
            .ok_or_else(|| ApigwError::NotFound("Invalid Response status code specified".into()))
    }

    /// DeleteMethodResponse / DeleteIntegrationResponse.
    pub fn delete_response(
        &self,
        api_id: &str,
        resource_id: &str,
        method: &str,
        status: &str,
        kind: ResponseKind,
    ) -> Result<()> {
        let m = check_method_name(method)?;
        self.with_rest(api_id, |doc| {
            let method = Self::method_ref(doc, resource_id, &m)?;
            let slot = match kind {
                ResponseKind::Method => method.method_responses.as_mut(),
                ResponseKind::Integration => method
                    .method_integration
                    .as_mut()
                    .and_then(|i| i.integration_responses.as_mut()),
            };
            match slot
                .and_then(Value::as_object_mut)
                .and_then(|m| m.remove(status))
            {
                Some(_) => Ok(()),
                None => Err(ApigwError::NotFound(
                    "Invalid Response status code specified".into(),
                )),
            }
        })
    }
}
