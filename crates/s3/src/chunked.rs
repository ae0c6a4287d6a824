//! The `aws-chunked` content encoding: the payload in chunks, each
//! `<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n`, a final zero-size chunk, then optional
//! trailer lines (`x-amz-checksum-crc32:<b64>`, `x-amz-trailer-signature:<sig>`) and a blank
//! line. Sent (inside HTTP's own framing) with `x-amz-content-sha256:
//! STREAMING-UNSIGNED-PAYLOAD-TRAILER` or `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
//!
//! [`Decoder`] is an incremental state machine: it takes the body as it arrives, hands out
//! the payload bytes (slices of the input, no copies), and never buffers more than one short
//! header or trailer line. Hostile framing is an error, never a panic: bad hex, header lines
//! past 512 bytes, data not followed by CRLF, more bytes than `x-amz-decoded-content-length`
//! declares, a body that ends early, bytes after the end, too many or too long trailers.
//! Signed chunks are checked by a [`ChunkSignatures`] as each chunk ends.

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Longest chunk header line (`<16 hex>;chunk-signature=<64 hex>` is about 100 bytes).
const MAX_HEADER_LINE: usize = 512;
/// Longest trailer line.
const MAX_TRAILER_LINE: usize = 4096;
/// Most trailer lines.
const MAX_TRAILERS: usize = 16;

/// Why an aws-chunked body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("a chunk header is malformed")]
    BadHeader,
    #[error("a chunk header line is too long")]
    HeaderTooLong,
    #[error("chunk data is not followed by CRLF")]
    MissingCrlf,
    #[error("the body ends before the last chunk")]
    Truncated,
    #[error("the chunks hold more bytes than x-amz-decoded-content-length declares ({declared})")]
    TooLong { declared: u64 },
    #[error("the chunks hold {decoded} bytes, x-amz-decoded-content-length declares {declared}")]
    LengthMismatch { declared: u64, decoded: u64 },
    #[error("the body continues after the last chunk")]
    TrailingData,
    #[error("a trailer line is malformed or too long")]
    BadTrailer,
    #[error("the body has more than {MAX_TRAILERS} trailer lines")]
    TooManyTrailers,
    #[error("a chunk has no chunk-signature")]
    MissingSignature,
    #[error("a chunk signature does not match")]
    SignatureMismatch,
}

/// Checks the signatures of a signed chunked body, chaining each to the previous one (the
/// first to the request's own signature).
pub trait ChunkSignatures: Send {
    /// The signature of the next chunk, whose data hashes to `chunk_sha256`.
    fn chunk(&mut self, chunk_sha256: &[u8; 32], signature: &str) -> bool;
    /// The signature of the trailer lines, each `name:value\n`.
    fn trailer(&mut self, trailer_lines: &[u8], signature: &str) -> bool;
}

/// How the chunks are signed.
pub enum Signing {
    /// No chunk signatures (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`).
    Unsigned,
    /// Chunk signatures present but not checked (the server verifies no signatures).
    Unverified,
    /// Chunk signatures present and checked.
    Verified(Box<dyn ChunkSignatures>),
}

impl Signing {
    fn signed(&self) -> bool {
        !matches!(self, Self::Unsigned)
    }
}

enum State {
    Header,
    Data { remaining: u64 },
    DataCr,
    DataLf,
    Trailer,
    Done,
}

/// An incremental aws-chunked decoder.
pub struct Decoder {
    state: State,
    declared: u64,
    decoded: u64,
    signing: Signing,
    line: Vec<u8>,
    /// The current chunk's signature and running hash (signed bodies).
    chunk_signature: Option<String>,
    chunk_hash: Option<Sha256>,
    trailers: Vec<(String, String)>,
    trailer_lines: Vec<u8>,
    trailer_signature: Option<String>,
}

impl Decoder {
    /// A decoder for a body whose payload is `declared` bytes (`x-amz-decoded-content-length`).
    pub fn new(declared: u64, signing: Signing) -> Self {
        Self {
            state: State::Header,
            declared,
            decoded: 0,
            signing,
            line: Vec::new(),
            chunk_signature: None,
            chunk_hash: None,
            trailers: Vec::new(),
            trailer_lines: Vec::new(),
            trailer_signature: None,
        }
    }

