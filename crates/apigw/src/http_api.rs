//! HTTP APIs (API Gateway v2): the document kept per API and every control-plane operation.
//! Field names are the v2 wire's (camelCase); the wire crate serializes these types as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApigwError, Result, bad};
use crate::routing::{Candidate, PathTemplate};
use crate::service::{ApiGateway, Kind};
use crate::{ids, retention, target, time};

/// Routes per HTTP API (AWS's default quota).
pub const MAX_ROUTES: usize = 300;
/// Integrations per HTTP API.
pub const MAX_INTEGRATIONS: usize = 300;
/// Stages per API.
pub const MAX_STAGES: usize = 10;
/// Deployments kept per API (the oldest unreferenced ones are forgotten).
pub const MAX_DEPLOYMENTS: usize = 100;
/// Snapshots kept of the latest explicit deployments no stage serves (a stage made after its
/// deployment, as CloudFormation makes it, finds it); older unserved snapshots are dropped.
pub const UNSERVED_SNAPSHOTS: usize = 5;
/// The integration timeout's range for HTTP APIs, milliseconds.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 50..=30_000;

/// The methods a route key may name.
const METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// The API itself (`apiEndpoint` is added by the wire: it depends on the request's host).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    pub api_id: String,
    pub name: String,
    pub protocol_type: String,
    pub created_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub route_selection_expression: String,
    pub api_key_selection_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_configuration: Option<Cors>,
    pub disable_execute_api_endpoint: bool,
    pub disable_schema_validation: bool,
    pub ip_address_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub route_id: String,
    pub route_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub authorization_type: String,
    pub api_key_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_models: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub integration_id: String,
    pub integration_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_method: Option<String>,
    pub payload_format_version: String,
    pub timeout_in_millis: i64,
    pub connection_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_parameters: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: String,
    pub auto_deploy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: String,
    pub last_updated_date: String,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub default_route_settings: Value,
    #[serde(default)]
    pub route_settings: Value,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deployment_status_message: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub deployment_id: String,
    pub created_date: String,
    pub auto_deployed: bool,
    pub deployment_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a deployment deployed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
}

/// Everything stored for one HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpApiDoc {
    pub api: Api,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub integrations: Vec<Integration>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Snapshots of the deployments a stage still serves, by deployment id.
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
}

// ---- inputs (the v2 wire's request bodies) ----

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiInput {
    pub name: Option<String>,
    pub protocol_type: Option<String>,
    pub description: Option<String>,
    pub cors_configuration: Option<Cors>,
    pub credentials_arn: Option<String>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub disable_schema_validation: Option<bool>,
    pub route_key: Option<String>,
    pub route_selection_expression: Option<String>,
    pub api_key_selection_expression: Option<String>,
    pub ip_address_type: Option<String>,
    pub target: Option<String>,
    pub version: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteInput {
    pub route_key: Option<String>,
    pub target: Option<String>,
    pub authorization_type: Option<String>,
    pub authorizer_id: Option<String>,
    pub authorization_scopes: Option<Vec<String>>,
    pub api_key_required: Option<bool>,
    pub operation_name: Option<String>,
    pub request_parameters: Option<Value>,
    pub request_models: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationInput {
    pub integration_type: Option<String>,
    pub integration_uri: Option<String>,
    pub integration_method: Option<String>,
    pub payload_format_version: Option<String>,
    pub timeout_in_millis: Option<i64>,
    pub connection_type: Option<String>,
    pub description: Option<String>,
    pub credentials_arn: Option<String>,
    pub request_parameters: Option<Value>,
    pub response_parameters: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    pub stage_name: Option<String>,
    pub auto_deploy: Option<bool>,
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub stage_variables: Option<BTreeMap<String, String>>,
    pub default_route_settings: Option<Value>,
    pub route_settings: Option<Value>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInput {
    pub stage_name: Option<String>,
    pub description: Option<String>,
}

// ---- validation ----

fn length(value: &str, field: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(bad(format!(
            "Invalid {field}: length must be between {min} and {max} characters, got {n}."
        )));
    }
    Ok(())
}

fn opt_length(value: Option<&String>, field: &str, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| length(v, field, 0, max))
}

/// A route key: `$default`, or `METHOD /path` with a valid path template.
pub fn parse_route_key(key: &str) -> Result<Option<(String, PathTemplate)>> {
    if key == "$default" {
        return Ok(None);
    }
    let invalid = |why: &str| {
        bad(format!(
            "Unable to create route {key}: {why}. A route key is \"$default\" or \"METHOD /path\" \
             with METHOD one of {} (for example \"GET /pets/{{id}}\" or \"ANY /{{proxy+}}\").",
            METHODS.join(", ")
        ))
    };
    let (method, path) = key
        .split_once(' ')
        .ok_or_else(|| invalid("no method and path"))?;
    if !METHODS.contains(&method) {
        return Err(invalid(&format!("unknown method '{method}'")));
    }
    let template = PathTemplate::parse(path).map_err(|e| invalid(&e))?;
    Ok(Some((method.to_string(), template)))
}

fn check_cors(cors: &Cors) -> Result<()> {
    if let Some(age) = cors.max_age
        && !(-1..=86_400).contains(&age)
    {
        return Err(bad(format!(
            "Invalid CORS configuration: maxAge must be between -1 and 86400, got {age}."
        )));
    }
    if cors.allow_credentials == Some(true)
        && cors
            .allow_origins
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "*"))
    {
        return Err(bad(
            "Invalid CORS configuration: allowCredentials cannot be true when allowOrigins contains '*'.",
        ));
    }
    for (field, list) in [
        ("allowOrigins", &cors.allow_origins),
        ("allowMethods", &cors.allow_methods),
        ("allowHeaders", &cors.allow_headers),
        ("exposeHeaders", &cors.expose_headers),
    ] {
        if list.as_ref().is_some_and(|l| l.len() > 100) {
            return Err(bad(format!(
                "Invalid CORS configuration: {field} has more than 100 entries."
            )));
        }
    }
    Ok(())
}

