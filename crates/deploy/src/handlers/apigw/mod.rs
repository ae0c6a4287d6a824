//! API Gateway resources over Kindling's API Gateway domain, called in-process: HTTP APIs
//! (`AWS::ApiGatewayV2::Api/Stage/Route/Integration/Deployment`) and REST APIs
//! (`AWS::ApiGateway::RestApi/Resource/Method/Deployment/Stage`), including OpenAPI bodies
//! (`Body`, `BodyS3Location`: what SAM generates for implicit and explicit APIs).
//!
//! `Ref` and `Fn::GetAtt` are CloudFormation's: an API's id (`ApiId`, `RestApiId`,
//! `RootResourceId`), a stage's name, a route's, integration's, deployment's or resource's id.
//! `ApiEndpoint` is the URL Kindling serves the API at (the DNS-free path form
//! `http://<host:port>/execute-api/<api-id>`, as Kindling's GetApi shows it); the host form
//! `<api-id>.execute-api.<region>.amazonaws.com` reaches the same API when a request's `Host`
//! says so.

mod http;
mod rest;

use std::collections::BTreeMap;
use std::sync::Arc;

use kindling_apigw::ApiGateway;
use kindling_apigw::error::ApigwError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::props::{document, string, text};
use super::{Kindling, blocking};
use crate::provider::ProvisionError;

pub use http::*;
pub use rest::*;

fn service(k: &Kindling) -> Result<Arc<ApiGateway>, ProvisionError> {
    k.apigw
        .clone()
        .ok_or_else(|| ProvisionError::new("this Kindling serves no API Gateway"))
}

fn fail(e: ApigwError) -> ProvisionError {
    ProvisionError::new(e.to_string())
}

/// Runs a domain call on the blocking pool.
async fn call<T: Send + 'static>(
    k: &Kindling,
    f: impl FnOnce(&ApiGateway) -> Result<T, ApigwError> + Send + 'static,
) -> Result<T, ProvisionError> {
    let svc = service(k)?;
    blocking(move || f(&svc).map_err(fail)).await
}

/// A delete that finds the thing gone already succeeds.
async fn delete_call(
    k: &Kindling,
    what: &str,
    f: impl FnOnce(&ApiGateway) -> Result<(), ApigwError> + Send + 'static,
) -> Result<(), ProvisionError> {
    let svc = service(k)?;
    let what = what.to_string();
    blocking(move || match f(&svc) {
        Ok(()) => Ok(()),
        Err(ApigwError::NotFound(_)) => {
            tracing::debug!(what, "already deleted");
            Ok(())
        }
        Err(e) => Err(fail(e)),
    })
    .await
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// CloudFormation's properties as the wire's camelCase input: top-level keys (and the keys
/// of the `nested` objects) lower-cased at their first letter; `ints` and `bools` accepted as
/// text too; `skip` left out (handled by the caller).
fn wire_input<T: DeserializeOwned>(
    props: &Map<String, Value>,
    nested: &[&str],
    ints: &[&str],
    bools: &[&str],
    skip: &[&str],
) -> Result<T, ProvisionError> {
    fn coerce(key: &str, v: &Value, ints: &[&str], bools: &[&str]) -> Value {
        match v {
            Value::String(s) if ints.contains(&key) => {
                s.trim().parse::<i64>().map_or(v.clone(), Value::from)
            }
            Value::String(s) if bools.contains(&key) => match s.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => v.clone(),
            },
            _ => v.clone(),
        }
    }
    let mut out = Map::new();
    for (key, value) in props {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let value = match value {
            Value::Object(inner) if nested.contains(&key.as_str()) => Value::Object(
                inner
                    .iter()
                    .map(|(k, v)| (lower_first(k), coerce(k, v, ints, bools)))
                    .collect(),
            ),
            other => coerce(key, other, ints, bools),
        };
        out.insert(lower_first(key), value);
    }
    serde_json::from_value(Value::Object(out))
        .map_err(|e| ProvisionError::new(format!("Properties validation failed: {e}")))
}

fn string_map(props: &Map<String, Value>, key: &str) -> Option<BTreeMap<String, String>> {
    props.get(key).and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| text(v).map(|v| (k.clone(), v)))
            .collect()
    })
}

/// The OpenAPI document of `Body` (object or text) or `BodyS3Location`, if any.
async fn body(k: &Kindling, props: &Map<String, Value>) -> Result<Option<Vec<u8>>, ProvisionError> {
    if let Some(b) = props.get("Body") {
        return Ok(Some(document(b).into_bytes()));
    }
    let Some(loc) = props.get("BodyS3Location") else {
        return Ok(None);
    };
    let bucket = loc
        .get("Bucket")
        .and_then(text)
        .ok_or_else(|| ProvisionError::new("BodyS3Location needs a Bucket"))?;
    let key = loc
        .get("Key")
        .and_then(text)
        .ok_or_else(|| ProvisionError::new("BodyS3Location needs a Key"))?;
    let (_, bytes) = k
        .objects
        .read_object(&bucket, &key, 10 * 1024 * 1024)
        .await
        .map_err(|e| ProvisionError::new(format!("BodyS3Location s3://{bucket}/{key}: {e}")))?;
    Ok(Some(bytes))
}

fn fail_on_warnings(props: &Map<String, Value>) -> bool {
    string(props, "FailOnWarnings").is_some_and(|v| v == "true")
}