    /// Payload bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Decodes `input`, appending the payload bytes it holds to `out`.
    pub fn feed(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        let mut pos = 0usize;
        while pos < input.len() {
            match self.state {
                State::Header => {
                    if let Some(line) = self
                        .take_line(&input, &mut pos, MAX_HEADER_LINE)
                        .map_err(|()| ChunkError::HeaderTooLong)?
                    {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let available = (input.len() - pos) as u64;
                    let n = remaining.min(available) as usize;
                    let data = input.slice(pos..pos + n);
                    if let Some(h) = &mut self.chunk_hash {
                        h.update(&data);
                    }
                    out.push(data);
                    pos += n;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                State::DataCr => {
                    if input[pos] != b'\r' {
                        return Err(ChunkError::MissingCrlf);
                    }
                    pos += 1;
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if input[pos] != b'\n' {
                        return Err(ChunkError::MissingCrlf);
                    }
                    pos += 1;
                    self.end_chunk()?;
                    self.state = State::Header;
                }
                State::Trailer => {
                    if let Some(line) = self
                        .take_line(&input, &mut pos, MAX_TRAILER_LINE)
                        .map_err(|()| ChunkError::BadTrailer)?
                    {
                        self.trailer_line(&line)?;
                    }
                }
                State::Done => {
                    if input[pos..].iter().all(|b| b.is_ascii_whitespace()) {
                        return Ok(());
                    }
                    return Err(ChunkError::TrailingData);
                }
            }
        }
        Ok(())
    }

    /// Ends the body: the trailers it carried (`name`, `value`), once everything checks out.
    pub fn finish(mut self) -> Result<Vec<(String, String)>, ChunkError> {
        match self.state {
            State::Done => {}
            // Lenient: a body that ends after its trailers without the closing blank line.
            State::Trailer if self.line.is_empty() => {}
            _ => return Err(ChunkError::Truncated),
        }
        if self.decoded != self.declared {
            return Err(ChunkError::LengthMismatch {
                declared: self.declared,
                decoded: self.decoded,
            });
        }
        if let Signing::Verified(v) = &mut self.signing
            && !self.trailers.is_empty()
        {
            let sig = self
                .trailer_signature
                .as_deref()
                .ok_or(ChunkError::MissingSignature)?;
            if !v.trailer(&self.trailer_lines, sig) {
                return Err(ChunkError::SignatureMismatch);
            }
        }
        Ok(self.trailers)
    }

    /// A complete line (without CRLF) if `input` from `pos` finishes one; else keeps the
    /// partial line. `Err` when the line grows past `max`.
    fn take_line(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        max: usize,
    ) -> Result<Option<Vec<u8>>, ()> {
        let rest = &input[*pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if self.line.len() + i > max {
                    return Err(());
                }
                self.line.extend_from_slice(&rest[..i]);
                *pos += i + 1;
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(line))
            }
            None => {
                if self.line.len() + rest.len() > max {
                    return Err(());
                }
                self.line.extend_from_slice(rest);
                *pos = input.len();
                Ok(None)
            }
        }
    }

