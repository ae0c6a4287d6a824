//! The XML documents S3 requests carry, read into typed values (`MalformedXML` otherwise).

use std::collections::BTreeMap;

use kindling_model::objects::{EncryptionRule, PublicAccessBlock, Versioning};
use kindling_objects::CompletePart;
use kindling_protocol::xml_read::{Element, ReadLimits, parse};

use crate::error::S3Error;

/// Largest XML request body read (DeleteObjects with 1000 long keys is about 1.1 MB;
/// CompleteMultipartUpload with 10 000 parts about 1.5 MB).
pub const MAX_XML_BODY: usize = 2 * 1024 * 1024;

fn doc(body: &[u8], root: &str) -> Result<Element, S3Error> {
    let limits = ReadLimits {
        max_depth: 8,
        max_elements: 60_000,
    };
    let el = parse(body, limits).map_err(|_| S3Error::MalformedXml)?;
    if el.name != root {
        return Err(S3Error::MalformedXml);
    }
    Ok(el)
}

fn bool_text(text: &str) -> Result<bool, S3Error> {
    match text.trim() {
        "true" | "TRUE" | "True" => Ok(true),
        "false" | "FALSE" | "False" => Ok(false),
        _ => Err(S3Error::MalformedXml),
    }
}

/// `CreateBucketConfiguration`'s `LocationConstraint` (an empty body has none).
pub fn location_constraint(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let el = doc(body, "CreateBucketConfiguration")?;
    Ok(el
        .child_text("LocationConstraint")
        .filter(|c| !c.is_empty())
        .map(str::to_string))
}

/// `VersioningConfiguration`'s `Status`.
pub fn versioning(body: &[u8]) -> Result<Versioning, S3Error> {
    let el = doc(body, "VersioningConfiguration")?;
    match el.child_text("Status") {
        Some("Enabled") => Ok(Versioning::Enabled),
        Some("Suspended") => Ok(Versioning::Suspended),
        _ => Err(S3Error::MalformedXml),
    }
}

/// `Tagging` → tags (duplicates and limits checked).
pub fn tagging(body: &[u8], max: usize) -> Result<BTreeMap<String, String>, S3Error> {
    let el = doc(body, "Tagging")?;
    let set = el.child("TagSet").ok_or(S3Error::MalformedXml)?;
    let mut tags = BTreeMap::new();
    for tag in set.children_named("Tag") {
        let key = tag.child("Key").ok_or(S3Error::MalformedXml)?.text.clone();
        let value = tag
            .child("Value")
            .map(|v| v.text.clone())
            .unwrap_or_default();
        if tags.insert(key, value).is_some() {
            return Err(S3Error::InvalidArgument(
                "Cannot provide multiple Tags with the same key".into(),
            ));
        }
    }
    crate::request::check_tags(&tags, max)?;
    Ok(tags)
}

/// `ServerSideEncryptionConfiguration` → its rules.
pub fn encryption(body: &[u8]) -> Result<Vec<EncryptionRule>, S3Error> {
    let el = doc(body, "ServerSideEncryptionConfiguration")?;
    let mut rules = Vec::new();
    for rule in el.children_named("Rule") {
        let default = rule
            .child("ApplyServerSideEncryptionByDefault")
            .ok_or(S3Error::MalformedXml)?;
        let algorithm = default
            .child_text("SSEAlgorithm")
            .ok_or(S3Error::MalformedXml)?;
        if !matches!(algorithm, "AES256" | "aws:kms" | "aws:kms:dsse") {
            return Err(S3Error::MalformedXml);
        }
        rules.push(EncryptionRule {
            sse_algorithm: algorithm.to_string(),
            kms_master_key_id: default
                .child_text("KMSMasterKeyID")
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            bucket_key_enabled: rule
                .child_text("BucketKeyEnabled")
                .map(bool_text)
                .transpose()?,
        });
    }
    if rules.is_empty() {
        return Err(S3Error::MalformedXml);
    }
    Ok(rules)
}

