//! `AWS::Serverless::Function` → function, role, version/alias, URL, async config, events.

use serde_json::{Map, Value, json};

use super::events::{self, EventOutput};
use super::hash::logical_id_hash;
use super::managed_policies::MANAGED_POLICY_PATHS;
use super::{
    Invalid, Problems, Resources, SamContext, Translated, api, check_properties, get_att,
    is_intrinsic, r#ref, resolve_parameter_refs, s3_location,
};

/// Properties copied to `AWS::Lambda::Function` unchanged.
const PASSTHROUGH: &[&str] = &[
    "Description",
    "FunctionName",
    "Handler",
    "MemorySize",
    "Runtime",
    "Timeout",
    "VpcConfig",
    "Environment",
    "KmsKeyArn",
    "Layers",
    "ReservedConcurrentExecutions",
    "FileSystemConfigs",
    "ImageConfig",
    "PackageType",
    "Architectures",
    "EphemeralStorage",
    "SnapStart",
    "RuntimeManagementConfig",
    "LoggingConfig",
    "RecursiveLoop",
    "CodeSigningConfigArn",
];
/// Properties the transform handles itself.
const HANDLED: &[&str] = &[
    "CodeUri",
    "InlineCode",
    "ImageUri",
    "Role",
    "Policies",
    "Tags",
    "PropagateTags",
    "Tracing",
    "Events",
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "AutoPublishCodeSha256",
    "VersionDescription",
    "DeploymentPreference",
    "ProvisionedConcurrencyConfig",
    "EventInvokeConfig",
    "DeadLetterQueue",
    "FunctionUrlConfig",
    "RolePath",
    "PermissionsBoundary",
    "AssumeRolePolicyDocument",
];
/// The order samtranslator writes function properties in.
const OUTPUT_ORDER: &[&str] = &[
    "Code",
    "DeadLetterConfig",
    "Description",
    "FunctionName",
    "Handler",
    "MemorySize",
    "Role",
    "Runtime",
    "Timeout",
    "VpcConfig",
    "Environment",
    "Tags",
    "TracingConfig",
    "KmsKeyArn",
    "Layers",
    "ReservedConcurrentExecutions",
    "FileSystemConfigs",
    "CodeSigningConfigArn",
    "ImageConfig",
    "PackageType",
    "Architectures",
    "EphemeralStorage",
    "SnapStart",
    "RuntimeManagementConfig",
    "LoggingConfig",
    "RecursiveLoop",
];

/// What events invoke: the function itself or its alias.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub function: String,
    pub alias: Option<String>,
}

impl Target {
    /// `FunctionName` of permissions and mappings.
    pub(crate) fn name_ref(&self) -> Value {
        r#ref(self.alias.as_deref().unwrap_or(&self.function))
    }
    /// The ARN (rule targets, subscriptions, schedules).
    pub(crate) fn arn(&self) -> Value {
        match &self.alias {
            Some(a) => r#ref(a),
            None => get_att(&self.function, "Arn"),
        }
    }
    /// The `${}` variable naming the ARN in an integration URI.
    pub(crate) fn sub_arn(&self) -> String {
        match &self.alias {
            Some(a) => format!("${{{a}}}"),
            None => format!("${{{}.Arn}}", self.function),
        }
    }
}

/// CodeDeploy resources shared by every function with a `DeploymentPreference`.
#[derive(Default)]
pub(crate) struct DeploymentResources {
    needed: bool,
}

impl DeploymentResources {
    pub(crate) fn finish(&self, out: &mut Resources) {
        if !self.needed {
            return;
        }
        out.insert(
            "ServerlessDeploymentApplication".into(),
            json!({"Type": "AWS::CodeDeploy::Application", "Properties": {"ComputePlatform": "Lambda"}}),
        );
        out.insert(
            "CodeDeployServiceRole".into(),
            json!({"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": assume_role("codedeploy.amazonaws.com"),
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"]
            }}),
        );
    }
}

pub(crate) fn assume_role(service: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": [service]}
    }]})
}

fn managed_policy_arn(name: &str, partition: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    match MANAGED_POLICY_PATHS.iter().find(|(n, _)| *n == name) {
        Some((_, path)) => format!("arn:{partition}:iam::aws:policy/{path}/{name}"),
        None => format!("arn:{partition}:iam::aws:policy/{name}"),
    }
}