    fn start_chunk(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let line = std::str::from_utf8(line).map_err(|_| ChunkError::BadHeader)?;
        let (size, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        let size = size.trim();
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChunkError::BadHeader);
        }
        let size = u64::from_str_radix(size, 16).map_err(|_| ChunkError::BadHeader)?;
        if self.signing.signed() {
            let sig = ext
                .and_then(|e| e.trim().strip_prefix("chunk-signature="))
                .map(str::trim)
                .ok_or(ChunkError::MissingSignature)?;
            if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ChunkError::BadHeader);
            }
            self.chunk_signature = Some(sig.to_ascii_lowercase());
            self.chunk_hash = Some(Sha256::new());
        }
        if size > self.declared - self.decoded {
            return Err(ChunkError::TooLong {
                declared: self.declared,
            });
        }
        self.decoded += size;
        if size == 0 {
            self.end_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the signature of the chunk that just ended.
    fn end_chunk(&mut self) -> Result<(), ChunkError> {
        let (Some(sig), Some(hash)) = (self.chunk_signature.take(), self.chunk_hash.take()) else {
            return Ok(());
        };
        if let Signing::Verified(v) = &mut self.signing {
            let digest: [u8; 32] = hash.finalize().into();
            if !v.chunk(&digest, &sig) {
                return Err(ChunkError::SignatureMismatch);
            }
        }
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| ChunkError::BadTrailer)?;
        let (name, value) = line.split_once(':').ok_or(ChunkError::BadTrailer)?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name.is_empty() {
            return Err(ChunkError::BadTrailer);
        }
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value.to_ascii_lowercase());
            return Ok(());
        }
        if self.trailers.len() >= MAX_TRAILERS {
            return Err(ChunkError::TooManyTrailers);
        }
        self.trailer_lines
            .extend_from_slice(format!("{name}:{value}\n").as_bytes());
        self.trailers.push((name, value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `payload` in chunks of `size` (unsigned), with optional trailer lines.
    fn encode(payload: &[u8], size: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in payload.chunks(size.max(1)) {
            out.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend(chunk);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n");
        for (k, v) in trailers {
            out.extend(format!("{k}:{v}\r\n").as_bytes());
        }
        out.extend(b"\r\n");
        out
    }

    type Decoded = (Vec<u8>, Vec<(String, String)>);

    /// Decodes `body` fed in pieces of the given sizes.
    fn decode(
        body: &[u8],
        declared: u64,
        signing: Signing,
        pieces: &[usize],
    ) -> Result<Decoded, ChunkError> {
        let mut d = Decoder::new(declared, signing);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < body.len() {
            let n = pieces[i % pieces.len()].max(1).min(body.len() - pos);
            d.feed(Bytes::copy_from_slice(&body[pos..pos + n]), &mut out)?;
            pos += n;
            i += 1;
        }
        let trailers = d.finish()?;
        Ok((out.concat(), trailers))
    }

    #[test]
    fn decodes_unsigned_chunks_with_trailers_in_any_pieces() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let body = encode(&payload, 1024, &[("x-amz-checksum-crc32", "AAAAAA==")]);
        for pieces in [&[1][..], &[7, 3], &[4096], &[body.len()]] {
            let (data, trailers) =
                decode(&body, payload.len() as u64, Signing::Unsigned, pieces).unwrap();
            assert_eq!(data, payload);
            assert_eq!(
                trailers,
                [("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string())]
            );
        }
        // Empty payload, no trailers; and a body ending without the final blank line.
        assert_eq!(
            decode(b"0\r\n\r\n", 0, Signing::Unsigned, &[2]).unwrap().0,
            b""
        );
        assert!(
            decode(
                b"0\r\nx-amz-checksum-crc32:AA==\r\n",
                0,
                Signing::Unsigned,
                &[3]
            )
            .is_ok()
        );
    }

    /// Signs like the AWS docs' example chain: each signature is the previous one and the
    /// chunk's hash, here reduced to a recognizable function of both.
    struct FakeChain {
        prev: String,
    }

    fn fake_sig(prev: &str, hash: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(hash);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    impl ChunkSignatures for FakeChain {
        fn chunk(&mut self, chunk_sha256: &[u8; 32], signature: &str) -> bool {
            let want = fake_sig(&self.prev, chunk_sha256);
            self.prev = want.clone();
            want == signature
        }
        fn trailer(&mut self, trailer_lines: &[u8], signature: &str) -> bool {
            let h: [u8; 32] = Sha256::digest(trailer_lines).into();
            fake_sig(&self.prev, &h) == signature
        }
    }

    fn encode_signed(payload: &[u8], size: usize, seed: &str, tamper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = seed.to_string();
        let mut chunks: Vec<&[u8]> = payload.chunks(size).collect();
        chunks.push(b"");
        for (i, chunk) in chunks.iter().enumerate() {
            let h: [u8; 32] = Sha256::digest(chunk).into();
            let mut sig = fake_sig(&prev, &h);
            prev = sig.clone();
            if tamper && i == 1 {
                sig = "0".repeat(64);
            }
            out.extend(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
            out.extend(*chunk);
            if !chunk.is_empty() {
                out.extend(b"\r\n");
            }
        }
        out.extend(b"\r\n");
        out
    }

    #[test]
    fn checks_chained_chunk_signatures() {
        let payload = vec![b'z'; 3000];
        let good = encode_signed(&payload, 1000, "seed", false);
        let chain = || {
            Signing::Verified(Box::new(FakeChain {
                prev: "seed".into(),
            }))
        };
        let (data, _) = decode(&good, 3000, chain(), &[13]).unwrap();
        assert_eq!(data, payload);
        let bad = encode_signed(&payload, 1000, "seed", true);
        assert_eq!(
            decode(&bad, 3000, chain(), &[13]).unwrap_err(),
            ChunkError::SignatureMismatch
        );
        // Not verified: parsed all the same.
        assert!(decode(&bad, 3000, Signing::Unverified, &[64]).is_ok());
        // Signed framing without signatures.
        assert_eq!(
            decode(
                &encode(&payload, 1000, &[]),
                3000,
                Signing::Unverified,
                &[50]
            )
            .unwrap_err(),
            ChunkError::MissingSignature
        );
    }

    #[test]
    fn refuses_broken_and_lying_framing() {
        let payload = b"hello world";
        let body = encode(payload, 4, &[]);
        // A lying x-amz-decoded-content-length, either way.
        assert_eq!(
            decode(&body, 5, Signing::Unsigned, &[100]).unwrap_err(),
            ChunkError::TooLong { declared: 5 }
        );
        assert_eq!(
            decode(&body, 20, Signing::Unsigned, &[100]).unwrap_err(),
            ChunkError::LengthMismatch {
                declared: 20,
                decoded: 11
            }
        );
        for (bad, want) in [
            (&b"zz\r\nab\r\n0\r\n\r\n"[..], ChunkError::BadHeader),
            (b"2\r\nabX\r\n0\r\n\r\n", ChunkError::MissingCrlf),
            (b"2\r\nab\r\n", ChunkError::Truncated),
            (b"2\r\na", ChunkError::Truncated),
            (b"0\r\n\r\ngarbage", ChunkError::TrailingData),
            (b"0\r\nnocolon\r\n\r\n", ChunkError::BadTrailer),
            (b"fffffffffffffffff\r\n", ChunkError::BadHeader),
            (b"ffffffffffffffff\r\n", ChunkError::TooLong { declared: 2 }),
        ] {
            assert_eq!(
                decode(bad, 2, Signing::Unsigned, &[3]).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_header = vec![b'1'; MAX_HEADER_LINE + 1];
        assert_eq!(
            decode(&long_header, 2, Signing::Unsigned, &[100]).unwrap_err(),
            ChunkError::HeaderTooLong
        );
        let mut many = b"0\r\n".to_vec();
        for i in 0..=MAX_TRAILERS {
            many.extend(format!("x-t{i}:v\r\n").as_bytes());
        }
        assert_eq!(
            decode(&many, 0, Signing::Unsigned, &[100]).unwrap_err(),
            ChunkError::TooManyTrailers
        );
    }

    #[test]
    fn random_bodies_decode_or_fail_cleanly_within_bounds() {
        let mut rng = fastrand::Rng::with_seed(2024);
        for round in 0..3_000 {
            let len = rng.usize(0..300);
            let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let mut body = encode(
                &payload,
                rng.usize(1..64),
                &[("x-amz-checksum-sha256", "v")],
            );
            // Mutate some bodies: flip, drop or insert bytes.
            let mutated = round % 2 == 1 && !body.is_empty();
            if mutated {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(0..body.len());
                    match rng.u8(0..3) {
                        0 => body[at] = rng.u8(..),
                        1 => {
                            body.remove(at);
                            if body.is_empty() {
                                break;
                            }
                        }
                        _ => body.insert(at, rng.u8(..)),
                    }
                }
            }
            let declared = if rng.bool() {
                len as u64
            } else {
                rng.u64(0..400)
            };
            let pieces = [rng.usize(1..50), rng.usize(1..50)];
            match decode(&body, declared, Signing::Unsigned, &pieces) {
                Ok((data, _)) => {
                    assert_eq!(data.len() as u64, declared, "never more than declared");
                    if !mutated {
                        assert_eq!(data, payload);
                    }
                }
                Err(_) => assert!(mutated || declared != len as u64),
            }
        }
    }
}