fn check_stage_name(name: &str) -> Result<()> {
    length(name, "stageName", 1, 128)?;
    if name != "$default"
        && !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(bad(format!(
            "Invalid stage name '{name}': use \"$default\" or letters, digits and -._~ only."
        )));
    }
    Ok(())
}

pub(crate) fn check_stage_variables(vars: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in vars {
        if k.is_empty()
            || k.len() > 64
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad(format!(
                "Invalid stage variable name '{k}': use 1-64 letters, digits and underscores."
            )));
        }
        if v.chars().count() > 2048 {
            return Err(bad(format!(
                "Invalid stage variable value for '{k}': at most 2048 characters."
            )));
        }
    }
    Ok(())
}

fn integration_ref(target: &str) -> Result<&str> {
    target
        .strip_prefix("integrations/")
        .filter(|id| ids::plausible(id))
        .ok_or_else(|| {
            bad(format!(
                "Invalid target '{target}': a route's target is \"integrations/<integrationId>\"."
            ))
        })
}

impl HttpApiDoc {
    fn route_index(&self, route_id: &str) -> Result<usize> {
        self.routes
            .iter()
            .position(|r| r.route_id == route_id)
            .ok_or_else(|| {
                ApigwError::NotFound(format!("Invalid Route identifier specified {route_id}"))
            })
    }

    fn integration_index(&self, id: &str) -> Result<usize> {
        self.integrations
            .iter()
            .position(|i| i.integration_id == id)
            .ok_or_else(|| {
                ApigwError::NotFound(format!("Invalid Integration identifier specified {id}"))
            })
    }

    fn stage_index(&self, name: &str) -> Result<usize> {
        self.stages
            .iter()
            .position(|s| s.stage_name == name)
            .ok_or_else(|| {
                ApigwError::NotFound(format!("Invalid stage identifier specified {name}"))
            })
    }

    fn check_target(&self, target: Option<&String>) -> Result<()> {
        if let Some(t) = target {
            let id = integration_ref(t)?;
            if !self.integrations.iter().any(|i| i.integration_id == id) {
                return Err(bad(format!(
                    "Invalid target '{t}': integration {id} does not exist in this API."
                )));
            }
        }
        Ok(())
    }

    fn check_route_key_free(&self, key: &str, except: Option<&str>) -> Result<()> {
        if self
            .routes
            .iter()
            .any(|r| r.route_key == key && Some(r.route_id.as_str()) != except)
        {
            return Err(ApigwError::Conflict(format!(
                "Unable to create route {key}: a route with this key already exists in this API."
            )));
        }
        Ok(())
    }

    /// A new deployment of the current routes and integrations.
    fn deploy(&mut self, description: Option<String>, auto: bool) -> String {
        let id = ids::child_id();
        self.snapshots.insert(
            id.clone(),
            Snapshot {
                routes: self.routes.clone(),
                integrations: self.integrations.clone(),
            },
        );
        self.deployments.push(Deployment {
            deployment_id: id.clone(),
            created_date: time::iso8601(time::now_ms()),
            auto_deployed: auto,
            deployment_status: "DEPLOYED".into(),
            description,
        });
        id
    }

