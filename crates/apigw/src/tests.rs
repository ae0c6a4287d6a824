//! The service over an in-memory store: quick create, deployments and what stages serve,
//! compare-and-swap under concurrent writers, REST API import and deploy checks.

use std::sync::Arc;

use kindling_model::ArnContext;
use kindling_store::SqliteStore;

use crate::http_api::{ApiInput, DeploymentInput, IntegrationInput, RouteInput, StageInput};
use crate::rest_api::{self, PutMode};
use crate::{ApiGateway, ApigwConfig, ApigwError, Deployed};

const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:Fn";

fn service() -> Arc<ApiGateway> {
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    Arc::new(ApiGateway::new(
        store,
        ApigwConfig {
            arn: ArnContext::new("us-east-1", "000000000000"),
        },
    ))
}

fn http_stage_routes(svc: &ApiGateway, api: &str, stage: &str) -> Option<Vec<String>> {
    let d = svc.deployed(api).expect("deployed").expect("api");
    let Deployed::Http { stages, .. } = d.as_ref() else {
        panic!("not an HTTP API");
    };
    stages.get(stage).map(|s| {
        let mut keys: Vec<String> = s.routes.iter().map(|r| r.route_key.clone()).collect();
        if let Some(d) = &s.default_route {
            keys.push(d.route_key.clone());
        }
        keys
    })
}

/// A new HTTP API named `name` (no quick create); its id.
fn http_api(svc: &ApiGateway, name: &str) -> String {
    svc.create_http_api(ApiInput {
        name: Some(name.into()),
        protocol_type: Some("HTTP".into()),
        ..ApiInput::default()
    })
    .expect("create")
    .api
    .api_id
}

fn integration(svc: &ApiGateway, api: &str) -> String {
    svc.create_integration(
        api,
        IntegrationInput {
            integration_type: Some("AWS_PROXY".into()),
            integration_uri: Some(FN.into()),
            payload_format_version: Some("2.0".into()),
            ..IntegrationInput::default()
        },
    )
    .expect("integration")
    .integration_id
}

fn route(svc: &ApiGateway, api: &str, key: &str, target: &str) {
    svc.create_route(
        api,
        RouteInput {
            route_key: Some(key.into()),
            target: Some(format!("integrations/{target}")),
            ..RouteInput::default()
        },
    )
    .expect("route");
}

#[test]
fn quick_create_deploys_a_default_stage() {
    let svc = service();
    let doc = svc
        .create_http_api(ApiInput {
            name: Some("q".into()),
            protocol_type: Some("HTTP".into()),
            target: Some(FN.into()),
            ..ApiInput::default()
        })
        .expect("create");
    assert_eq!(doc.routes.len(), 1);
    assert_eq!(doc.stages[0].stage_name, "$default");
    assert!(doc.stages[0].auto_deploy);
    assert_eq!(
        http_stage_routes(&svc, &doc.api.api_id, "$default"),
        Some(vec!["$default".to_string()])
    );
}

