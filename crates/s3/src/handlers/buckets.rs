//! Bucket operations: create, head, delete, location, and the stored configuration
//! (versioning, policy, tags, default encryption, public access block).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use kindling_model::objects::{BucketConfig, BucketRecord};
use kindling_objects::ObjectError;
use kindling_protocol::xml::Xml;

use super::small_body;
use crate::error::S3Error;
use crate::response::{NS, empty, set, xml};
use crate::{Ctx, xml_in};

/// Largest bucket policy (S3: 20 KB).
const MAX_POLICY: usize = 20 * 1024;
/// Most tags on a bucket.
const MAX_BUCKET_TAGS: usize = 50;

async fn record(ctx: &Ctx) -> Result<BucketRecord, S3Error> {
    Ok(ctx.objects().bucket(ctx.bucket()).await?)
}

async fn configure(
    ctx: &Ctx,
    config: BucketConfig,
    status: StatusCode,
) -> Result<Response, S3Error> {
    ctx.objects()
        .set_bucket_config(ctx.bucket(), config)
        .await?;
    Ok(empty(status, &ctx.request_id))
}

pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let location = xml_in::location_constraint(&data)?;
    let created = ctx
        .objects()
        .create_bucket(ctx.bucket(), location.as_deref())
        .await?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    set(
        res.headers_mut(),
        "location",
        &format!("/{}", created.record.name),
    );
    Ok(res)
}

pub async fn head(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    set(res.headers_mut(), "x-amz-bucket-region", &b.region);
    set(res.headers_mut(), "x-amz-access-point-alias", "false");
    Ok(res)
}

pub async fn delete(ctx: &Ctx) -> Result<Response, S3Error> {
    ctx.objects().delete_bucket(ctx.bucket()).await?;
    Ok(empty(StatusCode::NO_CONTENT, &ctx.request_id))
}

pub async fn location(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    let mut doc = Xml::document();
    // us-east-1 is the empty constraint (botocore reads it as None).
    let region = if b.region == "us-east-1" {
        ""
    } else {
        &b.region
    };
    doc.open_ns("LocationConstraint", NS)
        .text(region)
        .close("LocationConstraint");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn get_versioning(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    let mut doc = Xml::document();
    doc.open_ns("VersioningConfiguration", NS);
    doc.opt_leaf("Status", b.versioning.map(|v| v.as_str()));
    doc.close("VersioningConfiguration");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn put_versioning(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let status = xml_in::versioning(&data)?;
    configure(ctx, BucketConfig::Versioning(status), StatusCode::OK).await
}

pub async fn get_policy(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    let policy = b
        .policy
        .ok_or(ObjectError::NoSuchBucketPolicy { bucket: b.name })?;
    let mut res = empty(StatusCode::OK, &ctx.request_id);
    set(res.headers_mut(), "content-type", "application/json");
    *res.body_mut() = Body::from(policy);
    Ok(res)
}

pub async fn put_policy(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, MAX_POLICY, false).await?;
    let text = std::str::from_utf8(&data).map_err(|_| malformed_policy())?;
    if !text.trim_start().starts_with('{') || !text.trim_end().ends_with('}') {
        return Err(malformed_policy());
    }
    configure(
        ctx,
        BucketConfig::Policy(Some(text.to_string())),
        StatusCode::NO_CONTENT,
    )
    .await
}

fn malformed_policy() -> S3Error {
    S3Error::InvalidArgument("Policies must be valid JSON and the first byte must be '{'".into())
}

pub async fn delete_policy(ctx: &Ctx) -> Result<Response, S3Error> {
    configure(ctx, BucketConfig::Policy(None), StatusCode::NO_CONTENT).await
}

pub async fn get_tagging(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    if b.tags.is_empty() {
        return Err(ObjectError::NoSuchTagSet { bucket: b.name }.into());
    }
    Ok(xml(tag_set(&b.tags), &ctx.request_id))
}

/// `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`.
pub fn tag_set(tags: &std::collections::BTreeMap<String, String>) -> Xml {
    let mut doc = Xml::document();
    doc.open_ns("Tagging", NS).open("TagSet");
    for (k, v) in tags {
        doc.open("Tag").leaf("Key", k).leaf("Value", v).close("Tag");
    }
    doc.close("TagSet").close("Tagging");
    doc
}

pub async fn put_tagging(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let tags = xml_in::tagging(&data, MAX_BUCKET_TAGS)?;
    configure(ctx, BucketConfig::Tags(tags), StatusCode::NO_CONTENT).await
}

pub async fn delete_tagging(ctx: &Ctx) -> Result<Response, S3Error> {
    configure(
        ctx,
        BucketConfig::Tags(Default::default()),
        StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn get_encryption(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    // S3 encrypts every bucket by default (SSE-S3) since 2023.
    let rules = b.encryption.unwrap_or_else(|| {
        vec![kindling_model::objects::EncryptionRule {
            sse_algorithm: "AES256".into(),
            kms_master_key_id: None,
            bucket_key_enabled: Some(false),
        }]
    });
    let mut doc = Xml::document();
    doc.open_ns("ServerSideEncryptionConfiguration", NS);
    for r in &rules {
        doc.open("Rule")
            .open("ApplyServerSideEncryptionByDefault")
            .leaf("SSEAlgorithm", &r.sse_algorithm)
            .opt_leaf("KMSMasterKeyID", r.kms_master_key_id.as_deref())
            .close("ApplyServerSideEncryptionByDefault")
            .opt_leaf("BucketKeyEnabled", r.bucket_key_enabled)
            .close("Rule");
    }
    doc.close("ServerSideEncryptionConfiguration");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn put_encryption(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let rules = xml_in::encryption(&data)?;
    configure(ctx, BucketConfig::Encryption(Some(rules)), StatusCode::OK).await
}

pub async fn delete_encryption(ctx: &Ctx) -> Result<Response, S3Error> {
    configure(ctx, BucketConfig::Encryption(None), StatusCode::NO_CONTENT).await
}

pub async fn get_public_access_block(ctx: &Ctx) -> Result<Response, S3Error> {
    let b = record(ctx).await?;
    let p = b
        .public_access_block
        .ok_or(ObjectError::NoPublicAccessBlock { bucket: b.name })?;
    let mut doc = Xml::document();
    doc.open_ns("PublicAccessBlockConfiguration", NS)
        .leaf("BlockPublicAcls", p.block_public_acls)
        .leaf("IgnorePublicAcls", p.ignore_public_acls)
        .leaf("BlockPublicPolicy", p.block_public_policy)
        .leaf("RestrictPublicBuckets", p.restrict_public_buckets)
        .close("PublicAccessBlockConfiguration");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn put_public_access_block(ctx: &Ctx, body: Body) -> Result<Response, S3Error> {
    let data = small_body(ctx, body, 64 * 1024, false).await?;
    let p = xml_in::public_access_block(&data)?;
    configure(
        ctx,
        BucketConfig::PublicAccessBlock(Some(p)),
        StatusCode::OK,
    )
    .await
}

pub async fn delete_public_access_block(ctx: &Ctx) -> Result<Response, S3Error> {
    configure(
        ctx,
        BucketConfig::PublicAccessBlock(None),
        StatusCode::NO_CONTENT,
    )
    .await
}
