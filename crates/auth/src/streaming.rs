//! Signed `aws-chunked` uploads (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`): each chunk
//! carries a signature chained to the previous one, the first to the request's own signature,
//! and a signed trailer ends the chain.
//!
//! Chunk string to sign: `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n
//! <sha256 of "">\n<sha256 of the chunk data>`; trailer: `AWS4-HMAC-SHA256-TRAILER\n<date>\n
//! <scope>\n<previous signature>\n<sha256 of the trailer lines>` (each line `name:value\n`).

use std::fmt;

use crate::crypto::{constant_time_eq, hex, hmac_sha256, sha256_hex};

/// SHA-256 of the empty string, hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The chain of chunk signatures of one signed upload.
pub struct ChunkChain {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    previous: String,
}

impl fmt::Debug for ChunkChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkChain")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ChunkChain {
    pub(crate) fn new(key: [u8; 32], amz_date: String, scope: String, seed: String) -> Self {
        Self {
            key,
            amz_date,
            scope,
            previous: seed.to_ascii_lowercase(),
        }
    }

    fn check(&mut self, string_to_sign: &str, signature: &str) -> bool {
        let expected = hex(&hmac_sha256(&self.key, string_to_sign.as_bytes()));
        let ok = constant_time_eq(
            expected.as_bytes(),
            signature.to_ascii_lowercase().as_bytes(),
        );
        if ok {
            self.previous = expected;
        }
        ok
    }

    /// Checks the next chunk's signature (its data hashes to `chunk_sha256`).
    pub fn verify_chunk(&mut self, chunk_sha256: &[u8; 32], signature: &str) -> bool {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex(chunk_sha256)
        );
        self.check(&sts, signature)
    }

    /// Checks the trailer's signature over its lines (`name:value\n` each).
    pub fn verify_trailer(&mut self, trailer_lines: &[u8], signature: &str) -> bool {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(trailer_lines)
        );
        self.check(&sts, signature)
    }

    /// The signature a signer would put on a chunk (for tests and clients).
    pub fn sign_chunk(&mut self, chunk: &[u8]) -> String {
        let digest: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(chunk).into()
        };
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex(&digest)
        );
        let sig = hex(&hmac_sha256(&self.key, sts.as_bytes()));
        self.previous.clone_from(&sig);
        sig
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::crypto::signing_key;

    /// The example of AWS's "Signature Calculations for the Authorization Header: Transferring
    /// Payload in Multiple Chunks" (66 560 bytes of `a` in 64 KiB chunks).
    #[test]
    fn chains_the_documented_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        );
        let new = || {
            ChunkChain::new(
                key,
                "20130524T000000Z".into(),
                "20130524/us-east-1/s3/aws4_request".into(),
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
            )
        };
        let chunks: [&[u8]; 3] = [&[b'a'; 65_536], &[b'a'; 1024], b""];
        let expected = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut signer = new();
        for (chunk, want) in chunks.iter().zip(expected) {
            assert_eq!(signer.sign_chunk(chunk), want);
        }
        let mut verifier = new();
        for (chunk, want) in chunks.iter().zip(expected) {
            let digest: [u8; 32] = Sha256::digest(chunk).into();
            assert!(verifier.verify_chunk(&digest, want));
        }
        // Out of order or tampered: refused.
        let mut verifier = new();
        let digest: [u8; 32] = Sha256::digest(chunks[1]).into();
        assert!(!verifier.verify_chunk(&digest, expected[0]));
    }
}
