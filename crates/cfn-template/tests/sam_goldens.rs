//! Kindling's SAM transform against samtranslator's output for the same fixtures
//! (`tests/templates/*.golden.json`, made by `tests/make_goldens.py`).
//!
//! Compared: the set of logical ids, each resource's type, properties and attributes, and
//! the outputs. The one documented difference: the hash suffix of REST API deployments
//! (`<Api>Deployment<hash>`), which samtranslator computes over Python 2.7's `str()` of its
//! swagger dictionary; Kindling hashes the canonical JSON of the body instead (the id still
//! changes exactly when the definition changes).

use kindling_cfn_template::{SamContext, Template, parse_document, process, validate_template};
use serde_json::{Map, Value};
use std::path::PathBuf;

fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/templates")
}

/// `FooDeployment0123456789` → `FooDeployment<hash>`.
fn normalize_id(id: &str) -> String {
    if let Some(pos) = id.find("Deployment") {
        let tail = &id[pos + "Deployment".len()..];
        if tail.len() == 10 && tail.chars().all(|c| c.is_ascii_hexdigit()) {
            return format!("{}Deployment<hash>", &id[..pos]);
        }
    }
    id.to_string()
}

fn normalize(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(normalize_id(s)),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !(k.as_str() == "Description" && m.contains_key("RestApiId") && m.len() <= 3)
                })
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resources(doc: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (id, r) in doc["Resources"].as_object().cloned().unwrap_or_default() {
        out.insert(normalize_id(&id), normalize(&r));
    }
    out
}

fn parameter_defaults(doc: &Value) -> std::collections::HashMap<String, Value> {
    doc.get("Parameters")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| v.get("Default").map(|d| (k.clone(), d.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn check(name: &str) {
    let dir = templates_dir();
    let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let golden_text =
        std::fs::read_to_string(dir.join(format!("{stem}.golden.json"))).expect("golden file");
    let golden: Value = serde_json::from_str(&golden_text).expect("golden json");

    let doc = parse_document(&text).expect("fixture parses");
    let ctx = SamContext {
        parameter_values: parameter_defaults(&doc),
        ..SamContext::default()
    };
    let template: Template =
        process(doc, &ctx).unwrap_or_else(|e| panic!("{name}: transform failed: {e}"));
    validate_template(&template)
        .unwrap_or_else(|e| panic!("{name}: processed template invalid: {e}"));
    let ours = template.document();

    let want = resources(&golden);
    let got = resources(ours);
    let mut problems = Vec::new();
    let want_ids: Vec<&String> = want.keys().collect();
    let got_ids: Vec<&String> = got.keys().collect();
    for id in &want_ids {
        if !got.contains_key(id.as_str()) {
            problems.push(format!("missing resource {id}"));
        }
    }
    for id in &got_ids {
        if !want.contains_key(id.as_str()) {
            problems.push(format!("extra resource {id}"));
        }
    }
    for (id, w) in &want {
        let Some(g) = got.get(id) else { continue };
        for key in [
            "Type",
            "Properties",
            "DeletionPolicy",
            "UpdatePolicy",
            "DependsOn",
            "Condition",
            "UpdateReplacePolicy",
            "Metadata",
        ] {
            if w.get(key) != g.get(key) {
                problems.push(format!(
                    "{id}.{key}:\n  samtranslator: {}\n  kindling:      {}",
                    w.get(key).map(Value::to_string).unwrap_or_default(),
                    g.get(key).map(Value::to_string).unwrap_or_default()
                ));
            }
        }
    }
    if normalize(&golden["Outputs"]) != normalize(&ours["Outputs"]) {
        problems.push(format!(
            "Outputs differ:\n  {}\n  {}",
            golden["Outputs"], ours["Outputs"]
        ));
    }
    for section in [
        "Parameters",
        "Conditions",
        "Mappings",
        "Description",
        "AWSTemplateFormatVersion",
    ] {
        if golden.get(section) != ours.get(section) {
            problems.push(format!("{section} differs"));
        }
    }
    assert!(
        problems.is_empty(),
        "{name}: {} differences from samtranslator:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn hello_world() {
    check("sam-hello-world.yaml");
}

#[test]
fn http_api_with_powertools() {
    check("sam-httpapi-powertools.yaml");
}

#[test]
fn sqs_consumer() {
    check("sam-sqs-consumer.yaml");
}

#[test]
fn sns_fan_out() {
    check("sam-sns-fanout.yaml");
}

#[test]
fn schedules() {
    check("sam-schedules.yaml");
}

#[test]
fn function_url() {
    check("sam-function-url.yaml");
}

#[test]
fn layer_and_canary_alias() {
    check("sam-layer-canary.yaml");
}

#[test]
fn rest_api_with_openapi_body() {
    check("sam-rest-openapi.yaml");
}

#[test]
fn eventbridge_json_template() {
    check("sam-eventbridge.json");
}

#[test]
fn apis_with_cors_and_stages() {
    check("sam-apis-cors.yaml");
}

#[test]
fn every_sam_fixture_has_a_golden_file_and_a_test() {
    let mut fixtures: Vec<String> = std::fs::read_dir(templates_dir())
        .expect("templates dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("sam-") && !n.ends_with(".golden.json"))
        .collect();
    fixtures.sort();
    let tested = [
        "sam-apis-cors.yaml",
        "sam-eventbridge.json",
        "sam-function-url.yaml",
        "sam-hello-world.yaml",
        "sam-httpapi-powertools.yaml",
        "sam-layer-canary.yaml",
        "sam-rest-openapi.yaml",
        "sam-schedules.yaml",
        "sam-sns-fanout.yaml",
        "sam-sqs-consumer.yaml",
    ];
    assert_eq!(fixtures, tested);
}
