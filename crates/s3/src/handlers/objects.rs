//! Object operations: PutObject, GetObject/HeadObject, CopyObject, DeleteObject(s), tags.

use std::io::{Seek, SeekFrom};

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use kindling_model::objects::ObjectRecord;
use kindling_objects::{MetadataDirective, NewObject, ObjectError};
use kindling_protocol::time::iso8601;
use kindling_protocol::xml::Xml;
use percent_encoding::percent_decode_str;

use super::buckets::tag_set;
use super::{small_body, upload};
use crate::auth::Signing;
use crate::error::S3Error;
use crate::operation::Query;
use crate::request::{header, object_meta};
use crate::response::{NS, empty, object_headers, quoted, set, xml};
use crate::{Ctx, preconditions, xml_in};

/// Most tags on an object.
const MAX_OBJECT_TAGS: usize = 10;

fn version(ctx: &Ctx) -> Option<&str> {
    ctx.query.get("versionId").filter(|v| !v.is_empty())
}

/// Headers every write answers with: the version and the encryption the client asked for.
fn write_headers(res: &mut Response, rec: &ObjectRecord) {
    let h = res.headers_mut();
    if let Some(v) = &rec.version_id {
        set(h, "x-amz-version-id", v);
    }
    if let Some(sse) = &rec.meta.server_side_encryption {
        set(h, "x-amz-server-side-encryption", sse);
    }
}

pub async fn put(ctx: &Ctx, body: Body, mut signing: Signing) -> Result<Response, S3Error> {
    let meta = object_meta(&ctx.headers)?;
    let incoming = upload::prepare(ctx, &mut signing)?;
    let writer = ctx
        .objects()
        .begin_put(
            ctx.bucket(),
            &ctx.key,
            incoming.plan.clone(),
            incoming.declared,
        )
        .await?;
    let algorithm = incoming.algorithm;
    let staged = upload::receive(ctx, body, incoming, writer).await?;
    let rec = ctx
        .objects()
        .commit_put(
            staged,
            ctx.bucket(),
            &ctx.key,
            NewObject {
                meta,
                checksum: algorithm,
            },
        )
        .await?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    set(res.headers_mut(), "etag", &quoted(&rec.etag));
    write_headers(&mut res, &rec);
    if let Some(c) = &rec.checksum {
        set(res.headers_mut(), c.algorithm.header(), &c.value);
        set(res.headers_mut(), "x-amz-checksum-type", "FULL_OBJECT");
    }
    Ok(res)
}

