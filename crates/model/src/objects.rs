//! Records of the S3-compatible object store: buckets with their configuration, objects,
//! multipart uploads and their parts. The bytes live in files named by blob ids; these
//! records are the metadata the store keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A bucket's versioning state (`PutBucketVersioning`). A bucket never versioned has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Suspended => "Suspended",
        }
    }
}

/// One default-encryption rule (`ServerSideEncryptionConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionRule {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub sse_algorithm: String,
    pub kms_master_key_id: Option<String>,
    pub bucket_key_enabled: Option<bool>,
}

/// `PublicAccessBlockConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// A bucket and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    /// The region it was created in (`us-east-1` when no `LocationConstraint` was given).
    pub region: String,
    pub created_ms: i64,
    #[serde(default)]
    pub versioning: Option<Versioning>,
    /// The bucket policy document, as the client sent it.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Default encryption rules; `None` when never configured.
    #[serde(default)]
    pub encryption: Option<Vec<EncryptionRule>>,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
}

/// One part of a bucket's configuration, replaced on its own (each is one `Put…` operation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketConfig {
    Versioning(Versioning),
    Policy(Option<String>),
    Tags(BTreeMap<String, String>),
    Encryption(Option<Vec<EncryptionRule>>),
    PublicAccessBlock(Option<PublicAccessBlock>),
}

/// Checksum algorithms S3 computes and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The wire name (`CRC32`, `CRC64NVME`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Reads a wire name, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// The header that carries it: `x-amz-checksum-crc32`...
    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// An object's checksum as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Base64; for a composite checksum, the checksum of the parts' checksums and `-N`.
    pub value: String,
    /// `FULL_OBJECT` (false) or `COMPOSITE` (true, multipart objects).
    pub composite: bool,
}

/// What a client says about an object besides its bytes: the standard headers S3 stores and
/// returns, user metadata (`x-amz-meta-*`, names lowercased), tags and the server-side
/// encryption it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub server_side_encryption: Option<String>,
    pub sse_kms_key_id: Option<String>,
    pub storage_class: Option<String>,
    pub website_redirect_location: Option<String>,
}

/// A stored object (the current version of a key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    /// The file holding the bytes.
    pub blob: String,
    pub size: u64,
    /// Without quotes: the MD5 in hex, or for a multipart object the MD5 of the parts' MD5s
    /// and `-N`.
    pub etag: String,
    pub last_modified_ms: i64,
    /// Set when the bucket had versioning enabled when the object was written.
    pub version_id: Option<String>,
    pub meta: ObjectMeta,
    pub checksum: Option<ObjectChecksum>,
    /// For a multipart object, the number of parts.
    pub parts: Option<u32>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub meta: ObjectMeta,
    /// `x-amz-checksum-algorithm` of CreateMultipartUpload: each part carries one.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub upload_id: String,
    pub part_number: u32,
    pub blob: String,
    pub size: u64,
    /// MD5 hex, without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    /// Base64 of the part's checksum in the upload's algorithm.
    pub checksum: Option<String>,
}