    /// After a change of routes or integrations: stages with auto-deploy get a new deployment.
    pub(crate) fn changed(&mut self) {
        if !self.stages.iter().any(|s| s.auto_deploy) {
            return;
        }
        let id = self.deploy(None, true);
        let now = time::iso8601(time::now_ms());
        for s in self.stages.iter_mut().filter(|s| s.auto_deploy) {
            s.deployment_id = Some(id.clone());
            s.last_updated_date.clone_from(&now);
            s.last_deployment_status_message = Some(format!(
                "Successfully deployed stage with deployment ID '{id}'"
            ));
        }
        self.forget();
    }

    /// Drops snapshots no stage serves and the oldest deployments past the limit.
    fn forget(&mut self) {
        let served: Vec<String> = self
            .stages
            .iter()
            .filter_map(|s| s.deployment_id.clone())
            .collect();
        retention::forget(
            &mut self.deployments,
            &mut self.snapshots,
            &served,
            (MAX_DEPLOYMENTS, UNSERVED_SNAPSHOTS),
            |d| &d.deployment_id,
            |d| !d.auto_deployed,
        );
    }
}

/// A page of a list: `maxResults` (a string on the wire) and `nextToken` (an offset here).
pub fn page<T: Clone>(
    items: &[T],
    max_results: Option<&str>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>)> {
    let max = match max_results {
        None => items.len().max(1),
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| bad(format!("Invalid maxResults '{m}': a number from 1 to 500.")))?,
    };
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| bad(format!("Invalid nextToken '{t}'.")))?,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

impl ApiGateway {
    fn http_doc(&self, api_id: &str) -> Result<HttpApiDoc> {
        self.load(api_id, Kind::Http)
    }

    /// Applies `f` to the API's document and stores it (compare-and-swap, retried).
    fn with_http<T>(&self, api_id: &str, f: impl FnMut(&mut HttpApiDoc) -> Result<T>) -> Result<T> {
        self.update(api_id, Kind::Http, f)
    }

