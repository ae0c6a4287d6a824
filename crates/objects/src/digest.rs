//! Digests computed while bytes stream to disk: MD5 (the ETag), SHA-256 (the signed payload
//! hash) and the flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use crc::{CRC_32_ISCSI, CRC_32_ISO_HDLC, CRC_64_NVME, Crc, Table};
use kindling_model::objects::ChecksumAlgorithm;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);
static CRC64NVME: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_NVME);

/// One running checksum.
enum Running {
    Crc32(crc::Digest<'static, u32, Table<16>>),
    Crc32c(crc::Digest<'static, u32, Table<16>>),
    Crc64(crc::Digest<'static, u64, Table<16>>),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Running {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Self::Crc32(CRC32.digest()),
            ChecksumAlgorithm::Crc32c => Self::Crc32c(CRC32C.digest()),
            ChecksumAlgorithm::Crc64Nvme => Self::Crc64(CRC64NVME.digest()),
            ChecksumAlgorithm::Sha1 => Self::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(d) | Self::Crc32c(d) => d.update(data),
            Self::Crc64(d) => d.update(data),
            Self::Sha1(d) => d.update(data),
            Self::Sha256(d) => d.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Crc32(d) | Self::Crc32c(d) => d.finalize().to_be_bytes().to_vec(),
            Self::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Self::Sha1(d) => d.finalize().to_vec(),
            Self::Sha256(d) => d.finalize().to_vec(),
        }
    }
}

/// What to compute besides MD5.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestPlan {
    /// SHA-256 of the bytes (a signed payload's hash).
    pub sha256: bool,
    pub checksums: Vec<ChecksumAlgorithm>,
}

/// Digests of a stream of bytes.
pub struct Hasher {
    md5: Md5,
    sha256: Option<Sha256>,
    checksums: Vec<(ChecksumAlgorithm, Running)>,
    size: u64,
}

/// The finished digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    /// Raw checksum bytes per algorithm.
    pub checksums: Vec<(ChecksumAlgorithm, Vec<u8>)>,
}

impl Digests {
    /// The ETag of a single-part object: the MD5 in lowercase hex.
    pub fn etag(&self) -> String {
        hex(&self.md5)
    }

    /// The base64 checksum of `algorithm`, if it was computed.
    pub fn checksum_b64(&self, algorithm: ChecksumAlgorithm) -> Option<String> {
        self.checksums
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, v)| B64.encode(v))
    }
}

impl Hasher {
    pub fn new(plan: &DigestPlan) -> Self {
        let mut checksums: Vec<(ChecksumAlgorithm, Running)> = Vec::new();
        for &a in &plan.checksums {
            if !checksums.iter().any(|(x, _)| *x == a) {
                checksums.push((a, Running::new(a)));
            }
        }
        Self {
            md5: Md5::new(),
            sha256: plan.sha256.then(Sha256::new),
            checksums,
            size: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(s) = &mut self.sha256 {
            s.update(data);
        }
        for (_, c) in &mut self.checksums {
            c.update(data);
        }
        self.size += data.len() as u64;
    }

    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            md5: self.md5.finalize().into(),
            sha256: self.sha256.map(|s| s.finalize().into()),
            checksums: self
                .checksums
                .into_iter()
                .map(|(a, c)| (a, c.finish()))
                .collect(),
        }
    }
}

/// The checksum of `data` in `algorithm` (raw bytes).
pub fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
    let mut r = Running::new(algorithm);
    r.update(data);
    r.finish()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Decodes hex (either case); `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The MD5 of `data` in hex.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// The raw MD5 of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_for_every_algorithm() {
        let plan = DigestPlan {
            sha256: true,
            checksums: ChecksumAlgorithm::ALL.to_vec(),
        };
        let mut h = Hasher::new(&plan);
        h.update(b"Hello ");
        h.update(b"world");
        let d = h.finish();
        assert_eq!(d.size, 11);
        assert_eq!(d.etag(), "3e25960a79dbc69b674cd4ec67a72c62");
        assert_eq!(
            hex(&d.sha256.unwrap()),
            "64ec88ca00b268e5ba1a35678a1b5316d212f4f366b2477232534a8aeca37f3c"
        );
        // Values as botocore computes them (base64 of the big-endian digest).
        assert_eq!(
            d.checksum_b64(ChecksumAlgorithm::Crc32).unwrap(),
            "i9aeUg=="
        );
        assert_eq!(
            d.checksum_b64(ChecksumAlgorithm::Crc32c).unwrap(),
            "crUfeA=="
        );
        assert_eq!(
            d.checksum_b64(ChecksumAlgorithm::Sha1).unwrap(),
            "e1AsOh9IyGCa4hLN+2Od7jlnP14="
        );
        assert_eq!(
            d.checksum_b64(ChecksumAlgorithm::Sha256).unwrap(),
            "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="
        );
        assert_eq!(
            d.checksum_b64(ChecksumAlgorithm::Crc64Nvme).unwrap(),
            "OOJZ0D8xKts="
        );
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
