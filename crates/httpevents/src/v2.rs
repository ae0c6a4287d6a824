//! Payload format 2.0: function URLs and HTTP APIs.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::request::{BodyEncoding, HttpRequest, RequestContext};
use crate::response::{
    HttpResponse, ResponseError, base64_flag, body_bytes, single_headers, status_code,
};
use crate::time::request_time;
use crate::v1::PairMap;

/// Who the event is for: the fields function URLs always carry as `null` are left out of an
/// HTTP API's event when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `routeKey` `$default`; `authentication`, `pathParameters`, `stageVariables` (and
    /// `authorizer` without IAM auth) are `null`.
    FunctionUrl,
    HttpApi,
}

/// What the route adds to the request.
#[derive(Debug, Clone)]
pub struct Options {
    pub style: Style,
    /// `$default`, or `GET /items/{id}`.
    pub route_key: String,
    pub path_parameters: Option<Vec<(String, String)>>,
    pub stage_variables: Option<Vec<(String, String)>>,
    /// `requestContext.authorizer`, e.g. `{"iam": {...}}`.
    pub authorizer: Option<Value>,
    pub body_encoding: BodyEncoding,
}

impl Options {
    /// A function URL's event.
    pub fn function_url() -> Self {
        Options {
            style: Style::FunctionUrl,
            route_key: "$default".to_owned(),
            path_parameters: None,
            stage_variables: None,
            authorizer: None,
            body_encoding: BodyEncoding::Auto,
        }
    }