    /// CreateApi, including quick create (`target`: a route, an integration and an
    /// auto-deploying `$default` stage).
    pub fn create_http_api(&self, input: ApiInput) -> Result<HttpApiDoc> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| bad("Invalid input: name is required."))?;
        length(&name, "name", 1, 128)?;
        match input.protocol_type.as_deref() {
            Some("HTTP") => {}
            Some("WEBSOCKET") => {
                return Err(bad(
                    "Kindling serves HTTP APIs only: protocolType WEBSOCKET is not supported.",
                ));
            }
            Some(other) => {
                return Err(bad(format!(
                    "Invalid protocolType '{other}': must be HTTP or WEBSOCKET."
                )));
            }
            None => return Err(bad("Invalid input: protocolType is required.")),
        }
        opt_length(input.description.as_ref(), "description", 1024)?;
        opt_length(input.version.as_ref(), "version", 64)?;
        if let Some(c) = &input.cors_configuration {
            check_cors(c)?;
        }
        if let Some(r) = &input.route_selection_expression
            && r != "$request.method $request.path"
        {
            return Err(bad(format!(
                "Invalid routeSelectionExpression '{r}': HTTP APIs use \"$request.method $request.path\"."
            )));
        }
        if input.target.is_none() && (input.route_key.is_some() || input.credentials_arn.is_some())
        {
            return Err(bad(
                "routeKey and credentialsArn are only allowed with target (quick create).",
            ));
        }
        let now = time::iso8601(time::now_ms());
        let mut doc = HttpApiDoc {
            api: Api {
                api_id: ids::api_id(),
                name,
                protocol_type: "HTTP".into(),
                created_date: now.clone(),
                description: input.description,
                route_selection_expression: "$request.method $request.path".into(),
                api_key_selection_expression: input
                    .api_key_selection_expression
                    .unwrap_or_else(|| "$request.header.x-api-key".into()),
                cors_configuration: input.cors_configuration,
                disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
                disable_schema_validation: input.disable_schema_validation.unwrap_or(false),
                ip_address_type: input.ip_address_type.unwrap_or_else(|| "ipv4".into()),
                version: input.version,
                tags: input.tags.unwrap_or_default(),
            },
            routes: Vec::new(),
            integrations: Vec::new(),
            stages: Vec::new(),
            deployments: Vec::new(),
            snapshots: BTreeMap::new(),
        };
        if let Some(target) = input.target {
            let route_key = input.route_key.unwrap_or_else(|| "$default".into());
            parse_route_key(&route_key)?;
            target::parse(&target, self.arn()).map_err(|e| bad(e.to_string()))?;
            let integration_id = ids::child_id();
            doc.integrations.push(Integration {
                integration_id: integration_id.clone(),
                integration_type: "AWS_PROXY".into(),
                integration_uri: Some(target),
                integration_method: Some("POST".into()),
                payload_format_version: "2.0".into(),
                timeout_in_millis: 30_000,
                connection_type: "INTERNET".into(),
                description: None,
                credentials_arn: input.credentials_arn,
                request_parameters: None,
                response_parameters: None,
                api_gateway_managed: true,
            });
            doc.routes.push(Route {
                route_id: ids::child_id(),
                route_key,
                target: Some(format!("integrations/{integration_id}")),
                authorization_type: "NONE".into(),
                api_key_required: false,
                authorizer_id: None,
                authorization_scopes: None,
                operation_name: None,
                request_parameters: None,
                request_models: None,
                api_gateway_managed: true,
            });
            doc.stages.push(Stage {
                stage_name: "$default".into(),
                auto_deploy: true,
                deployment_id: None,
                description: None,
                created_date: now.clone(),
                last_updated_date: now,
                stage_variables: BTreeMap::new(),
                default_route_settings: serde_json::json!({"detailedMetricsEnabled": false}),
                route_settings: serde_json::json!({}),
                tags: BTreeMap::new(),
                last_deployment_status_message: None,
                api_gateway_managed: true,
            });
            doc.changed();
        }
        self.insert(&doc.api.api_id.clone(), Kind::Http, &doc)?;
        Ok(doc)
    }

    pub fn get_http_api(&self, api_id: &str) -> Result<HttpApiDoc> {
        self.http_doc(api_id)
    }

    pub fn http_apis(&self) -> Result<Vec<HttpApiDoc>> {
        self.list(Kind::Http)
    }

    /// UpdateApi.
    pub fn update_http_api(&self, api_id: &str, input: ApiInput) -> Result<HttpApiDoc> {
        if let Some(n) = &input.name {
            length(n, "name", 1, 128)?;
        }
        opt_length(input.description.as_ref(), "description", 1024)?;
        opt_length(input.version.as_ref(), "version", 64)?;
        if let Some(c) = &input.cors_configuration {
            check_cors(c)?;
        }
        if input.protocol_type.is_some() {
            return Err(bad("protocolType cannot be changed."));
        }
        let ctx = self.arn().clone();
        self.with_http(api_id, |doc| {
            let a = &mut doc.api;
            if let Some(v) = &input.name {
                a.name.clone_from(v);
            }
            if input.description.is_some() {
                a.description.clone_from(&input.description);
            }
            if input.version.is_some() {
                a.version.clone_from(&input.version);
            }
            if input.cors_configuration.is_some() {
                a.cors_configuration.clone_from(&input.cors_configuration);
            }
            if let Some(v) = input.disable_execute_api_endpoint {
                a.disable_execute_api_endpoint = v;
            }
            if let Some(v) = input.disable_schema_validation {
                a.disable_schema_validation = v;
            }
            // Quick-created APIs: target and routeKey change the managed route/integration.
            if input.target.is_some() || input.route_key.is_some() {
                if let Some(t) = &input.target {
                    target::parse(t, &ctx).map_err(|e| bad(e.to_string()))?;
                }
                if let Some(k) = &input.route_key {
                    parse_route_key(k)?;
                }
                let managed = doc.routes.iter().position(|r| r.api_gateway_managed);
                let Some(ri) = managed else {
                    return Err(bad(
                        "target and routeKey can only be updated on an API made by quick create.",
                    ));
                };
                if let Some(k) = &input.route_key {
                    let rid = doc.routes[ri].route_id.clone();
                    doc.check_route_key_free(k, Some(&rid))?;
                    doc.routes[ri].route_key.clone_from(k);
                }
                if let Some(t) = &input.target
                    && let Some(i) = doc.integrations.iter_mut().find(|i| i.api_gateway_managed)
                {
                    i.integration_uri = Some(t.clone());
                }
                doc.changed();
            }
            Ok(doc.clone())
        })
    }

    pub fn delete_http_api(&self, api_id: &str) -> Result<()> {
        self.remove(api_id, Kind::Http)
    }

    // ---- routes ----

    pub fn create_route(&self, api_id: &str, input: RouteInput) -> Result<Route> {
        let key = input
            .route_key
            .clone()
            .ok_or_else(|| bad("Invalid input: routeKey is required."))?;
        parse_route_key(&key)?;
        let auth = check_authorization(input.authorization_type.as_deref())?;
        self.with_http(api_id, |doc| {
            if doc.routes.len() >= MAX_ROUTES {
                return Err(ApigwError::LimitExceeded(format!(
                    "Unable to create route {key}: an HTTP API has at most {MAX_ROUTES} routes."
                )));
            }
            doc.check_route_key_free(&key, None)?;
            doc.check_target(input.target.as_ref())?;
            let route = Route {
                route_id: ids::child_id(),
                route_key: key.clone(),
                target: input.target.clone(),
                authorization_type: auth.clone(),
                api_key_required: input.api_key_required.unwrap_or(false),
                authorizer_id: input.authorizer_id.clone(),
                authorization_scopes: input.authorization_scopes.clone(),
                operation_name: input.operation_name.clone(),
                request_parameters: input.request_parameters.clone(),
                request_models: input.request_models.clone(),
                api_gateway_managed: false,
            };
            doc.routes.push(route.clone());
            doc.changed();
            Ok(route)
        })
    }

    pub fn get_route(&self, api_id: &str, route_id: &str) -> Result<Route> {
        let doc = self.http_doc(api_id)?;
        let i = doc.route_index(route_id)?;
        Ok(doc.routes[i].clone())
    }

    pub fn update_route(&self, api_id: &str, route_id: &str, input: RouteInput) -> Result<Route> {
        if let Some(k) = &input.route_key {
            parse_route_key(k)?;
        }
        let auth = match &input.authorization_type {
            Some(a) => Some(check_authorization(Some(a))?),
            None => None,
        };
        self.with_http(api_id, |doc| {
            let i = doc.route_index(route_id)?;
            if let Some(k) = &input.route_key {
                doc.check_route_key_free(k, Some(route_id))?;
            }
            doc.check_target(input.target.as_ref())?;
            let r = &mut doc.routes[i];
            if let Some(k) = &input.route_key {
                r.route_key.clone_from(k);
            }
            if input.target.is_some() {
                r.target.clone_from(&input.target);
            }
            if let Some(a) = &auth {
                r.authorization_type.clone_from(a);
            }
            if let Some(v) = input.api_key_required {
                r.api_key_required = v;
            }
            if input.operation_name.is_some() {
                r.operation_name.clone_from(&input.operation_name);
            }
            if input.authorizer_id.is_some() {
                r.authorizer_id.clone_from(&input.authorizer_id);
            }
            let route = r.clone();
            doc.changed();
            Ok(route)
        })
    }

    pub fn delete_route(&self, api_id: &str, route_id: &str) -> Result<()> {
        self.with_http(api_id, |doc| {
            let i = doc.route_index(route_id)?;
            doc.routes.remove(i);
            doc.changed();
            Ok(())
        })
    }

    // ---- integrations ----

    pub fn create_integration(&self, api_id: &str, input: IntegrationInput) -> Result<Integration> {
        let integration = self.new_integration(input)?;
        self.with_http(api_id, |doc| {
            if doc.integrations.len() >= MAX_INTEGRATIONS {
                return Err(ApigwError::LimitExceeded(format!(
                    "An HTTP API has at most {MAX_INTEGRATIONS} integrations."
                )));
            }
            let mut i = integration.clone();
            i.integration_id = ids::child_id();
            doc.integrations.push(i.clone());
            doc.changed();
            Ok(i)
        })
    }

    fn new_integration(&self, input: IntegrationInput) -> Result<Integration> {
        let kind = input
            .integration_type
            .clone()
            .ok_or_else(|| bad("Invalid input: integrationType is required."))?;
        match kind.as_str() {
            "AWS_PROXY" => {}
            "HTTP_PROXY" | "HTTP" | "AWS" | "MOCK" => {
                return Err(bad(format!(
                    "Kindling serves AWS_PROXY integrations to Lambda functions; integrationType {kind} is not supported."
                )));
            }
            other => {
                return Err(bad(format!(
                    "Invalid integrationType '{other}': must be one of AWS, HTTP, MOCK, HTTP_PROXY, AWS_PROXY."
                )));
            }
        }
        let uri = input.integration_uri.clone().ok_or_else(|| {
            bad("Invalid input: integrationUri is required for AWS_PROXY integrations.")
        })?;
        length(&uri, "integrationUri", 1, 2048)?;
        target::parse(&uri, self.arn()).map_err(|e| bad(e.to_string()))?;
        let version = match input.payload_format_version.as_deref() {
            Some(v @ ("1.0" | "2.0")) => v.to_string(),
            Some(other) => {
                return Err(bad(format!(
                    "Invalid payloadFormatVersion '{other}': must be 1.0 or 2.0."
                )));
            }
            None => {
                return Err(bad(
                    "Invalid input: payloadFormatVersion is required for AWS_PROXY integrations of HTTP APIs (1.0 or 2.0).",
                ));
            }
        };
        let timeout = input.timeout_in_millis.unwrap_or(30_000);
        if !TIMEOUT_RANGE.contains(&timeout) {
            return Err(bad(format!(
                "Invalid timeoutInMillis {timeout}: must be between 50 and 30000."
            )));
        }
        if let Some(m) = &input.integration_method
            && m != "POST"
        {
            return Err(bad(format!(
                "Invalid integrationMethod '{m}': Lambda integrations use POST."
            )));
        }
        if let Some(c) = &input.connection_type
            && c != "INTERNET"
        {
            return Err(bad(format!(
                "Invalid connectionType '{c}': Lambda integrations use INTERNET."
            )));
        }
        opt_length(input.description.as_ref(), "description", 1024)?;
        Ok(Integration {
            integration_id: String::new(),
            integration_type: kind,
            integration_uri: Some(uri),
            integration_method: Some("POST".into()),
            payload_format_version: version,
            timeout_in_millis: timeout,
            connection_type: "INTERNET".into(),
            description: input.description,
            credentials_arn: input.credentials_arn,
            request_parameters: input.request_parameters,
            response_parameters: input.response_parameters,
            api_gateway_managed: false,
        })
    }

    pub fn get_integration(&self, api_id: &str, id: &str) -> Result<Integration> {
        let doc = self.http_doc(api_id)?;
        let i = doc.integration_index(id)?;
        Ok(doc.integrations[i].clone())
    }

    pub fn update_integration(
        &self,
        api_id: &str,
        id: &str,
        input: IntegrationInput,
    ) -> Result<Integration> {
        let ctx = self.arn().clone();
        self.with_http(api_id, |doc| {
            let i = doc.integration_index(id)?;
            let cur = doc.integrations[i].clone();
            let merged = IntegrationInput {
                integration_type: Some(
                    input
                        .integration_type
                        .clone()
                        .unwrap_or_else(|| cur.integration_type.clone()),
                ),
                integration_uri: input
                    .integration_uri
                    .clone()
                    .or_else(|| cur.integration_uri.clone()),
                integration_method: input.integration_method.clone(),
                payload_format_version: Some(
                    input
                        .payload_format_version
                        .clone()
                        .unwrap_or_else(|| cur.payload_format_version.clone()),
                ),
                timeout_in_millis: input.timeout_in_millis.or(Some(cur.timeout_in_millis)),
                connection_type: input.connection_type.clone(),
                description: input.description.clone().or(cur.description.clone()),
                credentials_arn: input
                    .credentials_arn
                    .clone()
                    .or(cur.credentials_arn.clone()),
                request_parameters: input
                    .request_parameters
                    .clone()
                    .or(cur.request_parameters.clone()),
                response_parameters: input
                    .response_parameters
                    .clone()
                    .or(cur.response_parameters.clone()),
            };
            let _ = &ctx;
            let mut next = self.new_integration(merged)?;
            next.integration_id = cur.integration_id.clone();
            next.api_gateway_managed = cur.api_gateway_managed;
            doc.integrations[i] = next.clone();
            doc.changed();
            Ok(next)
        })
    }

    pub fn delete_integration(&self, api_id: &str, id: &str) -> Result<()> {
        self.with_http(api_id, |doc| {
            let i = doc.integration_index(id)?;
            let target = format!("integrations/{id}");
            if let Some(r) = doc
                .routes
                .iter()
                .find(|r| r.target.as_deref() == Some(&target))
            {
                return Err(ApigwError::Conflict(format!(
                    "Cannot delete integration {id}: route {} ({}) targets it.",
                    r.route_id, r.route_key
                )));
            }
            doc.integrations.remove(i);
            doc.changed();
            Ok(())
        })
    }

    // ---- stages and deployments ----

    pub fn create_stage(&self, api_id: &str, input: StageInput) -> Result<Stage> {
        let name = input
            .stage_name
            .clone()
            .ok_or_else(|| bad("Invalid input: stageName is required."))?;
        check_stage_name(&name)?;
        opt_length(input.description.as_ref(), "description", 1024)?;
        if let Some(v) = &input.stage_variables {
            check_stage_variables(v)?;
        }
        self.with_http(api_id, |doc| {
            if doc.stages.iter().any(|s| s.stage_name == name) {
                return Err(ApigwError::Conflict(format!(
                    "Stage {name} already exists for this API."
                )));
            }
            if doc.stages.len() >= MAX_STAGES {
                return Err(ApigwError::LimitExceeded(format!(
                    "An API has at most {MAX_STAGES} stages."
                )));
            }
            if let Some(d) = &input.deployment_id
                && !doc.deployments.iter().any(|x| &x.deployment_id == d)
            {
                return Err(ApigwError::NotFound(format!(
                    "Invalid deployment identifier specified {d}"
                )));
            }
            let now = time::iso8601(time::now_ms());
            let stage = Stage {
                stage_name: name.clone(),
                auto_deploy: input.auto_deploy.unwrap_or(false),
                deployment_id: input.deployment_id.clone(),
                description: input.description.clone(),
                created_date: now.clone(),
                last_updated_date: now,
                stage_variables: input.stage_variables.clone().unwrap_or_default(),
                default_route_settings: input
                    .default_route_settings
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"detailedMetricsEnabled": false})),
                route_settings: input
                    .route_settings
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({})),
                tags: input.tags.clone().unwrap_or_default(),
                last_deployment_status_message: None,
                api_gateway_managed: false,
            };
            // A deployment named by id must have its snapshot kept.
            if let Some(d) = &stage.deployment_id
                && !doc.snapshots.contains_key(d)
            {
                return Err(bad(format!(
                    "Deployment {d} is no longer available; create a new deployment."
                )));
            }
            doc.stages.push(stage);
            if input.auto_deploy == Some(true) {
                doc.changed();
            }
            let i = doc.stage_index(&name)?;
            Ok(doc.stages[i].clone())
        })
    }

    pub fn get_stage(&self, api_id: &str, name: &str) -> Result<Stage> {
        let doc = self.http_doc(api_id)?;
        let i = doc.stage_index(name)?;
        Ok(doc.stages[i].clone())
    }

    pub fn update_stage(&self, api_id: &str, name: &str, input: StageInput) -> Result<Stage> {
        if let Some(v) = &input.stage_variables {
            check_stage_variables(v)?;
        }
        opt_length(input.description.as_ref(), "description", 1024)?;
        self.with_http(api_id, |doc| {
            let i = doc.stage_index(name)?;
            if let Some(d) = &input.deployment_id
                && !doc.snapshots.contains_key(d)
                && !doc.deployments.iter().any(|x| &x.deployment_id == d)
            {
                return Err(ApigwError::NotFound(format!(
                    "Invalid deployment identifier specified {d}"
                )));
            }
            let s = &mut doc.stages[i];
            if let Some(v) = input.auto_deploy {
                s.auto_deploy = v;
            }
            if input.deployment_id.is_some() {
                s.deployment_id.clone_from(&input.deployment_id);
            }
            if input.description.is_some() {
                s.description.clone_from(&input.description);
            }
            if let Some(v) = &input.stage_variables {
                s.stage_variables.clone_from(v);
            }
            if let Some(v) = &input.default_route_settings {
                s.default_route_settings.clone_from(v);
            }
            s.last_updated_date = time::iso8601(time::now_ms());
            if input.auto_deploy == Some(true) {
                doc.changed();
            }
            doc.forget();
            Ok(doc.stages[i].clone())
        })
    }

    pub fn delete_stage(&self, api_id: &str, name: &str) -> Result<()> {
        self.with_http(api_id, |doc| {
            let i = doc.stage_index(name)?;
            doc.stages.remove(i);
            doc.forget();
            Ok(())
        })
    }

    pub fn create_deployment(&self, api_id: &str, input: DeploymentInput) -> Result<Deployment> {
        opt_length(input.description.as_ref(), "description", 1024)?;
        self.with_http(api_id, |doc| {
            let stage = match &input.stage_name {
                Some(n) => Some(
                    doc.stage_index(n)
                        .map_err(|_| bad(format!("Invalid stage identifier specified {n}")))?,
                ),
                None => None,
            };
            if let Some(i) = stage
                && doc.stages[i].auto_deploy
            {
                return Err(bad(format!(
                    "Stage {} has autoDeploy enabled: it is deployed on every change.",
                    doc.stages[i].stage_name
                )));
            }
            check_deployable(doc)?;
            let id = doc.deploy(input.description.clone(), false);
            if let Some(i) = stage {
                let s = &mut doc.stages[i];
                s.deployment_id = Some(id.clone());
                s.last_updated_date = time::iso8601(time::now_ms());
            }
            doc.forget();
            doc.deployments
                .iter()
                .find(|d| d.deployment_id == id)
                .cloned()
                .ok_or_else(|| {
                    ApigwError::NotFound(format!("Invalid deployment identifier specified {id}"))
                })
        })
    }

    pub fn get_deployment(&self, api_id: &str, id: &str) -> Result<Deployment> {
        let doc = self.http_doc(api_id)?;
        doc.deployments
            .iter()
            .find(|d| d.deployment_id == id)
            .cloned()
            .ok_or_else(|| {
                ApigwError::NotFound(format!("Invalid deployment identifier specified {id}"))
            })
    }

    pub fn delete_deployment(&self, api_id: &str, id: &str) -> Result<()> {
        self.with_http(api_id, |doc| {
            let i = doc
                .deployments
                .iter()
                .position(|d| d.deployment_id == id)
                .ok_or_else(|| {
                    ApigwError::NotFound(format!("Invalid deployment identifier specified {id}"))
                })?;
            if let Some(s) = doc
                .stages
                .iter()
                .find(|s| s.deployment_id.as_deref() == Some(id))
            {
                return Err(bad(format!(
                    "Deployment {id} cannot be deleted: stage {} serves it.",
                    s.stage_name
                )));
            }
            doc.deployments.remove(i);
            doc.snapshots.remove(id);
            Ok(())
        })
    }
}

