//! Payload format 1.0: REST APIs (Lambda proxy integration) and HTTP APIs with 1.0.

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::request::{BodyEncoding, HttpRequest, RequestContext};
use crate::response::{
    HttpResponse, ResponseError, base64_flag, body_bytes, header_value, single_headers, status_code,
};
use crate::time::request_time;

/// What the matched resource adds to the request.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The resource template: `/{proxy+}`, `/items/{id}`.
    pub resource: String,
    pub path_parameters: Option<Vec<(String, String)>>,
    pub stage_variables: Option<Vec<(String, String)>>,
    /// `requestContext.path`: the path as the client sent it, stage included (`/prod/items/7`).
    /// The top-level `path` is the request's path, without the stage.
    pub context_path: String,
    pub resource_id: String,
    pub extended_request_id: String,
    /// `requestContext.authorizer`.
    pub authorizer: Option<Value>,
    /// REST APIs: `Base64` when the content type is in `binaryMediaTypes`, else `Text`;
    /// HTTP APIs with 1.0: `Auto`.
    pub body_encoding: BodyEncoding,
    /// HTTP APIs with payload 1.0 add `"version": "1.0"`.
    pub version_field: bool,
}

/// A slice of pairs serialized as a JSON object, in order.
pub(crate) struct PairMap<'a, V>(pub(crate) &'a [(String, V)]);

impl<V: Serialize> Serialize for PairMap<'_, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: PairMap<'a, String>,
    multi_value_headers: PairMap<'a, Vec<String>>,
    query_string_parameters: Option<PairMap<'a, String>>,
    multi_value_query_string_parameters: Option<PairMap<'a, Vec<String>>>,
    path_parameters: Option<PairMap<'a, String>>,
    stage_variables: Option<PairMap<'a, String>>,
    request_context: Context<'a>,
    body: Option<String>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a Value>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: Identity<'a>,
    path: &'a str,
    protocol: &'a str,
    request_id: &'a str,
    request_time: String,
    request_time_epoch: i64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    access_key: Option<&'a str>,
    account_id: Option<&'a str>,
    caller: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    cognito_identity_pool_id: Option<&'a str>,
    principal_org_id: Option<&'a str>,
    source_ip: &'a str,
    user: Option<&'a str>,
    user_agent: Option<&'a str>,
    user_arn: Option<&'a str>,
}