/// `response-content-type` and friends: GetObject's per-request header overrides.
const OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// GetObject, or HeadObject with `head`.
pub async fn get(ctx: &Ctx, head: bool) -> Result<Response, S3Error> {
    if ctx.query.has("partNumber") {
        return Err(S3Error::NotImplemented("GetObject with partNumber".into()));
    }
    let opened = ctx
        .objects()
        .open_object(ctx.bucket(), &ctx.key, version(ctx))
        .await?;
    let rec = &opened.record;
    if let Err(e) = preconditions::check(&ctx.headers, rec) {
        if matches!(e, S3Error::NotModified) {
            let mut res = empty(StatusCode::NOT_MODIFIED, &ctx.request_id);
            set(res.headers_mut(), "etag", &quoted(&rec.etag));
            set(
                res.headers_mut(),
                "last-modified",
                &kindling_protocol::time::http_date(rec.last_modified_ms),
            );
            return Ok(res);
        }
        return Err(e);
    }
    let range = preconditions::range(&ctx.headers, rec.size)?;
    let checksum_mode = header(&ctx.headers, "x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    object_headers(res.headers_mut(), rec, checksum_mode && range.is_none());
    for (param, name) in OVERRIDES {
        if let Some(v) = ctx.query.get(param) {
            set(res.headers_mut(), name, v);
        }
    }
    let (start, end) = range.unwrap_or((0, rec.size));
    let len = end - start;
    if let Some((start, end)) = range {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        set(
            res.headers_mut(),
            "content-range",
            &format!("bytes {start}-{}/{}", end - 1, rec.size),
        );
    }
    set(res.headers_mut(), "content-length", &len.to_string());
    if head {
        return Ok(res);
    }
    let mut file = opened.file;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(ObjectError::Io)?;
    }
    *res.body_mut() = crate::body::file_body(file, len);
    Ok(res)
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=v]`, URL-encoded.
fn copy_source(raw: &str) -> Result<(String, String, Option<String>), S3Error> {
    let invalid = || S3Error::InvalidArgument("Invalid copy source object key".into());
    let raw = raw.trim().trim_start_matches('/');
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let version = Query::parse(Some(query))?
        .get("versionId")
        .map(str::to_string);
    let path = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?
        .into_owned();
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string(), version))
}

pub async fn copy(ctx: &Ctx) -> Result<Response, S3Error> {
    let (src_bucket, src_key, src_version) =
        copy_source(header(&ctx.headers, "x-amz-copy-source").unwrap_or_default())?;
    let source = ctx
        .objects()
        .head_object(&src_bucket, &src_key, src_version.as_deref())
        .await?;
    check_copy_conditions(ctx, &source)?;
    let directive = match header(&ctx.headers, "x-amz-metadata-directive") {
        None | Some("COPY") => MetadataDirective::Copy,
        Some("REPLACE") => MetadataDirective::Replace(Box::new(object_meta(&ctx.headers)?)),
        Some(other) => {
            return Err(S3Error::InvalidArgument(format!(
                "Unknown metadata directive: {other}"
            )));
        }
    };
    let rec = ctx
        .objects()
        .copy_object(
            (&src_bucket, &src_key, src_version.as_deref()),
            ctx.bucket(),
            &ctx.key,
            directive,
        )
        .await?;
    let mut doc = Xml::document();
    doc.open_ns("CopyObjectResult", NS)
        .leaf("LastModified", iso8601(rec.last_modified_ms))
        .leaf("ETag", quoted(&rec.etag));
    if let Some(c) = &rec.checksum {
        doc.leaf(super::checksum_element(c.algorithm), &c.value);
    }
    doc.close("CopyObjectResult");
    let mut res = xml(doc, &ctx.request_id);
    write_headers(&mut res, &rec);
    if let Some(v) = &source.version_id {
        set(res.headers_mut(), "x-amz-copy-source-version-id", v);
    }
    Ok(res)
}

/// `x-amz-copy-source-if-*`: like GetObject's conditions, every failure a 412.
fn check_copy_conditions(ctx: &Ctx, source: &ObjectRecord) -> Result<(), S3Error> {
    let mut h = http::HeaderMap::new();
    for (from, to) in [
        ("x-amz-copy-source-if-match", "if-match"),
        ("x-amz-copy-source-if-none-match", "if-none-match"),
        ("x-amz-copy-source-if-modified-since", "if-modified-since"),
        (
            "x-amz-copy-source-if-unmodified-since",
            "if-unmodified-since",
        ),
    ] {
        if let Some(v) = ctx.headers.get(from) {
            h.insert(to, v.clone());
        }
    }
    preconditions::check(&h, source).map_err(|_| S3Error::PreconditionFailed)
}

pub async fn delete(ctx: &Ctx) -> Result<Response, S3Error> {
    ctx.objects().delete_object(ctx.bucket(), &ctx.key).await?;
    Ok(empty(StatusCode::NO_CONTENT, &ctx.request_id))
}

pub async fn delete_many(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, xml_in::MAX_XML_BODY, true).await?;
    let (keys, quiet) = xml_in::delete(&data)?;
    let outcomes = ctx.objects().delete_objects(ctx.bucket(), keys).await?;
    let mut doc = Xml::document();
    doc.open_ns("DeleteResult", NS);
    for (key, outcome) in outcomes {
        match outcome {
            Ok(()) if quiet => {}
            Ok(()) => {
                doc.open("Deleted").leaf("Key", &key).close("Deleted");
            }
            Err(e) => {
                let e = S3Error::from(e);
                doc.open("Error")
                    .leaf("Key", &key)
                    .leaf("Code", kindling_protocol::WireError::code(&e))
                    .leaf("Message", kindling_protocol::WireError::message(&e))
                    .close("Error");
            }
        }
    }
    doc.close("DeleteResult");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn get_tagging(ctx: &Ctx) -> Result<Response, S3Error> {
    let rec = ctx
        .objects()
        .head_object(ctx.bucket(), &ctx.key, version(ctx))
        .await?;
    let mut res = xml(tag_set(&rec.meta.tags), &ctx.request_id);
    write_headers(&mut res, &rec);
    Ok(res)
}

pub async fn put_tagging(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let tags = xml_in::tagging(&data, MAX_OBJECT_TAGS)?;
    let rec = ctx
        .objects()
        .put_object_tags(ctx.bucket(), &ctx.key, version(ctx), tags)
        .await?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    write_headers(&mut res, &rec);
    Ok(res)
}

pub async fn delete_tagging(ctx: &Ctx) -> Result<Response, S3Error> {
    let rec = ctx
        .objects()
        .put_object_tags(ctx.bucket(), &ctx.key, version(ctx), Default::default())
        .await?;
    let mut res = empty(StatusCode::NO_CONTENT, &ctx.request_id);
    write_headers(&mut res, &rec);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_decoded() {
        assert_eq!(
            copy_source("/src-bucket/dir/a%20b.txt?versionId=v1").unwrap(),
            ("src-bucket".into(), "dir/a b.txt".into(), Some("v1".into()))
        );
        assert_eq!(copy_source("b/k").unwrap(), ("b".into(), "k".into(), None));
        for bad in ["", "/bucket", "bucket/", "/%ff/x"] {
            assert!(copy_source(bad).is_err(), "{bad}");
        }
    }
}
