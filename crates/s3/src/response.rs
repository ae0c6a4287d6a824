//! Building S3 responses: the headers every response carries, XML documents, and an object's
//! headers (ETag, Last-Modified, metadata, checksums).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use kindling_model::objects::ObjectRecord;
use kindling_protocol::time::http_date;
use kindling_protocol::xml::Xml;

/// S3's namespace for response documents.
pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Request id headers (S3's and the AWS JSON services' spelling), on every response.
pub fn common_headers(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amz-request-id", v.clone());
        headers.insert("x-amz-id-2", v.clone());
        headers.insert("x-amzn-requestid", v);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static("AmazonS3"));
}

/// Sets a header if the value is a valid header value (user metadata may not be).
pub fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// A response with an empty body.
pub fn empty(status: StatusCode, request_id: &str) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    common_headers(res.headers_mut(), request_id);
    res
}

/// A 200 response whose body is an XML document.
pub fn xml(doc: Xml, request_id: &str) -> Response {
    let mut res = Response::new(Body::from(doc.finish()));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    common_headers(res.headers_mut(), request_id);
    res
}

/// An ETag as S3 sends it: in double quotes.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The headers describing an object (GetObject, HeadObject): everything but the length and
/// range, which depend on the request.
pub fn object_headers(headers: &mut HeaderMap, rec: &ObjectRecord, with_checksum: bool) {
    let m = &rec.meta;
    set(headers, "etag", &quoted(&rec.etag));
    set(headers, "last-modified", &http_date(rec.last_modified_ms));
    set(headers, "accept-ranges", "bytes");
    set(
        headers,
        "content-type",
        m.content_type.as_deref().unwrap_or("binary/octet-stream"),
    );
    for (name, value) in [
        ("content-encoding", &m.content_encoding),
        ("content-disposition", &m.content_disposition),
        ("content-language", &m.content_language),
        ("cache-control", &m.cache_control),
        ("expires", &m.expires),
        ("x-amz-server-side-encryption", &m.server_side_encryption),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            &m.sse_kms_key_id,
        ),
        (
            "x-amz-website-redirect-location",
            &m.website_redirect_location,
        ),
    ] {
        if let Some(v) = value {
            set(headers, name, v);
        }
    }
    if let Some(class) = m.storage_class.as_deref().filter(|c| *c != "STANDARD") {
        set(headers, "x-amz-storage-class", class);
    }
    for (k, v) in &m.user {
        set(headers, &format!("x-amz-meta-{k}"), v);
    }
    if !m.tags.is_empty() {
        set(headers, "x-amz-tagging-count", &m.tags.len().to_string());
    }
    if let Some(v) = &rec.version_id {
        set(headers, "x-amz-version-id", v);
    }
    if with_checksum && let Some(c) = &rec.checksum {
        set(headers, c.algorithm.header(), &c.value);
        set(
            headers,
            "x-amz-checksum-type",
            if c.composite {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            },
        );
    }
}