    /// An HTTP API route's event.
    pub fn http_api(route_key: impl Into<String>) -> Self {
        Options {
            style: Style::HttpApi,
            route_key: route_key.into(),
            ..Options::function_url()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<String>>,
    headers: PairMap<'a, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<PairMap<'a, String>>,
    request_context: Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<Option<PairMap<'a, String>>>,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<Option<PairMap<'a, String>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authentication: Option<Option<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<Option<&'a Value>>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Option<&'a str>,
}

/// The 2.0 event for `request`, as JSON bytes.
pub fn event(request: &HttpRequest, context: &RequestContext, options: &Options) -> Vec<u8> {
    let url = options.style == Style::FunctionUrl;
    let headers = request.joined_headers(true);
    let cookies = request.cookies();
    let query: Vec<(String, String)> = request
        .query_multi()
        .into_iter()
        .map(|(k, v)| (k, v.join(",")))
        .collect();
    let (body, is_base64) = match request.event_body(options.body_encoding) {
        Some((text, b64)) => (Some(text), b64),
        None => (None, false),
    };
    let event = Event {
        version: "2.0",
        route_key: &options.route_key,
        raw_path: &request.path,
        raw_query_string: &request.query,
        cookies: (!cookies.is_empty()).then_some(cookies),
        headers: PairMap(&headers),
        query_string_parameters: (!query.is_empty()).then_some(PairMap(&query)),
        request_context: Context {
            account_id: &context.account_id,
            api_id: &context.api_id,
            authentication: url.then_some(None),
            authorizer: match &options.authorizer {
                Some(a) => Some(Some(a)),
                None if url => Some(None),
                None => None,
            },
            domain_name: &context.domain_name,
            domain_prefix: &context.domain_prefix,
            http: Http {
                method: &request.method,
                path: &request.path,
                protocol: &request.protocol,
                source_ip: &request.source_ip,
                user_agent: request.user_agent(),
            },
            request_id: &context.request_id,
            route_key: &options.route_key,
            stage: &context.stage,
            time: request_time(context.time_epoch_ms),
            time_epoch: context.time_epoch_ms,
        },
        body,
        path_parameters: nullable(&options.path_parameters, url),
        is_base64_encoded: is_base64,
        stage_variables: nullable(&options.stage_variables, url),
    };
    // Serializing plain strings and maps of strings cannot fail.
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Present as a map; absent as `null` (function URLs) or left out (HTTP APIs).
fn nullable(v: &Option<Vec<(String, String)>>, null: bool) -> Option<Option<PairMap<'_, String>>> {
    match v {
        Some(pairs) => Some(Some(PairMap(pairs))),
        None if null => Some(None),
        None => None,
    }
}

/// Maps a function's result (its raw payload) to the HTTP response, as function URLs and
/// HTTP APIs (2.0) do. A JSON object with `statusCode` is read as a response; any other valid
/// JSON is the inferred form: 200, `content-type: application/json`, the result as the body.
pub fn response(payload: &[u8]) -> Result<HttpResponse, ResponseError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(map) = &value else {
        return Ok(inferred(payload));
    };
    let Some(code) = map.get("statusCode") else {
        return Ok(inferred(payload));
    };
    let status = status_code(code)?;
    let mut headers = single_headers(map.get("headers"), "headers")?;
    match map.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                match cookie {
                    Value::String(c) => headers.push(("set-cookie".to_owned(), c.clone())),
                    _ => return Err(ResponseError::BadCookies),
                }
            }
        }
        Some(_) => return Err(ResponseError::BadCookies),
    }
    let decode = base64_flag(map.get("isBase64Encoded"))?;
    let body = body_bytes(map.get("body"), decode)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn inferred(payload: &[u8]) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Bytes::copy_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/my/path".into(),
            query: "parameter1=value1&parameter1=value2&parameter2=value".into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "abc.lambda-url.us-east-1.on.aws".into()),
                ("User-Agent".into(), "agent".into()),
                ("Content-Type".into(), "application/json".into()),
                ("Cookie".into(), "cookie1=1; cookie2=2".into()),
                ("X-Dup".into(), "a".into()),
                ("x-dup".into(), "b".into()),
            ],
            body: Bytes::from_static(b"{\"hello\":\"world\"}"),
            source_ip: "203.0.113.9".into(),
        }
    }

    fn context() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            api_id: "abc".into(),
            domain_name: "abc.lambda-url.us-east-1.on.aws".into(),
            domain_prefix: "abc".into(),
            request_id: "req-1".into(),
            stage: "$default".into(),
            time_epoch_ms: 1_584_039_838_390,
        }
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn function_url_event() {
        let e = parse(&event(&request(), &context(), &Options::function_url()));
        assert_eq!(
            e,
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/my/path",
                "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
                "cookies": ["cookie1=1", "cookie2=2"],
                "headers": {
                    "host": "abc.lambda-url.us-east-1.on.aws",
                    "user-agent": "agent",
                    "content-type": "application/json",
                    "x-dup": "a,b"
                },
                "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "abc",
                    "authentication": null,
                    "authorizer": null,
                    "domainName": "abc.lambda-url.us-east-1.on.aws",
                    "domainPrefix": "abc",
                    "http": {
                        "method": "POST",
                        "path": "/my/path",
                        "protocol": "HTTP/1.1",
                        "sourceIp": "203.0.113.9",
                        "userAgent": "agent"
                    },
                    "requestId": "req-1",
                    "routeKey": "$default",
                    "stage": "$default",
                    "time": "12/Mar/2020:19:03:58 +0000",
                    "timeEpoch": 1_584_039_838_390_i64
                },
                "body": "{\"hello\":\"world\"}",
                "pathParameters": null,
                "isBase64Encoded": false,
                "stageVariables": null
            })
        );
    }

    #[test]
    fn http_api_event_omits_absent_fields() {
        let mut r = request();
        r.query.clear();
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("cookie"));
        r.body = Bytes::new();
        let mut o = Options::http_api("GET /items/{id}");
        o.path_parameters = Some(vec![("id".into(), "7".into())]);
        let e = parse(&event(&r, &context(), &o));
        let obj = e.as_object().unwrap();
        for absent in ["cookies", "queryStringParameters", "body", "stageVariables"] {
            assert!(!obj.contains_key(absent), "{absent}");
        }
        assert!(
            !e["requestContext"]
                .as_object()
                .unwrap()
                .contains_key("authentication")
        );
        assert!(
            !e["requestContext"]
                .as_object()
                .unwrap()
                .contains_key("authorizer")
        );
        assert_eq!(e["pathParameters"], json!({"id": "7"}));
        assert_eq!(e["routeKey"], "GET /items/{id}");
        assert_eq!(e["requestContext"]["routeKey"], "GET /items/{id}");
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn binary_body_is_base64() {
        let mut r = request();
        r.headers = vec![("content-type".into(), "application/octet-stream".into())];
        r.body = Bytes::from_static(&[0, 1, 2, 255]);
        let e = parse(&event(&r, &context(), &Options::function_url()));
        assert_eq!(e["body"], "AAEC/w==");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["requestContext"]["http"]["userAgent"], Value::Null);
    }

    #[test]
    fn iam_authorizer_is_passed() {
        let mut o = Options::function_url();
        o.authorizer = Some(json!({"iam": {"accessKey": "AKID"}}));
        let e = parse(&event(&request(), &context(), &o));
        assert_eq!(
            e["requestContext"]["authorizer"]["iam"]["accessKey"],
            "AKID"
        );
        assert_eq!(e["requestContext"]["authentication"], Value::Null);
    }

    #[test]
    fn structured_response() {
        let r = response(
            br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-n":5},
                 "cookies":["a=1","b=2; Path=/"],"body":"made","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_owned(), "text/plain".to_owned()),
                ("x-n".to_owned(), "5".to_owned()),
                ("set-cookie".to_owned(), "a=1".to_owned()),
                ("set-cookie".to_owned(), "b=2; Path=/".to_owned()),
            ]
        );
        assert_eq!(&r.body[..], b"made");
    }

    #[test]
    fn base64_response() {
        let r =
            response(br#"{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}"#).unwrap();
        assert_eq!(&r.body[..], &[0, 1, 2, 255]);
        assert_eq!(
            response(br#"{"statusCode":200,"body":"not base64!","isBase64Encoded":true}"#),
            Err(ResponseError::BadBase64)
        );
    }

    #[test]
    fn inferred_responses() {
        for payload in [
            &br#"{"message":"hi"}"#[..],
            b"\"Hello, world!\"",
            b"42",
            b"[1,2]",
            b"null",
        ] {
            let r = response(payload).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(&r.body[..], payload);
        }
    }

    #[test]
    fn malformed_responses() {
        assert_eq!(response(b"not json"), Err(ResponseError::NotJson));
        assert_eq!(
            response(br#"{"statusCode":"abc"}"#),
            Err(ResponseError::BadStatusCode)
        );
        assert_eq!(
            response(br#"{"statusCode":200,"headers":{"a":[1]}}"#),
            Err(ResponseError::BadHeaders("headers"))
        );
        assert_eq!(
            response(br#"{"statusCode":200,"cookies":"a=1"}"#),
            Err(ResponseError::BadCookies)
        );
        assert_eq!(
            response(br#"{"statusCode":200,"body":{"a":1}}"#),
            Err(ResponseError::BadBody)
        );
        assert_eq!(
            response(br#"{"statusCode":200,"isBase64Encoded":3}"#),
            Err(ResponseError::BadBase64Flag)
        );
        // A bare status code is a response with an empty body.
        let r = response(br#"{"statusCode":204}"#).unwrap();
        assert_eq!((r.status, r.body.len(), r.headers.len()), (204, 0, 0));
    }
}
