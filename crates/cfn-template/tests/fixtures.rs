//! The plain-CloudFormation fixtures run through the whole pipeline the engine will use:
//! parse → process → validate → parameters → conditions → dependency order → evaluation
//! (with a resolver that learns physical ids as resources are "created") → change plans.

use kindling_cfn_template::{
    DependencyGraph, DeployedResource, Environment, EvalMode, Evaluator, KNOWN_AFTER_APPLY,
    MASKED_VALUE, MapResolver, ParameterInput, PlannedResource, PseudoParameters, SamContext,
    Template, TrafficShiftingKind, parse_document, plan_changes, process, resolve_parameters,
    traffic_shifting, types, validate_template,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

fn load(name: &str) -> Template {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/templates")
        .join(name);
    let text = std::fs::read_to_string(path).expect("fixture");
    process(
        parse_document(&text).expect("parses"),
        &SamContext::default(),
    )
    .expect("processes")
}

fn validation_error(name: &str) -> String {
    validate_template(&load(name))
        .expect_err("invalid fixture")
        .to_string()
}

struct Deployed {
    properties: HashMap<String, Map<String, Value>>,
    outputs: Vec<kindling_cfn_template::EvaluatedOutput>,
    order: Vec<String>,
    resolver: MapResolver,
}

fn pseudo() -> PseudoParameters {
    PseudoParameters::new(
        "123456789012",
        "eu-west-1",
        "shop-prod",
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-prod/1",
    )
}

/// Plays the engine: creates every resource in dependency order, giving each a physical id
/// and attributes, evaluating its properties only once its dependencies exist.
fn deploy(template: &Template, inputs: &[(&str, &str)]) -> Deployed {
    let inputs: Vec<ParameterInput> = inputs
        .iter()
        .map(|(k, v)| ParameterInput {
            key: (*k).into(),
            value: Some((*v).into()),
            use_previous_value: false,
        })
        .collect();
    let params = resolve_parameters(&template.parameters, &inputs, None).expect("parameters");
    let pseudo = pseudo();
    let azs = vec!["eu-west-1a".to_string(), "eu-west-1b".to_string()];
    let exports: HashMap<String, String> =
        [("network-SharedValue".to_string(), "vpc-123".to_string())]
            .into_iter()
            .collect();
    let env = Environment {
        pseudo: &pseudo,
        availability_zones: &azs,
        exports: &exports,
    };
    let ev = Evaluator::new(template, &params, env).expect("conditions");
    let graph = DependencyGraph::build(template, ev.conditions()).expect("graph");
    let mut resolver = MapResolver::default();
    let mut properties = HashMap::new();
    let order = graph.creation_order();
    for id in &order {
        let props = ev
            .resource_properties(id, &resolver, EvalMode::Apply)
            .expect("dependencies were created first");
        properties.insert(id.clone(), props);
        resolver
            .refs
            .insert(id.clone(), json!(format!("phys-{id}")));
        let spec = types::resource_type(&template.resources[id].resource_type).expect("supported");
        for attribute in spec.attributes {
            resolver.attributes.insert(
                (id.clone(), (*attribute).to_string()),
                json!(format!("{id}.{attribute}")),
            );
        }
    }
    let outputs = ev.outputs(&resolver, EvalMode::Apply).expect("outputs");
    Deployed {
        properties,
        outputs,
        order,
        resolver,
    }
}

#[test]
fn everything_template_with_defaults() {
    let template = load("cfn-everything.yaml");
    assert_eq!(
        template.format_version.as_deref(),
        Some("2010-09-09"),
        "an unquoted date stays a string"
    );
    assert_eq!(
        template.parameters["AccountOwner"].default.as_deref(),
        Some("0123")
    );
    validate_template(&template).expect("valid");

    let d = deploy(&template, &[]);
    // ProdOnlyTopic's condition is false; ExtraQueue's (QueueCount 2 ≠ 1) is true.
    assert!(!d.order.contains(&"ProdOnlyTopic".to_string()));
    let pos = |id: &str| d.order.iter().position(|x| x == id).expect("created");
    assert!(pos("Queue") < pos("ExtraQueue"), "DependsOn");
    assert!(
        pos("Queue") < pos("Bucket")
            && pos("Role") < pos("Function")
            && pos("ExtraQueue") < pos("Role")
    );

    let logs = &d.properties["Logs"];
    assert_eq!(logs["LogGroupName"], json!("/app/dev"));
    assert_eq!(logs["RetentionInDays"], json!(7));
    let queue = &d.properties["Queue"];
    assert_eq!(queue["QueueName"], json!("app-dev-queue"));
    assert!(
        !queue.contains_key("VisibilityTimeout"),
        "AWS::NoValue removes the property"
    );
    assert_eq!(
        queue["Tags"],
        json!([
            {"Key": "env", "Value": "dev"},
            {"Key": "subnet", "Value": "10.0.1.0/24"},
            {"Key": "azs", "Value": "eu-west-1a+eu-west-1b"},
            {"Key": "first-az", "Value": "eu-west-1a"}
        ])
    );
    assert_eq!(d.properties["ExtraQueue"]["DelaySeconds"], json!("5"));
    let bucket = &d.properties["Bucket"];
    assert_eq!(bucket["BucketName"], json!("app-123456789012-shop"));
    assert_eq!(
        bucket["Tags"],
        json!([
            {"Key": "queue-arn", "Value": "Queue.Arn"},
            {"Key": "queue-name", "Value": "Queue.QueueName"},
            {"Key": "config", "Value": "ZW52PWRldg=="},
            {"Key": "shared", "Value": "vpc-123"},
            {"Key": "cidr", "Value": "10.0.0.0/24"}
        ])
    );
    assert_eq!(
        d.properties["Role"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"],
        json!(["Queue.Arn", "ExtraQueue.Arn"])
    );
    assert_eq!(
        d.properties["Role"]["AssumeRolePolicyDocument"]["Version"],
        json!("2012-10-17")
    );
    let function = &d.properties["Function"];
    assert_eq!(function["MemorySize"], json!("128"));
    assert_eq!(function["Role"], json!("Role.Arn"));
    assert_eq!(
        function["Environment"]["Variables"],
        json!({"QUEUE_URL": "phys-Queue", "API_KEY": "not-a-secret", "OWNER": "0123", "PORTS": "80,443",
               "LITERAL": "${NotAVariable}-shop-prod"})
    );
    let outputs: Vec<(&str, &str, Option<&str>)> = d
        .outputs
        .iter()
        .map(|o| (o.key.as_str(), o.value.as_str(), o.export_name.as_deref()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("QueueUrl", "phys-Queue", Some("shop-prod-QueueUrl")),
            ("BucketArn", "Bucket.Arn", Some("shop-prod:BucketArn")),
            ("Mode", "non-production", None),
            ("FunctionArn", "Function.Arn", None),
            ("Scale", "scaled", None),
            ("DevScale", "2 queues in dev", None),
        ]
    );

    let params = resolve_parameters(&template.parameters, &[], None).expect("params");
    assert_eq!(
        params.get("ApiKey").map(|p| p.display_value()),
        Some(MASKED_VALUE)
    );
    assert_eq!(params.get("Env").map(|p| p.display_value()), Some("dev"));
}

#[test]
fn everything_template_in_prod_and_its_change_plan() {
    let template = load("cfn-everything.yaml");
    let dev = deploy(&template, &[]);
    let prod = deploy(&template, &[("Env", "prod")]);
    assert!(prod.order.contains(&"ProdOnlyTopic".to_string()));
    assert_eq!(
        prod.properties["ProdOnlyTopic"]["TopicName"],
        json!("app-prod-alerts")
    );
    assert_eq!(prod.properties["Queue"]["VisibilityTimeout"], json!(300));
    assert_eq!(
        prod.properties["Queue"]["Tags"][1],
        json!({"Key": "tier", "Value": "critical"})
    );

    let deployed: Vec<DeployedResource> = dev
        .order
        .iter()
        .map(|id| DeployedResource {
            logical_id: id.clone(),
            resource_type: template.resources[id].resource_type.clone(),
            physical_id: Some(format!("phys-{id}")),
            properties: dev.properties[id].clone(),
            metadata: None,
        })
        .collect();

    // Preview the prod update the way a change set does: values of resources that exist are
    // known, new or changing ones only after apply.
    let inputs = [ParameterInput {
        key: "Env".into(),
        value: Some("prod".into()),
        use_previous_value: false,
    }];
    let params = resolve_parameters(&template.parameters, &inputs, None).expect("params");
    let pseudo = pseudo();
    let azs = vec!["eu-west-1a".to_string(), "eu-west-1b".to_string()];
    let exports: HashMap<String, String> =
        [("network-SharedValue".to_string(), "vpc-123".to_string())]
            .into_iter()
            .collect();
    let ev = Evaluator::new(
        &template,
        &params,
        Environment {
            pseudo: &pseudo,
            availability_zones: &azs,
            exports: &exports,
        },
    )
    .expect("conditions");
    let planned: Vec<PlannedResource> = ev
        .active_resources()
        .into_iter()
        .map(|id| PlannedResource {
            logical_id: id.to_string(),
            resource_type: template.resources[id].resource_type.clone(),
            properties: ev
                .resource_properties(id, &dev.resolver, EvalMode::Preview)
                .expect("preview"),
            metadata: None,
        })
        .collect();
    let changes = plan_changes(&deployed, &planned).expect("plan");
    let summary: Vec<(&str, &str, Option<&str>)> = changes
        .iter()
        .map(|c| {
            (
                c.action.as_str(),
                c.logical_id.as_str(),
                c.replacement.map(|r| r.as_str()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Modify", "Logs", Some("True")),
            ("Modify", "Queue", Some("True")),
            ("Add", "ProdOnlyTopic", None),
            // The `config` tag is `!Base64 env=${Env}`.
            ("Modify", "Bucket", Some("False")),
            ("Modify", "Function", Some("False")),
        ]
    );
    let queue_change = &changes[1];
    let names: Vec<&str> = queue_change
        .details
        .iter()
        .filter_map(|d| d.name.as_deref())
        .collect();
    assert_eq!(names, ["QueueName", "VisibilityTimeout", "Tags"]);

    // Same template, same parameters: nothing to do.
    let planned_same: Vec<PlannedResource> = deployed
        .iter()
        .map(|d| PlannedResource {
            logical_id: d.logical_id.clone(),
            resource_type: d.resource_type.clone(),
            properties: d.properties.clone(),
            metadata: None,
        })
        .collect();
    assert!(
        plan_changes(&deployed, &planned_same)
            .expect("plan")
            .is_empty()
    );
    assert!(!KNOWN_AFTER_APPLY.is_empty());
}

#[test]
fn parameters_reach_the_sam_transform() {
    let text = "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Alias:\n    Type: String\n    Default: live\n  Key:\n    Type: String\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri:\n        Bucket: b\n        Key: !Ref Key\n      Handler: h\n      Runtime: python3.12\n      AutoPublishAlias: !Ref Alias\n";
    let doc = parse_document(text).expect("yaml");
    let decls = kindling_cfn_template::parameter_declarations(&doc).expect("parameters");
    let inputs = [ParameterInput {
        key: "Key".into(),
        value: Some("code.zip".into()),
        use_previous_value: false,
    }];
    let params = resolve_parameters(&decls, &inputs, None).expect("values");
    let template = process(doc, &SamContext::with_parameters("aws", &params)).expect("transform");
    assert!(
        template.resources.contains_key("FAliaslive"),
        "the alias name came from the parameter"
    );
    let version = template
        .resources
        .keys()
        .find(|k| k.starts_with("FVersion"))
        .expect("version");
    // samtranslator 1.115.0 names it FVersion04b187e37c (the code location hashed with the
    // parameter resolved).
    assert_eq!(version, "FVersion04b187e37c");
    assert_eq!(
        template.resources["F"].properties["Code"],
        json!({"S3Bucket": "b", "S3Key": "code.zip"})
    );
}

#[test]
fn language_extensions_survive_the_sam_transform() {
    let text = "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\nParameters:\n  Names:\n    Type: CommaDelimitedList\n    Default: a,b\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      DelaySeconds: !Length {Ref: Names}\n";
    let template =
        process(parse_document(text).expect("yaml"), &SamContext::default()).expect("transform");
    assert_eq!(template.transforms, ["AWS::LanguageExtensions"]);
    assert_eq!(
        template.document()["Transform"],
        json!("AWS::LanguageExtensions")
    );
    let d = deploy(&template, &[]);
    assert_eq!(d.properties["Q"]["DelaySeconds"], json!(2));
}

#[test]
fn sam_cli_managed_bucket_stack_is_a_no_op_transform() {
    let text = r#"{
      "AWSTemplateFormatVersion": "2010-09-09",
      "Transform": "AWS::Serverless-2016-10-31",
      "Description": "Managed Stack for AWS SAM CLI",
      "Metadata": {"SamCliInfo": {"version": "1.130.0", "installationId": "abc"}},
      "Resources": {
        "SamCliSourceBucket": {
          "Type": "AWS::S3::Bucket",
          "Properties": {
            "PublicAccessBlockConfiguration": {"BlockPublicPolicy": "true", "BlockPublicAcls": "true", "IgnorePublicAcls": "true", "RestrictPublicBuckets": "true"},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "Tags": [{"Key": "ManagedStackSource", "Value": "AwsSamCli"}]
          }
        },
        "SamCliSourceBucketBucketPolicy": {
          "Type": "AWS::S3::BucketPolicy",
          "Properties": {
            "Bucket": {"Ref": "SamCliSourceBucket"},
            "PolicyDocument": {"Statement": [{"Action": ["s3:GetObject"], "Effect": "Allow",
              "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "SamCliSourceBucket"}, "/*"]]},
              "Principal": {"Service": "serverlessrepo.amazonaws.com"},
              "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}
          }
        }
      },
      "Outputs": {"SourceBucket": {"Value": {"Ref": "SamCliSourceBucket"}}}
    }"#;
    let original = parse_document(text).expect("json");
    let template = process(original.clone(), &SamContext::default()).expect("transform");
    validate_template(&template).expect("valid");
    let mut expected = original;
    if let Some(m) = expected.as_object_mut() {
        m.remove("Transform");
    }
    assert_eq!(
        template.document(),
        &expected,
        "only the Transform key goes"
    );
    let d = deploy(&template, &[]);
    assert_eq!(
        d.order,
        ["SamCliSourceBucket", "SamCliSourceBucketBucketPolicy"]
    );
    assert_eq!(d.outputs[0].value, "phys-SamCliSourceBucket");
    assert_eq!(
        d.properties["SamCliSourceBucketBucketPolicy"]["PolicyDocument"]["Statement"][0]["Resource"],
        json!("arn:aws:s3:::phys-SamCliSourceBucket/*")
    );
}

#[test]
fn circular_dependency() {
    assert_eq!(
        validation_error("cfn-circular.yaml"),
        "Circular dependency between resources: [QueueA, QueueB]"
    );
}

#[test]
fn unresolved_reference() {
    assert_eq!(
        validation_error("cfn-unresolved.yaml"),
        "Template format error: Unresolved resource dependencies [MissingQueue] in the Resources block of the template"
    );
}

#[test]
fn unsupported_resource_type() {
    assert_eq!(
        validation_error("cfn-unsupported-type.yaml"),
        "Template format error: Unrecognized resource types: [AWS::EC2::Instance]"
    );
}

#[test]
fn sam_hello_world_deploys_in_order() {
    let template = load("sam-hello-world.yaml");
    let d = deploy(&template, &[]);
    let pos = |id: &str| d.order.iter().position(|x| x == id).expect("created");
    assert!(pos("HelloWorldFunctionRole") < pos("HelloWorldFunction"));
    assert!(
        pos("HelloWorldFunction") < pos("ServerlessRestApi"),
        "the swagger names the function ARN"
    );
    assert!(pos("ServerlessRestApi") < pos("ServerlessRestApiProdStage"));
    assert!(pos("ServerlessRestApi") < pos("HelloWorldFunctionHelloWorldPermissionProd"));
    let api = &d.outputs[0];
    assert_eq!(
        api.value,
        "https://phys-ServerlessRestApi.execute-api.eu-west-1.amazonaws.com/Prod/hello/"
    );
    let uri = &d.properties["ServerlessRestApi"]["Body"]["paths"]["/hello"]["get"]["x-amazon-apigateway-integration"]
        ["uri"];
    assert_eq!(
        uri,
        &json!(
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/HelloWorldFunction.Arn/invocations"
        )
    );
}

#[test]
fn canary_alias_traffic_shifting() {
    let template = load("sam-layer-canary.yaml");
    let shifting =
        traffic_shifting(&template, "PaymentsFunctionAliaslive").expect("deployment preference");
    assert_eq!(shifting.config_name, "Canary10Percent5Minutes");
    assert_eq!(
        shifting.kind,
        TrafficShiftingKind::Canary {
            percent: 10,
            minutes: 5
        }
    );
    assert!(traffic_shifting(&template, "PaymentsFunction").is_none());
    let d = deploy(&template, &[]);
    assert_eq!(
        d.properties["PaymentsFunction"]["Layers"],
        json!(["phys-SharedLayer09fefc44ac"])
    );
    assert_eq!(d.outputs[1].value, "phys-SharedLayer09fefc44ac");
}

#[test]
fn sam_errors_name_what_is_unsupported() {
    let doc = parse_document(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      InlineCode: x\n      Handler: h\n      Runtime: python3.12\n      Connectors: {}\n      Events:\n        K:\n          Type: Kinesis\n          Properties: {Stream: arn}\n  M:\n    Type: AWS::Serverless::StateMachine\n",
    )
    .expect("yaml");
    let err = process(doc, &SamContext::default())
        .expect_err("unsupported")
        .to_string();
    assert!(err.starts_with("Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification document. Number of errors found: 2."), "{err}");
    assert!(
        err.contains(
            "Resource with id [F] is invalid. Function property [Connectors] is not supported"
        ),
        "{err}"
    );
    assert!(err.contains("Resource with id [M] is invalid. Resource type 'AWS::Serverless::StateMachine' is not supported"), "{err}");
    let doc = parse_document(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      InlineCode: x\n      Handler: h\n      Runtime: python3.12\n      Events:\n        K:\n          Type: Kinesis\n          Properties: {Stream: arn}\n",
    )
    .expect("yaml");
    let err = process(doc, &SamContext::default())
        .expect_err("unsupported event")
        .to_string();
    assert!(
        err.contains("Event with id [K] is invalid. Event type 'Kinesis' is not supported"),
        "{err}"
    );
    let doc = parse_document(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ./src\n      Handler: h\n      Runtime: python3.12\n",
    )
    .expect("yaml");
    assert_eq!(
        kindling_cfn_template::sam::local_code_paths(&doc),
        [("F".to_string(), "CodeUri".to_string(), "./src".to_string())]
    );
    let err = process(doc, &SamContext::default())
        .expect_err("local path")
        .to_string();
    assert!(err.contains("'CodeUri' is not a valid S3 Uri"), "{err}");
}
