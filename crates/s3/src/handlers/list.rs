//! Listings: buckets, objects (v1 markers and v2 continuation tokens), multipart uploads
//! and their parts.

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kindling_objects::{ListQuery, ListStart};
use kindling_protocol::time::iso8601;
use kindling_protocol::xml::Xml;

use super::checksum_element;
use crate::Ctx;
use crate::error::S3Error;
use crate::response::{NS, quoted, xml};

/// The one account's owner block.
fn owner(doc: &mut Xml) {
    doc.open("Owner")
        .leaf("ID", OWNER_ID)
        .leaf("DisplayName", "kindling")
        .close("Owner");
}

const OWNER_ID: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

/// `max-keys`/`max-parts`/`max-uploads`: default 1000, must be a non-negative integer.
fn max_param(ctx: &Ctx, name: &str) -> Result<usize, S3Error> {
    match ctx.query.get(name) {
        None => Ok(1000),
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            S3Error::InvalidArgument(format!(
                "Provided {name} not an integer or within integer range"
            ))
        }),
    }
}

/// S3's `encoding-type=url`: percent-encode everything but unreserved characters and `/`
/// (botocore `unquote_plus`-decodes, so `+` and spaces must be encoded).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn list_buckets(ctx: &Ctx) -> Result<Response, S3Error> {
    let buckets = ctx.objects().list_buckets().await?;
    let mut doc = Xml::document();
    doc.open_ns("ListAllMyBucketsResult", NS);
    owner(&mut doc);
    doc.open("Buckets");
    for b in &buckets {
        doc.open("Bucket")
            .leaf("Name", &b.name)
            .leaf("CreationDate", iso8601(b.created_ms))
            .leaf("BucketRegion", &b.region)
            .close("Bucket");
    }
    doc.close("Buckets").close("ListAllMyBucketsResult");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn list_objects(ctx: &Ctx, v2: bool) -> Result<Response, S3Error> {
    let q = &ctx.query;
    let prefix = q.get("prefix").unwrap_or_default().to_string();
    let delimiter = q
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max_keys = max_param(ctx, "max-keys")?;
    let encode = match q.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::InvalidArgument(
                "Invalid Encoding Method specified in Request".into(),
            ));
        }
    };
    let token = if v2 {
        q.get("continuation-token")
    } else {
        None
    };
    let start = match (token, v2) {
        (Some(t), _) => ListStart::At(URL_SAFE_NO_PAD.decode(t).map_err(|_| {
            S3Error::InvalidArgument("The continuation token provided is incorrect".into())
        })?),
        (None, true) => q
            .get("start-after")
            .filter(|s| !s.is_empty())
            .map_or(ListStart::First, |s| ListStart::After(s.to_string())),
        (None, false) => q
            .get("marker")
            .filter(|s| !s.is_empty())
            .map_or(ListStart::First, |s| ListStart::After(s.to_string())),
    };
    let page = ctx
        .objects()
        .list_objects(
            ctx.bucket(),
            ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                start,
                max_keys,
            },
        )
        .await?;
    let enc = |s: &str| if encode { url_encode(s) } else { s.to_string() };
    let mut doc = Xml::document();
    doc.open_ns("ListBucketResult", NS)
        .leaf("Name", ctx.bucket())
        .leaf("Prefix", enc(&prefix));
    if v2 {
        doc.opt_leaf("ContinuationToken", token)
            .opt_leaf("StartAfter", q.get("start-after").map(enc))
            .leaf("KeyCount", page.objects.len() + page.common_prefixes.len());
    } else {
        doc.leaf("Marker", enc(q.get("marker").unwrap_or_default()));
        if page.truncated {
            doc.opt_leaf("NextMarker", page.last.as_deref().map(enc));
        }
    }
    doc.leaf("MaxKeys", max_keys)
        .opt_leaf("Delimiter", delimiter.as_deref().map(enc))
        .leaf("IsTruncated", page.truncated);
    if encode {
        doc.leaf("EncodingType", "url");
    }
    if v2 && page.truncated {
        doc.opt_leaf(
            "NextContinuationToken",
            page.next.as_deref().map(|n| URL_SAFE_NO_PAD.encode(n)),
        );
    }
    let fetch_owner = !v2 || q.get("fetch-owner") == Some("true");
    for o in &page.objects {
        doc.open("Contents")
            .leaf("Key", enc(&o.key))
            .leaf("LastModified", iso8601(o.last_modified_ms))
            .leaf("ETag", quoted(&o.etag))
            .leaf("Size", o.size);
        if let Some(c) = &o.checksum {
            doc.leaf("ChecksumAlgorithm", c.algorithm.as_str());
            doc.leaf(
                "ChecksumType",
                if c.composite {
                    "COMPOSITE"
                } else {
                    "FULL_OBJECT"
                },
            );
        }
        if fetch_owner {
            owner(&mut doc);
        }
        doc.leaf(
            "StorageClass",
            o.meta.storage_class.as_deref().unwrap_or("STANDARD"),
        )
        .close("Contents");
    }
    for p in &page.common_prefixes {
        doc.open("CommonPrefixes")
            .leaf("Prefix", enc(p))
            .close("CommonPrefixes");
    }
    doc.close("ListBucketResult");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn list_uploads(ctx: &Ctx) -> Result<Response, S3Error> {
    let q = &ctx.query;
    let prefix = q.get("prefix").unwrap_or_default();
    let max = max_param(ctx, "max-uploads")?;
    let key_marker = q.get("key-marker").unwrap_or_default();
    let id_marker = q.get("upload-id-marker").unwrap_or_default();
    let after = (!key_marker.is_empty()).then(|| {
        // Without an upload id marker, every upload of the marker key is skipped.
        let id = if id_marker.is_empty() {
            "\u{10FFFF}"
        } else {
            id_marker
        };
        (key_marker.to_string(), id.to_string())
    });
    let page = ctx
        .objects()
        .list_uploads(ctx.bucket(), prefix, after, max)
        .await?;
    let mut doc = Xml::document();
    doc.open_ns("ListMultipartUploadsResult", NS)
        .leaf("Bucket", ctx.bucket())
        .leaf("KeyMarker", key_marker)
        .leaf("UploadIdMarker", id_marker)
        .leaf("Prefix", prefix);
    if let Some((k, u)) = &page.next {
        doc.leaf("NextKeyMarker", k).leaf("NextUploadIdMarker", u);
    }
    doc.leaf("MaxUploads", max)
        .leaf("IsTruncated", page.truncated);
    for u in &page.uploads {
        doc.open("Upload")
            .leaf("Key", &u.key)
            .leaf("UploadId", &u.upload_id);
        doc.open("Initiator")
            .leaf("ID", OWNER_ID)
            .leaf("DisplayName", "kindling")
            .close("Initiator");
        owner(&mut doc);
        doc.leaf("StorageClass", "STANDARD")
            .leaf("Initiated", iso8601(u.initiated_ms));
        if let Some(a) = u.checksum_algorithm {
            doc.leaf("ChecksumAlgorithm", a.as_str());
        }
        doc.close("Upload");
    }
    doc.close("ListMultipartUploadsResult");
    Ok(xml(doc, &ctx.request_id))
}