/// The SAM tag first, then the resource's own tags.
fn tag_list(tags: Option<&Value>) -> Translated<Vec<Value>> {
    let mut list = vec![json!({"Key": "lambda:createdBy", "Value": "SAM"})];
    match tags {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if k == "lambda:createdBy" {
                    return Err("lambda:createdBy is a reserved Tag key name and cannot be set on your function. Please change the tag key in the input.".into());
                }
                list.push(json!({"Key": k, "Value": v}));
            }
        }
        Some(_) => return Err("Type of property 'Tags' is invalid.".into()),
    }
    Ok(list)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn translate(
    id: &str,
    resource: &Map<String, Value>,
    ctx: &SamContext,
    template_resources: &Map<String, Value>,
    out: &mut Resources,
    routes: &mut api::Routes,
    deployment: &mut DeploymentResources,
    problems: &mut Problems,
) {
    match build(
        id,
        resource,
        ctx,
        template_resources,
        routes,
        deployment,
        problems,
    ) {
        Ok(resources) => out.extend(resources),
        Err(Invalid(msg)) => problems.resource(id, msg),
    }
}

fn build(
    id: &str,
    resource: &Map<String, Value>,
    ctx: &SamContext,
    template_resources: &Map<String, Value>,
    routes: &mut api::Routes,
    deployment: &mut DeploymentResources,
    problems: &mut Problems,
) -> Translated<Resources> {
    let props = resource
        .get("Properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let allowed: Vec<&str> = PASSTHROUGH.iter().chain(HANDLED).copied().collect();
    check_properties(&props, &allowed, "Function")?;
    // Resource attributes the generated resources inherit.
    let passthrough_attrs: Map<String, Value> = [
        "Condition",
        "DependsOn",
        "UpdateReplacePolicy",
        "DeletionPolicy",
        "Metadata",
    ]
    .iter()
    .filter_map(|a| resource.get(*a).map(|v| (a.to_string(), v.clone())))
    .collect();
    let mut out = Resources::new();

    // Code.
    let code = match (
        props.get("CodeUri"),
        props.get("InlineCode"),
        props.get("ImageUri"),
    ) {
        (Some(uri), None, None) => Value::Object(s3_location(
            &resolve_parameter_refs(uri, ctx),
            "CodeUri",
            ("S3Bucket", "S3Key", "S3ObjectVersion"),
        )?),
        (None, Some(inline), None) => json!({"ZipFile": inline}),
        (None, None, Some(image)) => json!({"ImageUri": image}),
        (None, None, None) => {
            return Err("Only one of 'InlineCode' or 'CodeUri' can be set. Neither is set.".into());
        }
        _ => return Err("Only one of 'CodeUri', 'InlineCode' or 'ImageUri' can be set.".into()),
    };

    let mut function = Map::new();
    function.insert("Code".into(), code.clone());
    for key in PASSTHROUGH {
        if let Some(v) = props.get(*key) {
            function.insert((*key).into(), v.clone());
        }
    }
    if props.contains_key("ImageUri") && !function.contains_key("PackageType") {
        function.insert("PackageType".into(), Value::from("Image"));
    }
    let tags = tag_list(props.get("Tags"))?;
    function.insert("Tags".into(), Value::Array(tags.clone()));
    if let Some(t) = props.get("Tracing") {
        function.insert("TracingConfig".into(), json!({"Mode": t}));
    }
    if let Some(dlq) = props.get("DeadLetterQueue") {
        let target = dlq
            .get("TargetArn")
            .ok_or("'DeadLetterQueue' requires Type and TargetArn properties to be specified.")?;
        function.insert("DeadLetterConfig".into(), json!({"TargetArn": target}));
    }

    // Role.
    let role_id = format!("{id}Role");
    let explicit_role = props.get("Role").cloned();
    function.insert(
        "Role".into(),
        explicit_role
            .clone()
            .unwrap_or_else(|| get_att(&role_id, "Arn")),
    );

    // Version and alias.
    let alias_name = props
        .get("AutoPublishAlias")
        .map(|a| resolve_parameter_refs(a, ctx));
    let mut target = Target {
        function: id.to_string(),
        alias: None,
    };
    let mut alias_resource: Option<(String, Map<String, Value>)> = None;
    if let Some(name) = &alias_name {
        let name = name
            .as_str()
            .ok_or("'AutoPublishAlias' must be a string or a Ref to a template parameter")?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !name.chars().all(|c| c.is_ascii_digit());
        if !valid {
            return Err(format!("AutoPublishAlias name ('{name}') must contain only alphanumeric characters, hyphens, or underscores matching (?!^[0-9]+$)([a-zA-Z0-9-_]+) pattern.").into());
        }
        let hash_data =
            if let Some(sha) = props.get("AutoPublishCodeSha256").and_then(Value::as_str) {
                Value::String(sha.to_string())
            } else if props
                .get("AutoPublishAliasAllProperties")
                .and_then(Value::as_bool)
                == Some(true)
            {
                Value::Object(ordered(&function))
            } else {
                let mut data = resolve_parameter_refs(&code, ctx)
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                if let Some(Value::Object(env)) = function.get("Environment") {
                    for (k, v) in env {
                        data.insert(k.clone(), v.clone());
                    }
                }
                if let Some(m) = function.get("MemorySize") {
                    data.insert("MemorySize".into(), m.clone());
                }
                if let Some(s) = function.get("SnapStart")
                    && s.get("ApplyOn")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a != "None")
                {
                    data.insert("SnapStart".into(), s.clone());
                }
                Value::Object(data)
            };
        let version_id = format!("{id}Version{}", logical_id_hash(&hash_data));
        let mut version_props = Map::new();
        version_props.insert("FunctionName".into(), r#ref(id));
        if let Some(d) = props.get("VersionDescription") {
            version_props.insert("Description".into(), d.clone());
        }
        let mut version = Map::new();
        version.insert("Type".into(), Value::from("AWS::Lambda::Version"));
        for (k, v) in &passthrough_attrs {
            version.insert(k.clone(), v.clone());
        }
        if !version.contains_key("DeletionPolicy") {
            version.insert("DeletionPolicy".into(), Value::from("Retain"));
        }
        version.insert("Properties".into(), Value::Object(version_props));
        out.insert(version_id.clone(), Value::Object(version));

        let alias_id = format!("{id}Alias{}", name.replace('-', "D").replace('_', "U"));
        let mut alias_props = Map::new();
        alias_props.insert("Name".into(), Value::from(name));
        alias_props.insert("FunctionName".into(), r#ref(id));
        alias_props.insert("FunctionVersion".into(), get_att(&version_id, "Version"));
        if let Some(p) = props.get("ProvisionedConcurrencyConfig") {
            alias_props.insert("ProvisionedConcurrencyConfig".into(), p.clone());
        }
        alias_resource = Some((alias_id.clone(), alias_props));
        target.alias = Some(alias_id);
    } else {
        for needs_alias in ["DeploymentPreference", "ProvisionedConcurrencyConfig"] {
            if props.contains_key(needs_alias) {
                return Err(format!(
                    "'{needs_alias}' requires AutoPublishAlias property to be specified."
                )
                .into());
            }
        }
    }

    // Deployment preference (traffic shifting on the alias).
    let mut alias_update_policy: Option<Value> = None;
    if let (Some(pref), Some((alias_id, _))) =
        (props.get("DeploymentPreference"), alias_resource.as_mut())
    {
        let enabled = pref.get("Enabled").and_then(Value::as_bool).unwrap_or(true);
        if enabled {
            check_properties(
                pref.as_object()
                    .ok_or("'DeploymentPreference' must be a dictionary.")?,
                &[
                    "Type",
                    "Enabled",
                    "Hooks",
                    "Alarms",
                    "Role",
                    "TriggerConfigurations",
                    "PassthroughCondition",
                ],
                "DeploymentPreference",
            )?;
            let kind = resolve_parameter_refs(
                pref.get("Type")
                    .ok_or("'DeploymentPreference' is missing required Property 'Type'")?,
                ctx,
            );
            let kind_str = kind
                .as_str()
                .ok_or("'DeploymentPreference' Type must be a string")?;
            let predefined = super::shifting::parse_config_name(kind_str).is_some()
                && !kind_str.starts_with("CodeDeployDefault.");
            let config_name = if predefined {
                json!({"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": kind_str}]})
            } else {
                kind.clone()
            };
            let group_id = format!("{id}DeploymentGroup");
            let mut group = Map::new();
            group.insert(
                "ApplicationName".into(),
                r#ref("ServerlessDeploymentApplication"),
            );
            group.insert(
                "AutoRollbackConfiguration".into(),
                json!({"Enabled": true, "Events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]}),
            );
            group.insert("DeploymentConfigName".into(), config_name);
            group.insert(
                "DeploymentStyle".into(),
                json!({"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"}),
            );
            if let Some(alarms) = pref.get("Alarms") {
                let list: Vec<Value> = alarms
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| json!({"Name": a}))
                    .collect();
                group.insert(
                    "AlarmConfiguration".into(),
                    json!({"Alarms": list, "Enabled": true}),
                );
            }
            let role = match pref.get("Role") {
                Some(r) => r.clone(),
                None => {
                    deployment.needed = true;
                    get_att("CodeDeployServiceRole", "Arn")
                }
            };
            if pref.get("Role").is_some() {
                // The application is still shared.
                deployment.needed = true;
            }
            group.insert("ServiceRoleArn".into(), role);
            if let Some(t) = pref.get("TriggerConfigurations") {
                group.insert("TriggerConfigurations".into(), t.clone());
            }
            out.insert(
                group_id.clone(),
                super::resource("AWS::CodeDeploy::DeploymentGroup", group),
            );
            let mut update = Map::new();
            update.insert(
                "ApplicationName".into(),
                r#ref("ServerlessDeploymentApplication"),
            );
            update.insert("DeploymentGroupName".into(), r#ref(&group_id));
            if let Some(hooks) = pref.get("Hooks") {
                if let Some(pre) = hooks.get("PreTraffic") {
                    update.insert("BeforeAllowTrafficHook".into(), pre.clone());
                }
                if let Some(post) = hooks.get("PostTraffic") {
                    update.insert("AfterAllowTrafficHook".into(), post.clone());
                }
            }
            let _ = alias_id;
            alias_update_policy =
                Some(json!({"CodeDeployLambdaAliasUpdate": Value::Object(update)}));
        }
    }
    if let Some((alias_id, alias_props)) = alias_resource.take() {
        let mut alias = Map::new();
        alias.insert("Type".into(), Value::from("AWS::Lambda::Alias"));
        for (k, v) in &passthrough_attrs {
            if k != "DeletionPolicy" && k != "UpdateReplacePolicy" {
                alias.insert(k.clone(), v.clone());
            }
        }
        if let Some(p) = alias_update_policy.take() {
            alias.insert("UpdatePolicy".into(), p);
        }
        alias.insert("Properties".into(), Value::Object(alias_props));
        out.insert(alias_id, Value::Object(alias));
    }

    // Function URL.
    if let Some(url) = props.get("FunctionUrlConfig") {
        let url = url
            .as_object()
            .ok_or("'FunctionUrlConfig' must be a dictionary.")?;
        check_properties(
            url,
            &["AuthType", "Cors", "InvokeMode"],
            "FunctionUrlConfig",
        )?;
        let auth = url.get("AuthType").ok_or("AuthType is required to configure function property `FunctionUrlConfig`. Please provide either AWS_IAM or NONE.")?;
        let mut p = Map::new();
        // As samtranslator: the alias when there is one (its ARN carries the qualifier, and
        // the reference orders the URL after the alias).
        p.insert("TargetFunctionArn".into(), target.name_ref());
        p.insert("AuthType".into(), auth.clone());
        for k in ["Cors", "InvokeMode"] {
            if let Some(v) = url.get(k) {
                p.insert(k.into(), v.clone());
            }
        }
        out.insert(format!("{id}Url"), super::resource("AWS::Lambda::Url", p));
        if auth.as_str() == Some("NONE") {
            out.insert(
                format!("{id}UrlPublicPermissions"),
                json!({"Type": "AWS::Lambda::Permission", "Properties": {
                    "Action": "lambda:InvokeFunctionUrl", "FunctionName": target.name_ref(),
                    "Principal": "*", "FunctionUrlAuthType": "NONE"
                }}),
            );
            out.insert(
                format!("{id}URLInvokeAllowPublicAccess"),
                json!({"Type": "AWS::Lambda::Permission", "Properties": {
                    "Action": "lambda:InvokeFunction", "FunctionName": target.name_ref(),
                    "Principal": "*", "InvokedViaFunctionUrl": true
                }}),
            );
        }
    }

    // Asynchronous invocation config.
    let mut role_policies: Vec<Value> = Vec::new();
    if let Some(dlq) = props.get("DeadLetterQueue") {
        let action = match dlq.get("Type").and_then(Value::as_str) {
            Some("SQS") => "sqs:SendMessage",
            Some("SNS") => "sns:Publish",
            _ => return Err("'DeadLetterQueue' requires Type of SNS or SQS".into()),
        };
        role_policies.push(json!({"PolicyName": "DeadLetterQueuePolicy", "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": action, "Resource": dlq.get("TargetArn"), "Effect": "Allow"}]
        }}));
    }
    if let Some(cfg) = props.get("EventInvokeConfig") {
        let cfg = cfg
            .as_object()
            .ok_or("'EventInvokeConfig' must be a dictionary.")?;
        check_properties(
            cfg,
            &[
                "MaximumEventAgeInSeconds",
                "MaximumRetryAttempts",
                "DestinationConfig",
            ],
            "EventInvokeConfig",
        )?;
        let config_id = format!("{id}EventInvokeConfig");
        let mut dest_out = Map::new();
        if let Some(dest) = cfg.get("DestinationConfig").and_then(Value::as_object) {
            for (which, d) in dest {
                if which != "OnSuccess" && which != "OnFailure" {
                    return Err(
                        format!("DestinationConfig property [{which}] is not supported.").into(),
                    );
                }
                let kind = d.get("Type").and_then(Value::as_str);
                let Some(destination) = d.get("Destination") else {
                    return Err(format!("Destination is required for {which}: Kindling's SAM transform does not create destination queues or topics.").into());
                };
                let action = match kind {
                    Some("SQS") => Some(("sqs:SendMessage", "SQS")),
                    Some("SNS") => Some(("sns:publish", "SNS")),
                    Some("Lambda") => Some(("lambda:InvokeFunction", "Lambda")),
                    Some("EventBridge") => Some(("events:PutEvents", "EventBridge")),
                    None => None,
                    Some(other) => return Err(format!("'Type: {other}' must be one of ['SQS', 'SNS', 'EventBridge', 'Lambda', 'S3Bucket']").into()),
                };
                if let Some((action, label)) = action {
                    role_policies.push(json!({
                        "PolicyName": format!("{config_id}{which}{label}Policy"),
                        "PolicyDocument": {"Statement": [{"Action": action, "Effect": "Allow", "Resource": destination}]}
                    }));
                }
                dest_out.insert(which.clone(), json!({"Destination": destination}));
            }
        }
        let mut p = Map::new();
        p.insert("DestinationConfig".into(), Value::Object(dest_out));
        p.insert("FunctionName".into(), r#ref(id));
        for k in ["MaximumEventAgeInSeconds", "MaximumRetryAttempts"] {
            if let Some(v) = cfg.get(k) {
                p.insert(k.into(), v.clone());
            }
        }
        p.insert(
            "Qualifier".into(),
            alias_name.clone().unwrap_or_else(|| Value::from("$LATEST")),
        );
        let mut r = Map::new();
        r.insert("Type".into(), Value::from("AWS::Lambda::EventInvokeConfig"));
        if let Some(a) = &target.alias {
            r.insert("DependsOn".into(), json!([a]));
        }
        r.insert("Properties".into(), Value::Object(p));
        out.insert(config_id, Value::Object(r));
    }

    // Events.
    let mut extra_managed: Vec<String> = Vec::new();
    if let Some(evs) = props.get("Events") {
        let evs = evs.as_object().ok_or("'Events' must be a dictionary.")?;
        let mut names: Vec<&String> = evs.keys().collect();
        names.sort();
        for name in names {
            let event = &evs[name.as_str()];
            match events::translate(id, name, event, &target, ctx, template_resources, routes) {
                Ok(EventOutput {
                    resources,
                    managed_policies,
                }) => {
                    out.extend(resources);
                    for p in managed_policies {
                        if !extra_managed.contains(&p) {
                            extra_managed.push(p);
                        }
                    }
                }
                Err(Invalid(msg)) => problems.event(id, name, msg),
            }
        }
    }

    // Execution role.
    if explicit_role.is_none() {
        let partition = &ctx.partition;
        let mut managed = vec![format!(
            "arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        )];
        if props
            .get("Tracing")
            .is_some_and(|t| t.as_str() != Some("Disabled"))
        {
            managed.push(format!(
                "arn:{partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"
            ));
        }
        if props.contains_key("VpcConfig") {
            managed.push(format!(
                "arn:{partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
            ));
        }
        for name in &extra_managed {
            let arn = managed_policy_arn(name, partition);
            if !managed.contains(&arn) {
                managed.push(arn);
            }
        }
        let mut inline = Vec::new();
        let policies: Vec<Value> = match props.get("Policies") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
        };
        for (index, policy) in policies.iter().enumerate() {
            match policy {
                Value::String(name) => {
                    let arn = managed_policy_arn(name, partition);
                    if !managed.contains(&arn) {
                        managed.push(arn);
                    }
                }
                Value::Object(m) if m.contains_key("Statement") => {
                    inline.push(json!({"PolicyName": format!("{role_id}Policy{index}"), "PolicyDocument": policy}));
                }
                Value::Object(_) if is_intrinsic(policy) => {
                    return Err(format!("Policy at index {index} in the 'Policies' property is an intrinsic function; Kindling's SAM transform supports managed policy names/ARNs and policy documents only.").into());
                }
                Value::Object(m) if m.len() == 1 => {
                    let (name, arguments) = m
                        .iter()
                        .next()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .unwrap_or_default();
                    if !super::policy_templates::is_known(&name) {
                        return Err(format!("Policy template '{name}' (index {index} in 'Policies') is not supported by Kindling's SAM transform.").into());
                    }
                    let document = super::policy_templates::expand(&name, &arguments)?;
                    inline.push(json!({"PolicyName": format!("{role_id}Policy{index}"), "PolicyDocument": document}));
                }
                _ => {
                    return Err(format!(
                        "Policy at index {index} in the 'Policies' property is not valid"
                    )
                    .into());
                }
            }
        }
        inline.extend(role_policies);
        let mut role = Map::new();
        role.insert(
            "AssumeRolePolicyDocument".into(),
            props
                .get("AssumeRolePolicyDocument")
                .cloned()
                .unwrap_or_else(|| assume_role("lambda.amazonaws.com")),
        );
        role.insert("ManagedPolicyArns".into(), json!(managed));
        if !inline.is_empty() {
            role.insert("Policies".into(), Value::Array(inline));
        }
        for k in ["RolePath", "PermissionsBoundary"] {
            if let Some(v) = props.get(k) {
                role.insert(
                    if k == "RolePath" {
                        "Path".into()
                    } else {
                        k.into()
                    },
                    v.clone(),
                );
            }
        }
        role.insert("Tags".into(), Value::Array(tags));
        let mut r = Map::new();
        r.insert("Type".into(), Value::from("AWS::IAM::Role"));
        for (k, v) in &passthrough_attrs {
            if k == "Condition" {
                r.insert(k.clone(), v.clone());
            }
        }
        r.insert("Properties".into(), Value::Object(role));
        out.insert(role_id, Value::Object(r));
    }

    // Generated resources inherit Condition, DeletionPolicy and UpdateReplacePolicy.
    for generated in out.values_mut() {
        let Some(g) = generated.as_object_mut() else {
            continue;
        };
        for attr in ["Condition", "DeletionPolicy", "UpdateReplacePolicy"] {
            if let (Some(v), false) = (passthrough_attrs.get(attr), g.contains_key(attr)) {
                g.insert(attr.into(), v.clone());
            }
        }
    }

    // The function itself, first.
    let mut f = Map::new();
    f.insert("Type".into(), Value::from("AWS::Lambda::Function"));
    for (k, v) in &passthrough_attrs {
        f.insert(k.clone(), v.clone());
    }
    f.insert("Properties".into(), Value::Object(ordered(&function)));
    let mut all = Resources::new();
    all.insert(id.to_string(), Value::Object(f));
    all.extend(out);
    Ok(all)
}

fn ordered(function: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in OUTPUT_ORDER {
        if let Some(v) = function.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    for (k, v) in function {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}
