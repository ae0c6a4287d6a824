//! REST APIs (`AWS::Serverless::Api`, implicit `ServerlessRestApi`) and HTTP APIs
//! (`AWS::Serverless::HttpApi`, implicit `ServerlessHttpApi`), with the routes of `Api` and
//! `HttpApi` events and their invoke permissions.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::function::Target;
use super::globals::{Globals, merge};
use super::hash::{full_hash, logical_id_hash, python_json};
use super::{
    Invalid, Problems, Resources, SamContext, Translated, check_properties, r#ref,
    resolve_parameter_refs, s3_location,
};

pub(crate) const IMPLICIT_REST: &str = "ServerlessRestApi";
pub(crate) const IMPLICIT_HTTP: &str = "ServerlessHttpApi";
const ANY_METHOD: &str = "x-amazon-apigateway-any-method";
const INTEGRATION: &str = "x-amazon-apigateway-integration";

const REST_PROPERTIES: &[&str] = &[
    "StageName",
    "DefinitionBody",
    "DefinitionUri",
    "Name",
    "Description",
    "Cors",
    "BinaryMediaTypes",
    "Variables",
    "EndpointConfiguration",
    "TracingEnabled",
    "MethodSettings",
    "OpenApiVersion",
    "CacheClusterEnabled",
    "CacheClusterSize",
    "Tags",
    "MinimumCompressionSize",
    "DisableExecuteApiEndpoint",
    "FailOnWarnings",
    "Mode",
];
const HTTP_PROPERTIES: &[&str] = &[
    "StageName",
    "DefinitionBody",
    "DefinitionUri",
    "Name",
    "Description",
    "CorsConfiguration",
    "StageVariables",
    "Tags",
    "DefaultRouteSettings",
    "RouteSettings",
    "AccessLogSettings",
    "FailOnWarnings",
    "DisableExecuteApiEndpoint",
];

#[derive(Debug, Clone)]
struct Route {
    function: String,
    event: String,
    path: String,
    method: String,
    target: Target,
    timeout: Option<Value>,
    payload: Option<Value>,
}

/// Routes of every function's `Api`/`HttpApi` events, by API logical id.
#[derive(Default)]
pub(crate) struct Routes {
    rest: IndexMap<String, Vec<Route>>,
    http: IndexMap<String, Vec<Route>>,
}

fn api_ref(
    value: Option<&Value>,
    kind: &str,
    property: &str,
    resources: &Map<String, Value>,
) -> Translated<Option<String>> {
    let Some(v) = value else { return Ok(None) };
    let id = v.get("Ref").and_then(Value::as_str).filter(|id| {
        resources
            .get(*id)
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            == Some(kind)
    });
    match id {
        Some(id) => Ok(Some(id.to_string())),
        None => Err(format!(
            "{property} must be a valid reference to an '{kind}' resource in same template."
        )
        .into()),
    }
}

fn string_prop(props: &Map<String, Value>, key: &str) -> Translated<Option<String>> {
    match props.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("Property '{key}' must be a string.").into()),
    }
}

impl Routes {
    pub(crate) fn add_rest(
        &mut self,
        function: &str,
        event: &str,
        props: &Map<String, Value>,
        target: &Target,
        resources: &Map<String, Value>,
    ) -> Translated<()> {
        let path = string_prop(props, "Path")?.ok_or("Event is missing key 'Path'.")?;
        let method = string_prop(props, "Method")?.ok_or("Event is missing key 'Method'.")?;
        let api = api_ref(
            props.get("RestApiId"),
            "AWS::Serverless::Api",
            "RestApiId",
            resources,
        )?
        .unwrap_or_else(|| IMPLICIT_REST.to_string());
        self.rest.entry(api).or_default().push(Route {
            function: function.to_string(),
            event: event.to_string(),
            path,
            method: method.to_lowercase(),
            target: target.clone(),
            timeout: props.get("TimeoutInMillis").cloned(),
            payload: None,
        });
        Ok(())
    }

