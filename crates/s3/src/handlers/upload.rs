//! The upload pipeline PutObject and UploadPart share: read what the headers promise
//! (length, encoding, digests, checksums), stream the body through its decoder into the
//! writer, then check every promise before anything becomes visible.

use axum::body::Body;
use kindling_model::objects::ChecksumAlgorithm;
use kindling_objects::{BlobWriter, DigestPlan, Expectations, Staged};

use crate::Ctx;
use crate::auth::Signing;
use crate::body::{PayloadDecoder, pump};
use crate::chunked::{self, Decoder};
use crate::error::S3Error;
use crate::request::{
    ContentSha256, checksum_headers, content_md5, decode_checksum, requested_algorithm,
    trailer_algorithms, u64_header,
};

/// What the request's headers say about its payload.
pub struct Incoming {
    pub plan: DigestPlan,
    /// The payload's length, when declared.
    pub declared: Option<u64>,
    decoder: Option<PayloadDecoder>,
    expect: Expectations,
    trailers: Vec<ChecksumAlgorithm>,
    /// The checksum to store and echo.
    pub algorithm: Option<ChecksumAlgorithm>,
}

/// Reads the payload's framing and promises from the headers (before any body byte).
pub fn prepare(ctx: &Ctx, signing: &mut Signing) -> Result<Incoming, S3Error> {
    let sha = ContentSha256::read(&ctx.headers)?;
    let chunked = sha.is_streaming()
        || crate::request::header(&ctx.headers, "content-encoding").is_some_and(|ce| {
            ce.split(',')
                .any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))
        });
    let content_length = u64_header(&ctx.headers, "content-length")?;
    let (declared, decoder) = if chunked {
        let declared = u64_header(&ctx.headers, "x-amz-decoded-content-length")?
            .ok_or(S3Error::MissingContentLength)?;
        let signing_mode = match (&sha, signing.take_chunks()) {
            (ContentSha256::StreamingSigned, Some(checker)) => chunked::Signing::Verified(checker),
            (ContentSha256::StreamingSigned, None) if signing.verified() => {
                return Err(S3Error::NotImplemented(
                    "Verifying chunk signatures of STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies"
                        .into(),
                ));
            }
            (ContentSha256::StreamingSigned, None) => chunked::Signing::Unverified,
            _ => chunked::Signing::Unsigned,
        };
        (
            Some(declared),
            PayloadDecoder::Chunked(Box::new(Decoder::new(declared, signing_mode))),
        )
    } else {
        (content_length, PayloadDecoder::Plain)
    };
    let sent = checksum_headers(&ctx.headers)?;
    let trailers = trailer_algorithms(&ctx.headers)?;
    let requested = requested_algorithm(&ctx.headers)?;
    let algorithm = sent
        .first()
        .map(|(a, _)| *a)
        .or_else(|| trailers.first().copied())
        .or(requested);
    let mut checksums: Vec<ChecksumAlgorithm> = sent.iter().map(|(a, _)| *a).collect();
    checksums.extend(&trailers);
    checksums.extend(algorithm);
    let sha256 = match &sha {
        ContentSha256::Hash(h) if !chunked => Some(*h),
        _ => None,
    };
    Ok(Incoming {
        plan: DigestPlan {
            sha256: sha256.is_some(),
            checksums,
        },
        declared,
        decoder: Some(decoder),
        expect: Expectations {
            size: declared,
            content_md5: content_md5(&ctx.headers)?,
            sha256,
            checksums: sent,
        },
        trailers,
        algorithm,
    })
}

/// Streams the body into `writer` and checks it: the staged bytes, ready to commit.
pub async fn receive(
    ctx: &Ctx,
    body: Body,
    mut incoming: Incoming,
    mut writer: BlobWriter,
) -> Result<Staged, S3Error> {
    let decoder = incoming.decoder.take().unwrap_or(PayloadDecoder::Plain);
    let trailers = pump(body, decoder, &mut writer, ctx.idle()).await?;
    let staged = writer.finish().await?;
    for (name, value) in trailers {
        if let Some(a) = incoming.trailers.iter().find(|a| a.header() == name) {
            let value = decode_checksum(*a, &value)?;
            incoming.expect.checksums.push((*a, value));
        }
    }
    if let Some(missing) = incoming
        .trailers
        .iter()
        .find(|a| !incoming.expect.checksums.iter().any(|(x, _)| x == *a))
    {
        return Err(S3Error::InvalidRequest(format!(
            "The request declared the trailer {} but did not send it.",
            missing.header()
        )));
    }
    staged.verify(&incoming.expect)?;
    Ok(staged)
}