#[test]
fn stages_serve_what_was_deployed_to_them() {
    let svc = service();
    let api = http_api(&svc, "a");
    let i = integration(&svc, &api);
    route(&svc, &api, "GET /one", &i);
    for (name, auto) in [("$default", true), ("prod", false)] {
        svc.create_stage(
            &api,
            StageInput {
                stage_name: Some(name.into()),
                auto_deploy: Some(auto),
                ..StageInput::default()
            },
        )
        .expect("stage");
    }
    assert_eq!(
        http_stage_routes(&svc, &api, "$default"),
        Some(vec!["GET /one".to_string()])
    );
    // prod has no deployment yet.
    assert_eq!(http_stage_routes(&svc, &api, "prod"), None);
    svc.create_deployment(
        &api,
        DeploymentInput {
            stage_name: Some("prod".into()),
            description: None,
        },
    )
    .expect("deploy");
    route(&svc, &api, "GET /two", &i);
    assert_eq!(
        http_stage_routes(&svc, &api, "$default").map(|r| r.len()),
        Some(2)
    );
    assert_eq!(
        http_stage_routes(&svc, &api, "prod"),
        Some(vec!["GET /one".to_string()])
    );
    // A deployment to an auto-deploy stage is refused; the integration in use cannot go.
    assert!(matches!(
        svc.create_deployment(
            &api,
            DeploymentInput {
                stage_name: Some("$default".into()),
                description: None
            }
        ),
        Err(ApigwError::BadRequest(_))
    ));
    assert!(matches!(
        svc.delete_integration(&api, &i),
        Err(ApigwError::Conflict(_))
    ));
    // Only the snapshots stages serve (and the latest explicit deployments') are kept.
    let doc = svc.get_http_api(&api).expect("get");
    assert_eq!(doc.snapshots.len(), 2);
    assert!(doc.deployments.len() >= 3);
    // A deployment made before the stage that serves it (CloudFormation's order).
    let d = svc
        .create_deployment(
            &api,
            DeploymentInput {
                stage_name: None,
                description: None,
            },
        )
        .expect("deploy");
    svc.create_stage(
        &api,
        StageInput {
            stage_name: Some("later".into()),
            deployment_id: Some(d.deployment_id),
            ..StageInput::default()
        },
    )
    .expect("a stage on the new deployment");
    assert_eq!(
        http_stage_routes(&svc, &api, "later").map(|r| r.len()),
        Some(2)
    );
}

#[test]
fn concurrent_writers_all_land() {
    let svc = service();
    let api = http_api(&svc, "c");
    let i = integration(&svc, &api);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (svc, api, i) = (Arc::clone(&svc), api.clone(), i.clone());
            std::thread::spawn(move || {
                for n in 0..10 {
                    route(&svc, &api, &format!("GET /t{t}/r{n}"), &i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(svc.get_http_api(&api).expect("get").routes.len(), 40);
}

#[test]
fn rest_import_deploy_and_overwrite() {
    let svc = service();
    let uri =
        format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FN}/invocations");
    let doc = format!(
        "openapi: 3.0.1\ninfo: {{title: pets}}\npaths:\n  /pets/{{id}}:\n    get:\n      x-amazon-apigateway-integration: {{type: aws_proxy, uri: '{uri}'}}\n  /bare:\n    get: {{}}\n"
    );
    let api = svc.import_rest_api(doc.as_bytes(), false).expect("import");
    assert_eq!(api.name, "pets");
    let paths: Vec<String> = svc
        .rest_resources(&api.id)
        .expect("resources")
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, vec!["/", "/pets", "/pets/{id}", "/bare"]);
    // /bare's GET has no integration: nothing can be deployed.
    let err = svc
        .create_rest_deployment(&api.id, rest_api::DeploymentInput::default())
        .expect_err("no integration");
    assert!(
        err.to_string()
            .contains("No integration defined for method GET")
    );
    let fixed = format!(
        "openapi: 3.0.1\ninfo: {{title: pets2}}\npaths:\n  /v/{{proxy+}}:\n    x-amazon-apigateway-any-method:\n      x-amazon-apigateway-integration: {{type: aws_proxy, uri: '{uri}'}}\n"
    );
    let api2 = svc
        .put_rest_api(&api.id, fixed.as_bytes(), PutMode::Overwrite, false)
        .expect("overwrite");
    assert_eq!(api2.name, "pets2");
    svc.create_rest_deployment(
        &api.id,
        rest_api::DeploymentInput {
            stage_name: Some("dev".into()),
            ..rest_api::DeploymentInput::default()
        },
    )
    .expect("deploy");
    let d = svc.deployed(&api.id).expect("deployed").expect("api");
    let Deployed::Rest { stages, .. } = d.as_ref() else {
        panic!("not a REST API");
    };
    let dev = &stages["dev"];
    let (m, params) = crate::routing::best(&dev.resources, "DELETE", "/v/a/b").expect("match");
    assert_eq!(m.resource_path, "/v/{proxy+}");
    assert_eq!(params, vec![("proxy".to_string(), "a/b".to_string())]);
    // The API kinds do not mix.
    assert!(matches!(
        svc.get_http_api(&api.id),
        Err(ApigwError::NotFound(_))
    ));
}