    pub(crate) fn add_http(
        &mut self,
        function: &str,
        event: &str,
        props: &Map<String, Value>,
        target: &Target,
        resources: &Map<String, Value>,
    ) -> Translated<()> {
        let path = string_prop(props, "Path")?;
        let method = string_prop(props, "Method")?;
        let (path, method) = match (path, method) {
            (Some(p), Some(m)) => (p, m.to_lowercase()),
            (None, None) => ("$default".to_string(), "any".to_string()),
            _ => {
                return Err(
                    "Event must have both Path and Method, or neither (the default route).".into(),
                );
            }
        };
        let api = api_ref(
            props.get("ApiId"),
            "AWS::Serverless::HttpApi",
            "ApiId",
            resources,
        )?
        .unwrap_or_else(|| IMPLICIT_HTTP.to_string());
        self.http.entry(api).or_default().push(Route {
            function: function.to_string(),
            event: event.to_string(),
            path,
            method,
            target: target.clone(),
            timeout: props.get("TimeoutInMillis").cloned(),
            payload: props.get("PayloadFormatVersion").cloned(),
        });
        Ok(())
    }
}

/// `{id}` path parameters become `*` in permission source ARNs.
fn arn_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn arn_method(method: &str) -> String {
    if method == "any" {
        "*".to_string()
    } else {
        method.to_uppercase()
    }
}

fn invoke_permission(route: &Route, source: String, api: &str) -> Value {
    json!({"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction",
        "FunctionName": route.target.name_ref(),
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": {"Fn::Sub": [source, {"__ApiId__": r#ref(api), "__Stage__": "*"}]}
    }})
}

fn method_key(method: &str) -> String {
    if method == "any" {
        ANY_METHOD.to_string()
    } else {
        method.to_string()
    }
}

fn paths_mut(body: &mut Value) -> Translated<&mut Map<String, Value>> {
    let obj = body
        .as_object_mut()
        .ok_or("DefinitionBody must be a dictionary.")?;
    if !obj.contains_key("paths") {
        obj.insert("paths".into(), json!({}));
    }
    obj.get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Invalid::from("'paths' must be a dictionary."))
}

fn is_openapi3(body: &Value) -> bool {
    body.get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with('3'))
}

pub(crate) fn translate_all(
    explicit: &IndexMap<String, Map<String, Value>>,
    routes: &Routes,
    ctx: &SamContext,
    globals: &Globals,
    out: &mut Resources,
    problems: &mut Problems,
) {
    for (id, resource) in explicit {
        let kind = resource
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let props = resource
            .get("Properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let result = if kind == "AWS::Serverless::Api" {
            rest_api(
                id,
                &props,
                resource,
                routes.rest.get(id).map_or(&[][..], Vec::as_slice),
                ctx,
                out,
            )
        } else {
            http_api(
                id,
                &props,
                resource,
                routes.http.get(id).map_or(&[][..], Vec::as_slice),
                ctx,
                out,
            )
        };
        if let Err(Invalid(msg)) = result {
            problems.resource(id, msg);
        }
    }
    if let Some(implicit) = routes.rest.get(IMPLICIT_REST) {
        let mut props = globals.api().clone();
        props.insert("StageName".into(), Value::from("Prod"));
        if let Err(Invalid(msg)) = rest_api(IMPLICIT_REST, &props, &Map::new(), implicit, ctx, out)
        {
            problems.resource(IMPLICIT_REST, msg);
        }
    }
    if let Some(implicit) = routes.http.get(IMPLICIT_HTTP)
        && let Err(Invalid(msg)) =
            http_api(IMPLICIT_HTTP, &Map::new(), &Map::new(), implicit, ctx, out)
    {
        problems.resource(IMPLICIT_HTTP, msg);
    }
}

fn attributes(resource: &Map<String, Value>) -> Map<String, Value> {
    [
        "Condition",
        "DependsOn",
        "DeletionPolicy",
        "UpdateReplacePolicy",
        "Metadata",
    ]
    .iter()
    .filter_map(|a| resource.get(*a).map(|v| (a.to_string(), v.clone())))
    .collect()
}

fn with_attributes(
    resource_type: &str,
    attrs: &Map<String, Value>,
    props: Map<String, Value>,
) -> Value {
    let mut r = Map::new();
    r.insert("Type".into(), Value::from(resource_type));
    for (k, v) in attrs {
        r.insert(k.clone(), v.clone());
    }
    r.insert("Properties".into(), Value::Object(props));
    Value::Object(r)
}

fn stage_logical_id(api: &str, stage: &str) -> String {
    if !stage.is_empty() && stage.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("{api}{stage}Stage")
    } else {
        format!("{api}Stage{}", logical_id_hash(&Value::from(stage)))
    }
}

