//! One handler per operation, grouped by resource; [`handle`] is the table.

mod buckets;
mod list;
mod multipart;
mod objects;
mod upload;

use axum::body::Body;
use axum::response::Response;
use kindling_model::objects::ChecksumAlgorithm;
use kindling_objects::digest::{checksum, md5};
use sha2::{Digest, Sha256};

use crate::auth::Signing;
use crate::error::S3Error;
use crate::operation::Operation;
use crate::request::{ContentSha256, checksum_headers, content_md5};
use crate::xml_in::MAX_XML_BODY;
use crate::{Ctx, body};

/// Runs the operation of `ctx`.
pub(crate) async fn handle(ctx: Ctx, body: Body, signing: Signing) -> Result<Response, S3Error> {
    use Operation as Op;
    match ctx.op {
        Op::ListBuckets => list::list_buckets(&ctx).await,
        Op::CreateBucket => buckets::create(&ctx, body).await,
        Op::HeadBucket => buckets::head(&ctx).await,
        Op::DeleteBucket => buckets::delete(&ctx).await,
        Op::GetBucketLocation => buckets::location(&ctx).await,
        Op::GetBucketVersioning => buckets::get_versioning(&ctx).await,
        Op::PutBucketVersioning => buckets::put_versioning(&ctx, body).await,
        Op::GetBucketPolicy => buckets::get_policy(&ctx).await,
        Op::PutBucketPolicy => buckets::put_policy(&ctx, body).await,
        Op::DeleteBucketPolicy => buckets::delete_policy(&ctx).await,
        Op::GetBucketTagging => buckets::get_tagging(&ctx).await,
        Op::PutBucketTagging => buckets::put_tagging(&ctx, body).await,
        Op::DeleteBucketTagging => buckets::delete_tagging(&ctx).await,
        Op::GetBucketEncryption => buckets::get_encryption(&ctx).await,
        Op::PutBucketEncryption => buckets::put_encryption(&ctx, body).await,
        Op::DeleteBucketEncryption => buckets::delete_encryption(&ctx).await,
        Op::GetPublicAccessBlock => buckets::get_public_access_block(&ctx).await,
        Op::PutPublicAccessBlock => buckets::put_public_access_block(&ctx, body).await,
        Op::DeletePublicAccessBlock => buckets::delete_public_access_block(&ctx).await,
        Op::ListObjects => list::list_objects(&ctx, false).await,
        Op::ListObjectsV2 => list::list_objects(&ctx, true).await,
        Op::ListMultipartUploads => list::list_uploads(&ctx).await,
        Op::ListParts => list::list_parts(&ctx).await,
        Op::DeleteObjects => objects::delete_many(&ctx, body).await,
        Op::PutObject => objects::put(&ctx, body, signing).await,
        Op::CopyObject => objects::copy(&ctx).await,
        Op::GetObject => objects::get(&ctx, false).await,
        Op::HeadObject => objects::get(&ctx, true).await,
        Op::DeleteObject => objects::delete(&ctx).await,
        Op::GetObjectTagging => objects::get_tagging(&ctx).await,
        Op::PutObjectTagging => objects::put_tagging(&ctx, body).await,
        Op::DeleteObjectTagging => objects::delete_tagging(&ctx).await,
        Op::CreateMultipartUpload => multipart::create(&ctx).await,
        Op::UploadPart => multipart::upload_part(&ctx, body, signing).await,
        Op::CompleteMultipartUpload => multipart::complete(&ctx, body).await,
        Op::AbortMultipartUpload => multipart::abort(&ctx).await,
    }
}

/// Reads a small request body (an XML document or a policy) and checks the digests the
/// client sent for it (`x-amz-content-sha256`, which the signature covers, `Content-MD5`,
/// `x-amz-checksum-*`); `required` when S3 insists on one. aws-chunked bodies are refused:
/// their chunk signatures are checked only by the upload pipeline.
pub(crate) async fn small_body(
    ctx: &Ctx,
    body: Body,
    limit: usize,
    digest_required: bool,
) -> Result<bytes::Bytes, S3Error> {
    let sha256_sent = match ContentSha256::read(&ctx.headers)? {
        ContentSha256::Hash(h) => Some(h),
        sha if sha.is_streaming() => {
            return Err(S3Error::InvalidRequest(
                "aws-chunked bodies are accepted only by PutObject and UploadPart.".into(),
            ));
        }
        _ => None,
    };
    let md5_sent = content_md5(&ctx.headers)?;
    let sums = checksum_headers(&ctx.headers)?;
    if digest_required && md5_sent.is_none() && sums.is_empty() {
        return Err(S3Error::InvalidRequest(
            "Missing required header for this request: Content-MD5".into(),
        ));
    }
    let data = body::read_small(body, limit.min(MAX_XML_BODY), ctx.idle()).await?;
    if let Some(sent) = sha256_sent
        && sent != <[u8; 32]>::from(Sha256::digest(&data))
    {
        return Err(kindling_objects::ObjectError::ContentSha256Mismatch.into());
    }
    if let Some(sent) = md5_sent
        && sent != md5(&data)
    {
        return Err(kindling_objects::ObjectError::BadDigest.into());
    }
    for (algorithm, sent) in sums {
        if sent != checksum(algorithm, &data) {
            return Err(kindling_objects::ObjectError::ChecksumMismatch { algorithm }.into());
        }
    }
    Ok(data)
}

/// The XML element name of a checksum (`ChecksumCRC32`).
pub(crate) fn checksum_element(a: ChecksumAlgorithm) -> &'static str {
    match a {
        ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
        ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
        ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
        ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
        ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
    }
}