pub async fn list_parts(ctx: &Ctx) -> Result<Response, S3Error> {
    let q = &ctx.query;
    let upload_id = q.get("uploadId").unwrap_or_default();
    let max = max_param(ctx, "max-parts")?;
    let marker = match q.get("part-number-marker") {
        None | Some("") => 0,
        Some(m) => m.parse::<u32>().map_err(|_| {
            S3Error::InvalidArgument("Part number marker must be an integer.".into())
        })?,
    };
    let page = ctx
        .objects()
        .list_parts(ctx.bucket(), &ctx.key, upload_id, marker, max)
        .await?;
    let mut doc = Xml::document();
    doc.open_ns("ListPartsResult", NS)
        .leaf("Bucket", ctx.bucket())
        .leaf("Key", &ctx.key)
        .leaf("UploadId", upload_id)
        .leaf("PartNumberMarker", marker)
        .opt_leaf("NextPartNumberMarker", page.next_marker)
        .leaf("MaxParts", max)
        .leaf("IsTruncated", page.truncated);
    if let Some(a) = page.upload.checksum_algorithm {
        doc.leaf("ChecksumAlgorithm", a.as_str());
    }
    for p in &page.parts {
        doc.open("Part")
            .leaf("PartNumber", p.part_number)
            .leaf("LastModified", iso8601(p.last_modified_ms))
            .leaf("ETag", quoted(&p.etag))
            .leaf("Size", p.size);
        if let (Some(a), Some(v)) = (page.upload.checksum_algorithm, &p.checksum) {
            doc.leaf(checksum_element(a), v);
        }
        doc.close("Part");
    }
    doc.open("Initiator")
        .leaf("ID", OWNER_ID)
        .leaf("DisplayName", "kindling")
        .close("Initiator");
    owner(&mut doc);
    doc.leaf("StorageClass", "STANDARD")
        .close("ListPartsResult");
    Ok(xml(doc, &ctx.request_id))
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn url_encoding_keeps_slashes_and_encodes_plus_and_space() {
        assert_eq!(url_encode("a b+c/é~"), "a%20b%2Bc/%C3%A9~");
    }
}
