//! Malformed templates get errors, never panics: every fixture cut short at many points, and
//! every node of every fixture replaced by a value of another type, run through the whole
//! pipeline.

use kindling_cfn_template::{
    DependencyGraph, Environment, EvalMode, Evaluator, NothingKnown, PseudoParameters, SamContext,
    parse_document, process, resolve_parameters, validate_template,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/templates");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("templates")
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".golden.json"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs everything the engine would run; the result does not matter, only that it returns.
fn pipeline(doc: Value) {
    let Ok(template) = process(doc, &SamContext::default()) else {
        return;
    };
    let _ = validate_template(&template);
    let Ok(params) = resolve_parameters(&template.parameters, &[], None) else {
        return;
    };
    let pseudo = PseudoParameters::new("123456789012", "us-east-1", "s", "arn:s");
    let azs = vec!["us-east-1a".to_string()];
    let exports = HashMap::new();
    let env = Environment {
        pseudo: &pseudo,
        availability_zones: &azs,
        exports: &exports,
    };
    let Ok(ev) = Evaluator::new(&template, &params, env) else {
        return;
    };
    if let Ok(graph) = DependencyGraph::build(&template, ev.conditions()) {
        let _ = graph.creation_waves();
    }
    for id in ev.active_resources() {
        let _ = ev.resource_properties(id, &NothingKnown, EvalMode::Preview);
    }
    let _ = ev.outputs(&NothingKnown, EvalMode::Preview);
}

#[test]
fn truncated_templates() {
    let mut runs = 0;
    for (_, text) in fixtures() {
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(11).collect();
        for cut in cuts {
            if let Ok(doc) = parse_document(&text[..cut]) {
                pipeline(doc);
            }
            runs += 1;
        }
    }
    assert!(runs > 500, "{runs}");
}

fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                prefix.push(k.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(i.to_string());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn replace(value: &mut Value, path: &[String], with: &Value) {
    let Some((first, rest)) = path.split_first() else {
        *value = with.clone();
        return;
    };
    match value {
        Value::Object(m) => {
            if let Some(v) = m.get_mut(first) {
                replace(v, rest, with);
            }
        }
        Value::Array(items) => {
            if let Some(v) = first.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                replace(v, rest, with);
            }
        }
        _ => {}
    }
}

#[test]
fn every_node_of_every_fixture_with_the_wrong_type() {
    let replacements = [
        json!(null),
        json!(7),
        json!("x"),
        json!([]),
        json!({}),
        json!({"Ref": "Nope"}),
        json!([{"Fn::Sub": "${"}]),
    ];
    let mut runs = 0;
    for (_, text) in fixtures() {
        let doc = parse_document(&text).expect("fixture parses");
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        for path in all.iter().skip(1) {
            for with in &replacements {
                let mut mutated = doc.clone();
                replace(&mut mutated, path, with);
                pipeline(mutated);
                runs += 1;
            }
        }
    }
    assert!(runs > 5_000, "{runs}");
}