fn rest_api(
    id: &str,
    props: &Map<String, Value>,
    resource: &Map<String, Value>,
    routes: &[Route],
    ctx: &SamContext,
    out: &mut Resources,
) -> Translated<()> {
    check_properties(props, REST_PROPERTIES, "Api")?;
    let attrs = attributes(resource);
    let stage = resolve_parameter_refs(
        props
            .get("StageName")
            .ok_or("Missing required property 'StageName'.")?,
        ctx,
    );
    let stage = stage
        .as_str()
        .ok_or("'StageName' must be a string.")?
        .to_string();
    let openapi_version = props.get("OpenApiVersion").and_then(Value::as_str);
    let partition = &ctx.partition;

    let (mut body, managed) = match (props.get("DefinitionBody"), props.get("DefinitionUri")) {
        (Some(_), Some(_)) => {
            return Err(
                "Specify either 'DefinitionUri' or 'DefinitionBody' property and not both.".into(),
            );
        }
        (Some(b), None) => (Some(b.clone()), false),
        (None, Some(_)) => (None, false),
        (None, None) => {
            let mut b = Map::new();
            match openapi_version {
                Some(v) => b.insert("openapi".into(), Value::from(v)),
                None => b.insert("swagger".into(), Value::from("2.0")),
            };
            b.insert(
                "info".into(),
                json!({"version": "1.0", "title": {"Ref": "AWS::StackName"}}),
            );
            b.insert("paths".into(), json!({}));
            (Some(Value::Object(b)), true)
        }
    };

    if let Some(body) = body.as_mut() {
        if managed {
            let paths = paths_mut(body)?;
            for route in routes {
                let item = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
                let item = item
                    .as_object_mut()
                    .ok_or("path item must be a dictionary")?;
                let key = method_key(&route.method);
                if item.contains_key(&key) {
                    return Err(format!(
                        "API method '{}' defined multiple times for path '{}'.",
                        route.method, route.path
                    )
                    .into());
                }
                let mut integration = Map::new();
                integration.insert("httpMethod".into(), Value::from("POST"));
                integration.insert("type".into(), Value::from("aws_proxy"));
                integration.insert(
                    "uri".into(),
                    json!({"Fn::Sub": format!("arn:{partition}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/{}/invocations", route.target.sub_arn())}),
                );
                if let Some(t) = &route.timeout {
                    integration.insert("timeoutInMillis".into(), t.clone());
                }
                item.insert(key, json!({INTEGRATION: integration, "responses": {}}));
            }
        }
        if let Some(cors) = props.get("Cors") {
            add_rest_cors(body, cors)?;
        }
        if let Some(Value::Array(types)) = props.get("BinaryMediaTypes") {
            let converted: Vec<Value> = types
                .iter()
                .map(|t| {
                    t.as_str()
                        .map_or_else(|| t.clone(), |s| Value::from(s.replace("~1", "/")))
                })
                .collect();
            if let Some(obj) = body.as_object_mut() {
                obj.insert(
                    "x-amazon-apigateway-binary-media-types".into(),
                    Value::Array(converted),
                );
            }
        }
    } else if props.contains_key("Cors") {
        return Err(
            "Cors works only with inline OpenApi specified in 'DefinitionBody' property.".into(),
        );
    }

    let mut api = Map::new();
    match (&body, props.get("DefinitionUri")) {
        (Some(b), _) => {
            api.insert("Body".into(), b.clone());
        }
        (None, Some(uri)) => {
            api.insert(
                "BodyS3Location".into(),
                Value::Object(s3_location(
                    &resolve_parameter_refs(uri, ctx),
                    "DefinitionUri",
                    ("Bucket", "Key", "Version"),
                )?),
            );
        }
        (None, None) => {}
    }
    for key in [
        "Name",
        "Description",
        "BinaryMediaTypes",
        "MinimumCompressionSize",
        "DisableExecuteApiEndpoint",
        "FailOnWarnings",
        "Mode",
    ] {
        if let Some(v) = props.get(key) {
            api.insert(key.into(), v.clone());
        }
    }
    if let Some(e) = props.get("EndpointConfiguration") {
        let e = match e {
            Value::String(s) => json!({"Types": [s]}),
            Value::Object(m) if m.contains_key("Type") => {
                let mut c = m.clone();
                let t = c.remove("Type").unwrap_or(Value::Null);
                c.insert("Types".into(), json!([t]));
                Value::Object(c)
            }
            other => other.clone(),
        };
        api.insert("EndpointConfiguration".into(), e);
    }
    out.insert(
        id.to_string(),
        with_attributes("AWS::ApiGateway::RestApi", &attrs, api),
    );

    // Deployment: a new logical id whenever the definition changes, so CloudFormation redeploys.
    let mut hash_input = match (&body, props.get("DefinitionUri")) {
        (Some(b), _) => python_json(b),
        (None, Some(uri)) => python_json(uri),
        (None, None) => String::new(),
    };
    if let Some(v) = openapi_version {
        hash_input.push_str("||");
        hash_input.push_str(v);
    }
    let digest = full_hash(&Value::String(hash_input));
    let deployment_id = format!("{id}Deployment{}", &digest[..10]);
    let mut deployment = Map::new();
    deployment.insert(
        "Description".into(),
        Value::from(format!("RestApi deployment id: {digest}")),
    );
    deployment.insert("RestApiId".into(), r#ref(id));
    if openapi_version.is_none() {
        deployment.insert("StageName".into(), Value::from("Stage"));
    }
    let deployment_attrs: Map<String, Value> = attrs
        .iter()
        .filter(|(k, _)| *k == "Condition")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(
        deployment_id.clone(),
        with_attributes("AWS::ApiGateway::Deployment", &deployment_attrs, deployment),
    );

    let mut stage_props = Map::new();
    stage_props.insert("DeploymentId".into(), r#ref(&deployment_id));
    stage_props.insert("RestApiId".into(), r#ref(id));
    stage_props.insert("StageName".into(), Value::from(stage.as_str()));
    for key in [
        "Variables",
        "TracingEnabled",
        "MethodSettings",
        "CacheClusterEnabled",
        "CacheClusterSize",
        "Description",
    ] {
        if let Some(v) = props.get(key) {
            stage_props.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(tags)) = props.get("Tags") {
        let list: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        stage_props.insert("Tags".into(), Value::Array(list));
    }
    out.insert(
        stage_logical_id(id, &stage),
        with_attributes("AWS::ApiGateway::Stage", &deployment_attrs, stage_props),
    );

    for route in routes {
        let source = format!(
            "arn:{partition}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{__ApiId__}}/${{__Stage__}}/{}{}",
            arn_method(&route.method),
            arn_path(&route.path)
        );
        out.insert(
            format!("{}{}Permission{stage}", route.function, route.event),
            invoke_permission(route, source, id),
        );
    }
    Ok(())
}

fn cors_value(v: &Value) -> Value {
    v.clone()
}

fn add_rest_cors(body: &mut Value, cors: &Value) -> Translated<()> {
    let (origin, headers, methods, max_age, credentials) = match cors {
        Value::String(_) => (cors.clone(), None, None, None, false),
        Value::Object(m) => {
            check_properties(
                m,
                &[
                    "AllowOrigin",
                    "AllowHeaders",
                    "AllowMethods",
                    "MaxAge",
                    "AllowCredentials",
                ],
                "Cors",
            )?;
            let origin = m
                .get("AllowOrigin")
                .cloned()
                .ok_or("Cors requires AllowOrigin.")?;
            (
                origin,
                m.get("AllowHeaders").map(cors_value),
                m.get("AllowMethods").map(cors_value),
                m.get("MaxAge").cloned(),
                m.get("AllowCredentials").and_then(Value::as_bool) == Some(true),
            )
        }
        _ => return Err("Cors must be a string or a dictionary.".into()),
    };
    let v3 = is_openapi3(body);
    let header_type = |t: &str| {
        if v3 {
            json!({"schema": {"type": t}})
        } else {
            json!({"type": t})
        }
    };
    let paths = paths_mut(body)?;
    for (_, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        if item.contains_key("options") {
            continue;
        }
        let allow_methods = methods.clone().unwrap_or_else(|| {
            let mut list: Vec<String> = if item.contains_key(ANY_METHOD) {
                ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                let mut l: Vec<String> = item
                    .keys()
                    .filter(|k| !k.starts_with("x-") && *k != "parameters")
                    .map(|k| k.to_uppercase())
                    .collect();
                l.push("OPTIONS".into());
                l
            };
            list.sort();
            list.dedup();
            Value::from(format!("'{}'", list.join(",")))
        });
        let mut params = Map::new();
        let mut response_headers = Map::new();
        params.insert(
            "method.response.header.Access-Control-Allow-Origin".into(),
            origin.clone(),
        );
        response_headers.insert("Access-Control-Allow-Origin".into(), header_type("string"));
        if let Some(h) = &headers {
            params.insert(
                "method.response.header.Access-Control-Allow-Headers".into(),
                h.clone(),
            );
            response_headers.insert("Access-Control-Allow-Headers".into(), header_type("string"));
        }
        params.insert(
            "method.response.header.Access-Control-Allow-Methods".into(),
            allow_methods,
        );
        response_headers.insert("Access-Control-Allow-Methods".into(), header_type("string"));
        if let Some(m) = &max_age {
            params.insert(
                "method.response.header.Access-Control-Max-Age".into(),
                m.clone(),
            );
            response_headers.insert("Access-Control-Max-Age".into(), header_type("integer"));
        }
        if credentials {
            params.insert(
                "method.response.header.Access-Control-Allow-Credentials".into(),
                Value::from("'true'"),
            );
            response_headers.insert(
                "Access-Control-Allow-Credentials".into(),
                header_type("string"),
            );
        }
        let mut options = Map::new();
        options.insert("summary".into(), Value::from("CORS support"));
        if !v3 {
            options.insert("consumes".into(), json!(["application/json"]));
            options.insert("produces".into(), json!(["application/json"]));
        }
        options.insert(
            INTEGRATION.into(),
            json!({
                "type": "mock",
                "requestTemplates": {"application/json": "{\n  \"statusCode\" : 200\n}\n"},
                "responses": {"default": {
                    "statusCode": "200",
                    "responseParameters": params,
                    "responseTemplates": {"application/json": "{}\n"}
                }}
            }),
        );
        options.insert("responses".into(), json!({"200": {"description": "Default response for CORS method", "headers": response_headers}}));
        item.insert("options".into(), Value::Object(options));
    }
    Ok(())
}

fn http_api(
    id: &str,
    props: &Map<String, Value>,
    resource: &Map<String, Value>,
    routes: &[Route],
    ctx: &SamContext,
    out: &mut Resources,
) -> Translated<()> {
    check_properties(props, HTTP_PROPERTIES, "HttpApi")?;
    let attrs = attributes(resource);
    let tags: Map<String, Value> = match props.get("Tags") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("'Tags' must be a dictionary.".into()),
    };
    let (mut body, managed) = match (props.get("DefinitionBody"), props.get("DefinitionUri")) {
        (Some(_), Some(_)) => {
            return Err(
                "Specify either 'DefinitionUri' or 'DefinitionBody' property and not both.".into(),
            );
        }
        (Some(b), None) => (Some(b.clone()), false),
        (None, Some(_)) => (None, false),
        (None, None) => (
            Some(
                json!({"openapi": "3.0.1", "info": {"version": "1.0", "title": {"Ref": "AWS::StackName"}}, "paths": {}}),
            ),
            true,
        ),
    };
    if let Some(body) = body.as_mut() {
        if managed {
            let paths = paths_mut(body)?;
            for route in routes {
                let item = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
                let item = item
                    .as_object_mut()
                    .ok_or("path item must be a dictionary")?;
                let key = method_key(&route.method);
                if item.contains_key(&key) {
                    return Err(format!(
                        "API method '{}' defined multiple times for path '{}'.",
                        route.method, route.path
                    )
                    .into());
                }
                let mut integration = Map::new();
                integration.insert("httpMethod".into(), Value::from("POST"));
                integration.insert("type".into(), Value::from("aws_proxy"));
                integration.insert(
                    "uri".into(),
                    json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/{}/invocations", route.target.sub_arn())}),
                );
                integration.insert(
                    "payloadFormatVersion".into(),
                    route.payload.clone().unwrap_or(Value::from("2.0")),
                );
                if let Some(t) = &route.timeout {
                    integration.insert("timeoutInMillis".into(), t.clone());
                }
                let mut method = Map::new();
                method.insert(INTEGRATION.into(), Value::Object(integration));
                if route.path == "$default" {
                    method.insert("isDefaultRoute".into(), Value::Bool(true));
                }
                method.insert("responses".into(), json!({}));
                let params: Vec<Value> = route
                    .path
                    .split('/')
                    .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .map(|name| json!({"required": true, "name": name, "in": "path"}))
                    .collect();
                if !params.is_empty() {
                    method.insert("parameters".into(), Value::Array(params));
                }
                item.insert(key, Value::Object(method));
            }
            let obj = body
                .as_object_mut()
                .ok_or("DefinitionBody must be a dictionary.")?;
            // The resource's tags, then SAM's.
            let mut body_tags: Vec<Value> = tags
                .iter()
                .map(|(k, v)| json!({"name": k, "x-amazon-apigateway-tag-value": v}))
                .collect();
            body_tags
                .push(json!({"name": "httpapi:createdBy", "x-amazon-apigateway-tag-value": "SAM"}));
            obj.insert("tags".into(), Value::Array(body_tags));
        }
        if let Some(cors) = props.get("CorsConfiguration") {
            let cors = match cors {
                Value::Bool(true) => {
                    json!({"allowOrigins": ["*"]})
                }
                Value::Bool(false) => Value::Null,
                Value::Object(m) => {
                    check_properties(
                        m,
                        &[
                            "AllowOrigins",
                            "AllowHeaders",
                            "AllowMethods",
                            "ExposeHeaders",
                            "MaxAge",
                            "AllowCredentials",
                        ],
                        "CorsConfiguration",
                    )?;
                    let mut c = Map::new();
                    for (k, v) in m {
                        let mut key = k.clone();
                        key.replace_range(..1, &k[..1].to_lowercase());
                        c.insert(key, v.clone());
                    }
                    Value::Object(c)
                }
                _ => return Err("CorsConfiguration must be a boolean or a dictionary.".into()),
            };
            if !cors.is_null()
                && let Some(obj) = body.as_object_mut()
            {
                obj.insert("x-amazon-apigateway-cors".into(), cors);
            }
        }
    } else if props.contains_key("CorsConfiguration") {
        return Err("CorsConfiguration works only with inline OpenApi specified in 'DefinitionBody' property.".into());
    }

    let mut api = Map::new();
    match (&body, props.get("DefinitionUri")) {
        (Some(b), _) => {
            api.insert("Body".into(), b.clone());
        }
        (None, Some(uri)) => {
            api.insert(
                "BodyS3Location".into(),
                Value::Object(s3_location(
                    &resolve_parameter_refs(uri, ctx),
                    "DefinitionUri",
                    ("Bucket", "Key", "Version"),
                )?),
            );
        }
        (None, None) => {}
    }
    for key in [
        "Name",
        "Description",
        "FailOnWarnings",
        "DisableExecuteApiEndpoint",
    ] {
        if let Some(v) = props.get(key) {
            api.insert(key.into(), v.clone());
        }
    }
    out.insert(
        id.to_string(),
        with_attributes("AWS::ApiGatewayV2::Api", &attrs, api),
    );

    let stage_name = props
        .get("StageName")
        .map(|s| resolve_parameter_refs(s, ctx));
    let (stage_id, stage_value) = match stage_name.as_ref().and_then(Value::as_str) {
        None | Some("$default") => (
            format!("{id}ApiGatewayDefaultStage"),
            Value::from("$default"),
        ),
        Some(s) => (stage_logical_id(id, s), Value::from(s)),
    };
    let mut stage = Map::new();
    stage.insert("ApiId".into(), r#ref(id));
    stage.insert("StageName".into(), stage_value);
    let mut stage_tags = Map::new();
    stage_tags.insert("httpapi:createdBy".into(), Value::from("SAM"));
    for (k, v) in &tags {
        stage_tags.insert(k.clone(), v.clone());
    }
    stage.insert("Tags".into(), Value::Object(stage_tags));
    stage.insert("AutoDeploy".into(), Value::Bool(true));
    for key in [
        "StageVariables",
        "DefaultRouteSettings",
        "RouteSettings",
        "AccessLogSettings",
    ] {
        if let Some(v) = props.get(key) {
            stage.insert(key.into(), v.clone());
        }
    }
    let stage_attrs: Map<String, Value> = attrs
        .iter()
        .filter(|(k, _)| *k == "Condition")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(
        stage_id,
        with_attributes("AWS::ApiGatewayV2::Stage", &stage_attrs, stage),
    );

    for route in routes {
        let tail = if route.path == "$default" {
            "*".to_string()
        } else {
            format!("{}{}", arn_method(&route.method), arn_path(&route.path))
        };
        let source = format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{__ApiId__}}/${{__Stage__}}/{tail}"
        );
        out.insert(
            format!("{}{}Permission", route.function, route.event),
            invoke_permission(route, source, id),
        );
    }
    let _ = merge;
    Ok(())
}