/// The 1.0 event for `request`, as JSON bytes.
pub fn event(request: &HttpRequest, context: &RequestContext, options: &Options) -> Vec<u8> {
    let multi_headers = request.multi_headers();
    let headers: Vec<(String, String)> = multi_headers
        .iter()
        .map(|(n, v)| (n.clone(), v.last().cloned().unwrap_or_default()))
        .collect();
    let multi_query = request.query_multi();
    let query: Vec<(String, String)> = multi_query
        .iter()
        .map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default()))
        .collect();
    let (body, is_base64) = match request.event_body(options.body_encoding) {
        Some((text, b64)) => (Some(text), b64),
        None => (None, false),
    };
    let event = Event {
        version: options.version_field.then_some("1.0"),
        resource: &options.resource,
        path: &request.path,
        http_method: &request.method,
        headers: PairMap(&headers),
        multi_value_headers: PairMap(&multi_headers),
        query_string_parameters: (!query.is_empty()).then_some(PairMap(&query)),
        multi_value_query_string_parameters: (!multi_query.is_empty())
            .then_some(PairMap(&multi_query)),
        path_parameters: options.path_parameters.as_deref().map(PairMap),
        stage_variables: options.stage_variables.as_deref().map(PairMap),
        request_context: Context {
            account_id: &context.account_id,
            api_id: &context.api_id,
            authorizer: options.authorizer.as_ref(),
            domain_name: &context.domain_name,
            domain_prefix: &context.domain_prefix,
            extended_request_id: &options.extended_request_id,
            http_method: &request.method,
            identity: Identity {
                access_key: None,
                account_id: None,
                caller: None,
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: &request.source_ip,
                user: None,
                user_agent: request.user_agent(),
                user_arn: None,
            },
            path: &options.context_path,
            protocol: &request.protocol,
            request_id: &context.request_id,
            request_time: request_time(context.time_epoch_ms),
            request_time_epoch: context.time_epoch_ms,
            resource_id: &options.resource_id,
            resource_path: &options.resource,
            stage: &context.stage,
        },
        body,
        is_base64_encoded: is_base64,
    };
    // Serializing plain strings and maps of strings cannot fail.
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Maps a function's result to the HTTP response as API Gateway does for payload 1.0: an
/// object with `statusCode` is required; `headers` and `multiValueHeaders` are merged (the
/// multi-value entry wins for a name in both). `decode_base64`: whether a body marked
/// `isBase64Encoded` is decoded (HTTP APIs: always; REST APIs: when the client's `Accept`
/// matches `binaryMediaTypes`) or passed on as its base64 text.
pub fn response(payload: &[u8], decode_base64: bool) -> Result<HttpResponse, ResponseError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(map) = &value else {
        return Err(ResponseError::NotAnObject);
    };
    let status = status_code(
        map.get("statusCode")
            .ok_or(ResponseError::MissingStatusCode)?,
    )?;
    let mut headers: Vec<(String, String)> = Vec::new();
    match map.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(multi)) => {
            for (name, values) in multi {
                match values {
                    Value::Array(values) => {
                        for v in values {
                            if let Some(v) = header_value(v, "multiValueHeaders")? {
                                headers.push((name.clone(), v));
                            }
                        }
                    }
                    Value::Null => {}
                    _ => return Err(ResponseError::BadHeaders("multiValueHeaders")),
                }
            }
        }
        Some(_) => return Err(ResponseError::BadHeaders("multiValueHeaders")),
    }
    let multi_count = headers.len();
    for (name, v) in single_headers(map.get("headers"), "headers")? {
        if !headers[..multi_count]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            headers.push((name, v));
        }
    }
    let decode = decode_base64 && base64_flag(map.get("isBase64Encoded"))?;
    let body = body_bytes(map.get("body"), decode)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/hello/world".into(),
            query: "a=1&a=2&b=3".into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "abc.execute-api.localhost".into()),
                ("X-Multi".into(), "one".into()),
                ("x-multi".into(), "two".into()),
                ("User-Agent".into(), "curl/8".into()),
            ],
            body: Bytes::from_static(b"{\"k\":1}"),
            source_ip: "203.0.113.9".into(),
        }
    }

    fn options() -> Options {
        Options {
            resource: "/{proxy+}".into(),
            path_parameters: Some(vec![("proxy".into(), "hello/world".into())]),
            context_path: "/prod/hello/world".into(),
            resource_id: "r1".into(),
            extended_request_id: "ext".into(),
            body_encoding: BodyEncoding::Text,
            ..Options::default()
        }
    }

    fn context() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            api_id: "abc".into(),
            domain_name: "abc.execute-api.localhost".into(),
            domain_prefix: "abc".into(),
            request_id: "r-1".into(),
            stage: "prod".into(),
            time_epoch_ms: 1_767_323_045_000,
        }
    }

    #[test]
    fn rest_event() {
        let e: Value = serde_json::from_slice(&event(&request(), &context(), &options())).unwrap();
        assert!(e.get("version").is_none());
        assert_eq!(e["resource"], "/{proxy+}");
        assert_eq!(e["path"], "/hello/world");
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["headers"]["X-Multi"], "two");
        assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["one", "two"]));
        assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": "3"}));
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"a": ["1", "2"], "b": ["3"]})
        );
        assert_eq!(e["pathParameters"], json!({"proxy": "hello/world"}));
        assert_eq!(e["stageVariables"], Value::Null);
        assert_eq!(e["body"], "{\"k\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        let c = &e["requestContext"];
        assert_eq!(c["path"], "/prod/hello/world");
        assert_eq!(c["resourcePath"], "/{proxy+}");
        assert_eq!(c["stage"], "prod");
        assert_eq!(c["requestTime"], "02/Jan/2026:03:04:05 +0000");
        assert_eq!(c["requestTimeEpoch"], 1_767_323_045_000_i64);
        assert_eq!(c["identity"]["sourceIp"], "203.0.113.9");
        assert_eq!(c["identity"]["userAgent"], "curl/8");
        assert_eq!(c["identity"]["user"], Value::Null);
    }

    #[test]
    fn empty_collections_are_null() {
        let mut r = request();
        r.query.clear();
        r.body = Bytes::new();
        let mut o = options();
        o.path_parameters = None;
        o.version_field = true;
        let e: Value = serde_json::from_slice(&event(&r, &context(), &o)).unwrap();
        assert_eq!(e["version"], "1.0");
        for k in [
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "body",
        ] {
            assert_eq!(e[k], Value::Null, "{k}");
            assert!(
                e.as_object().unwrap().contains_key(k),
                "{k} present as null"
            );
        }
    }

    #[test]
    fn binary_body() {
        let mut o = options();
        o.body_encoding = BodyEncoding::Base64;
        let e: Value = serde_json::from_slice(&event(&request(), &context(), &o)).unwrap();
        assert_eq!(e["body"], "eyJrIjoxfQ==");
        assert_eq!(e["isBase64Encoded"], true);
    }

    #[test]
    fn responses() {
        let r = response(
            br#"{"statusCode":200,"headers":{"Content-Type":"text/plain","X-A":"single"},
                 "multiValueHeaders":{"x-a":["m1","m2"],"Set-Cookie":["a=1","b=2"]},
                 "body":"hi","isBase64Encoded":false}"#,
            true,
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers,
            vec![
                ("x-a".to_owned(), "m1".to_owned()),
                ("x-a".to_owned(), "m2".to_owned()),
                ("Set-Cookie".to_owned(), "a=1".to_owned()),
                ("Set-Cookie".to_owned(), "b=2".to_owned()),
                ("Content-Type".to_owned(), "text/plain".to_owned()),
            ]
        );
        assert_eq!(&r.body[..], b"hi");
        let b64 = br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#;
        assert_eq!(&response(b64, true).unwrap().body[..], b"hi");
        assert_eq!(&response(b64, false).unwrap().body[..], b"aGk=");
        assert_eq!(
            &response(br#"{"statusCode":"200","body":null}"#, true)
                .unwrap()
                .body[..],
            b""
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(response(b"oops", true), Err(ResponseError::NotJson));
        assert_eq!(response(b"\"hi\"", true), Err(ResponseError::NotAnObject));
        assert_eq!(
            response(br#"{"body":"x"}"#, true),
            Err(ResponseError::MissingStatusCode)
        );
        assert_eq!(
            response(br#"{"statusCode":200,"body":{"a":1}}"#, true),
            Err(ResponseError::BadBody)
        );
        assert_eq!(
            response(br#"{"statusCode":200,"multiValueHeaders":{"a":"b"}}"#, true),
            Err(ResponseError::BadHeaders("multiValueHeaders"))
        );
        assert_eq!(
            response(
                br#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#,
                true
            ),
            Err(ResponseError::BadBase64)
        );
    }
}