fn check_authorization(kind: Option<&str>) -> Result<String> {
    match kind {
        None | Some("NONE") => Ok("NONE".into()),
        Some(k @ ("AWS_IAM" | "CUSTOM" | "JWT")) => Err(bad(format!(
            "Kindling does not enforce route authorization: authorizationType {k} is not supported (use NONE)."
        ))),
        Some(other) => Err(bad(format!(
            "Invalid authorizationType '{other}': must be one of NONE, AWS_IAM, CUSTOM, JWT."
        ))),
    }
}

/// Every route's target names an existing integration.
fn check_deployable(doc: &HttpApiDoc) -> Result<()> {
    for r in &doc.routes {
        doc.check_target(r.target.as_ref())?;
    }
    Ok(())
}

/// A route ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    pub route_key: String,
    pub method: String,
    pub template: PathTemplate,
    /// The route's integration (`None`: the route has no target).
    pub integration: Option<Integration>,
    /// The function its integration URI names, parsed once per deployment (`None`: no URI).
    pub function: Option<std::result::Result<target::FunctionTarget, target::TargetError>>,
}

impl Candidate for CompiledRoute {
    fn template(&self) -> &PathTemplate {
        &self.template
    }
    fn method(&self) -> &str {
        &self.method
    }
}

/// Routes of a snapshot ready for matching, and its `$default` route.
pub fn compile(
    snapshot: &Snapshot,
    ctx: &kindling_model::ArnContext,
) -> (Vec<CompiledRoute>, Option<CompiledRoute>) {
    let function = |i: &Option<Integration>| {
        i.as_ref()
            .and_then(|i| i.integration_uri.as_deref())
            .map(|uri| target::parse(uri, ctx))
    };
    let integration = |r: &Route| {
        r.target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
            .and_then(|id| {
                snapshot
                    .integrations
                    .iter()
                    .find(|i| i.integration_id == id)
            })
            .cloned()
    };
    let mut routes = Vec::new();
    let mut default = None;
    for r in &snapshot.routes {
        match parse_route_key(&r.route_key) {
            Ok(Some((method, template))) => {
                let integration = integration(r);
                routes.push(CompiledRoute {
                    route_key: r.route_key.clone(),
                    method,
                    template,
                    function: function(&integration),
                    integration,
                })
            }
            Ok(None) => {
                let integration = integration(r);
                default = Some(CompiledRoute {
                    route_key: r.route_key.clone(),
                    method: "ANY".into(),
                    template: PathTemplate::root(),
                    function: function(&integration),
                    integration,
                });
            }
            Err(_) => {}
        }
    }
    (routes, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        assert!(parse_route_key("$default").unwrap().is_none());
        let (m, _) = parse_route_key("GET /pets/{id}").unwrap().unwrap();
        assert_eq!(m, "GET");
        for bad_key in [
            "GET",
            "FETCH /x",
            "GET pets",
            "GET /{proxy+}/x",
            "get /x",
            "",
        ] {
            assert!(parse_route_key(bad_key).is_err(), "{bad_key}");
        }
    }

    #[test]
    fn pages() {
        let items: Vec<u32> = (0..5).collect();
        let (p, next) = page(&items, Some("2"), None).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = page(&items, Some("2"), Some("4")).unwrap();
        assert_eq!((p, next), (vec![4], None));
        assert!(page(&items, Some("x"), None).is_err());
        assert!(page(&items, None, Some("9")).is_err());
    }
}
