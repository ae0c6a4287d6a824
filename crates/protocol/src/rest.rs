//! Error rendering of the REST protocols: rest-json (API Gateway, Scheduler: `x-amzn-ErrorType`
//! and `{"message": …}`) and rest-xml (S3: `<Error><Code/><Message/>…</Error>`).

use bytes::Bytes;

use crate::error::WireError;
use crate::xml::Xml;

/// A rest-json error: status, `x-amzn-ErrorType: <code>`, body `{"message": …}`.
pub fn json_error_response(err: &dyn WireError, request_id: &str) -> crate::Response {
    let body = serde_json::json!({ "message": err.message() });
    let mut res = http::Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = status(err.status());
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(err.code()) {
        headers.insert("x-amzn-ErrorType", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    res
}

/// An S3-style error document; `extra` adds elements such as `BucketName` or `Key`.
pub fn xml_error_response(
    err: &dyn WireError,
    request_id: &str,
    extra: &[(&str, &str)],
) -> crate::Response {
    let mut xml = Xml::document();
    xml.open("Error")
        .leaf("Code", err.code())
        .leaf("Message", err.message());
    for (name, value) in extra {
        xml.leaf(name, value);
    }
    xml.leaf("RequestId", request_id).close("Error");
    let mut res = http::Response::new(Bytes::from(xml.finish()));
    *res.status_mut() = status(err.status());
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amz-request-id", v);
    }
    res
}

fn status(code: u16) -> http::StatusCode {
    http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSuchKey;
    impl WireError for NoSuchKey {
        fn status(&self) -> u16 {
            404
        }
        fn code(&self) -> &str {
            "NoSuchKey"
        }
        fn message(&self) -> String {
            "The specified key does not exist.".into()
        }
    }

    #[test]
    fn rest_json_and_rest_xml_errors() {
        let j = json_error_response(&NoSuchKey, "r");
        assert_eq!(j.status(), 404);
        assert_eq!(j.headers()["x-amzn-ErrorType"], "NoSuchKey");
        let body: serde_json::Value = serde_json::from_slice(j.body()).unwrap();
        assert_eq!(body["message"], "The specified key does not exist.");

        let x = xml_error_response(&NoSuchKey, "r", &[("Key", "a&b")]);
        let body = std::str::from_utf8(x.body()).unwrap();
        assert!(body.ends_with(
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>\
             <Key>a&amp;b</Key><RequestId>r</RequestId></Error>"
        ));
    }
}
