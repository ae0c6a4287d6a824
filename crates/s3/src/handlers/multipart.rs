//! Multipart uploads: create, upload a part, complete, abort.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use kindling_protocol::xml::Xml;

use super::{checksum_element, small_body, upload};
use crate::auth::Signing;
use crate::error::S3Error;
use crate::request::{header, object_meta};
use crate::response::{NS, empty, quoted, set, xml};
use crate::{Ctx, xml_in};

fn upload_id(ctx: &Ctx) -> Result<&str, S3Error> {
    ctx.query
        .get("uploadId")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| S3Error::InvalidArgument("This operation needs an uploadId.".into()))
}

pub async fn create(ctx: &Ctx) -> Result<Response, S3Error> {
    let meta = object_meta(&ctx.headers)?;
    let algorithm = match header(&ctx.headers, "x-amz-checksum-algorithm") {
        Some(name) => Some(
            kindling_model::objects::ChecksumAlgorithm::parse(name).ok_or_else(|| {
                S3Error::InvalidRequest(format!("Checksum algorithm {name} is not supported."))
            })?,
        ),
        None => None,
    };
    let upload = ctx
        .objects()
        .create_upload(ctx.bucket(), &ctx.key, meta, algorithm)
        .await?;
    let mut doc = Xml::document();
    doc.open_ns("InitiateMultipartUploadResult", NS)
        .leaf("Bucket", &upload.bucket)
        .leaf("Key", &upload.key)
        .leaf("UploadId", &upload.upload_id)
        .close("InitiateMultipartUploadResult");
    let mut res = xml(doc, &ctx.request_id);
    if let Some(a) = algorithm {
        set(res.headers_mut(), "x-amz-checksum-algorithm", a.as_str());
        set(res.headers_mut(), "x-amz-checksum-type", "FULL_OBJECT");
    }
    if let Some(sse) = &upload.meta.server_side_encryption {
        set(res.headers_mut(), "x-amz-server-side-encryption", sse);
    }
    Ok(res)
}

pub async fn upload_part(ctx: &Ctx, body: Body, mut signing: Signing) -> Result<Response, S3Error> {
    let upload_id = upload_id(ctx)?;
    let part_number = ctx
        .query
        .get("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| {
            S3Error::InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive".into(),
            )
        })?;
    let incoming = upload::prepare(ctx, &mut signing)?;
    let writer = ctx
        .objects()
        .begin_part(
            ctx.bucket(),
            &ctx.key,
            upload_id,
            part_number,
            incoming.plan.clone(),
            incoming.declared,
        )
        .await?;
    let algorithm = incoming.algorithm;
    let staged = upload::receive(ctx, body, incoming, writer).await?;
    let digests = staged.digests().clone();
    let part = ctx
        .objects()
        .commit_part(staged, ctx.bucket(), &ctx.key, upload_id, part_number)
        .await?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    set(res.headers_mut(), "etag", &quoted(&part.etag));
    if let Some(a) = algorithm
        && let Some(v) = digests.checksum_b64(a)
    {
        set(res.headers_mut(), a.header(), &v);
    }
    Ok(res)
}

pub async fn complete(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let upload_id = upload_id(ctx)?;
    let data = small_body(ctx, body, xml_in::MAX_XML_BODY, false).await?;
    let parts = xml_in::complete(&data)?;
    let rec = ctx
        .objects()
        .complete_upload(ctx.bucket(), &ctx.key, upload_id, parts)
        .await?;
    let host = header(&ctx.headers, "host").unwrap_or("localhost");
    let mut doc = Xml::document();
    doc.open_ns("CompleteMultipartUploadResult", NS)
        .leaf(
            "Location",
            format!("http://{host}/{}/{}", rec.bucket, rec.key),
        )
        .leaf("Bucket", &rec.bucket)
        .leaf("Key", &rec.key)
        .leaf("ETag", quoted(&rec.etag));
    if let Some(c) = &rec.checksum {
        doc.leaf(checksum_element(c.algorithm), &c.value)
            .leaf("ChecksumType", "FULL_OBJECT");
    }
    doc.close("CompleteMultipartUploadResult");
    let mut res = xml(doc, &ctx.request_id);
    if let Some(v) = &rec.version_id {
        set(res.headers_mut(), "x-amz-version-id", v);
    }
    Ok(res)
}

pub async fn abort(ctx: &Ctx) -> Result<Response, S3Error> {
    let upload_id = upload_id(ctx)?;
    ctx.objects()
        .abort_upload(ctx.bucket(), &ctx.key, upload_id)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT, &ctx.request_id))
}