/// `PublicAccessBlockConfiguration` (absent flags are false).
pub fn public_access_block(body: &[u8]) -> Result<PublicAccessBlock, S3Error> {
    let el = doc(body, "PublicAccessBlockConfiguration")?;
    let flag = |name: &str| {
        el.child_text(name)
            .map(bool_text)
            .transpose()
            .map(|b| b.unwrap_or(false))
    };
    Ok(PublicAccessBlock {
        block_public_acls: flag("BlockPublicAcls")?,
        ignore_public_acls: flag("IgnorePublicAcls")?,
        block_public_policy: flag("BlockPublicPolicy")?,
        restrict_public_buckets: flag("RestrictPublicBuckets")?,
    })
}

/// `Delete`: the keys (at most 1000) and `Quiet`.
pub fn delete(body: &[u8]) -> Result<(Vec<String>, bool), S3Error> {
    let el = doc(body, "Delete")?;
    let keys: Vec<String> = el
        .children_named("Object")
        .map(|o| {
            o.child("Key")
                .map(|k| k.text.clone())
                .ok_or(S3Error::MalformedXml)
        })
        .collect::<Result<_, _>>()?;
    if keys.is_empty() || keys.len() > 1000 {
        return Err(S3Error::MalformedXml);
    }
    let quiet = el
        .child_text("Quiet")
        .map(bool_text)
        .transpose()?
        .unwrap_or(false);
    Ok((keys, quiet))
}

/// `CompleteMultipartUpload`: the parts, as listed.
pub fn complete(body: &[u8]) -> Result<Vec<CompletePart>, S3Error> {
    let el = doc(body, "CompleteMultipartUpload")?;
    el.children_named("Part")
        .map(|p| {
            let part_number = p
                .child_text("PartNumber")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or(S3Error::MalformedXml)?;
            let etag = p
                .child_text("ETag")
                .ok_or(S3Error::MalformedXml)?
                .to_string();
            let checksum = [
                "ChecksumCRC32",
                "ChecksumCRC32C",
                "ChecksumCRC64NVME",
                "ChecksumSHA1",
                "ChecksumSHA256",
            ]
            .iter()
            .find_map(|n| p.child_text(n))
            .map(str::to_string);
            Ok(CompletePart {
                part_number,
                etag,
                checksum,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_document() {
        let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
        assert_eq!(location_constraint(b"").unwrap(), None);
        assert_eq!(
            location_constraint(
                format!("<CreateBucketConfiguration {ns}><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>").as_bytes()
            )
            .unwrap()
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            versioning(
                b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
            )
            .unwrap(),
            Versioning::Enabled
        );
        let tags = tagging(
            b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>",
            50,
        )
        .unwrap();
        assert_eq!(tags.len(), 2);
        let rules = encryption(b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>").unwrap();
        assert_eq!(rules[0].sse_algorithm, "aws:kms");
        assert_eq!(rules[0].bucket_key_enabled, Some(true));
        let pab = public_access_block(b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>").unwrap();
        assert!(pab.block_public_acls && pab.restrict_public_buckets && !pab.ignore_public_acls);
        let (keys, quiet) = delete(b"<Delete><Object><Key>a</Key></Object><Object><Key>b/c</Key></Object><Quiet>true</Quiet></Delete>").unwrap();
        assert_eq!(keys, ["a", "b/c"]);
        assert!(quiet);
        let parts = complete(b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>").unwrap();
        assert_eq!(parts[0].part_number, 1);
        assert_eq!(parts[0].checksum.as_deref(), Some("AAAAAA=="));
    }

    #[test]
    fn malformed_documents_are_malformed_xml() {
        for bad in [
            &b"<Wrong/>"[..],
            b"<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>",
            b"<Delete></Delete>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>",
            b"<Tagging/>",
            b"not xml",
        ] {
            let r = match bad {
                b if b.starts_with(b"<Versioning") => versioning(b).map(|_| ()),
                b if b.starts_with(b"<Delete") => delete(b).map(|_| ()),
                b if b.starts_with(b"<Complete") => complete(b).map(|_| ()),
                b if b.starts_with(b"<Tagging") => tagging(b, 10).map(|_| ()),
                b => versioning(b).map(|_| ()),
            };
            assert!(matches!(r, Err(S3Error::MalformedXml)), "{}", String::from_utf8_lossy(bad));
        }
    }
}
