//! AWS event-stream messages (`application/vnd.amazon.eventstream`), the framing of streamed
//! responses such as Lambda's `InvokeWithResponseStream`:
//!
//! ```text
//! total length (u32) | headers length (u32) | prelude CRC32 (of the 8 bytes before)
//! headers: name length (u8) | name | value type (u8, 7 = string) | value length (u16) | value
//! payload
//! message CRC32 (of everything before it)
//! ```
//!
//! All integers big-endian; CRC-32 is the IEEE polynomial (`crc32fast`).

use bytes::{BufMut, Bytes, BytesMut};

/// The `Content-Type` of an event-stream response.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type: a UTF-8 string with a 16-bit length.
const TYPE_STRING: u8 = 7;

/// Prelude (12 bytes) and message CRC (4 bytes).
const OVERHEAD: usize = 16;

/// One message: `headers` are (name, string value) pairs written in order.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = OVERHEAD + headers_len + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    out.put_u32(u32::try_from(headers_len).unwrap_or(u32::MAX));
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.put_u32(prelude_crc);
    for (name, value) in headers {
        // Names are ours (short ASCII constants); values are bounded by their callers.
        out.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.put_slice(name.as_bytes());
        out.put_u8(TYPE_STRING);
        out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// An `event` message of type `event_type` with a payload of `content_type`.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A decoded message, for tests and clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("incomplete message")]
    Incomplete,
    #[error("prelude checksum mismatch")]
    PreludeCrc,
    #[error("message checksum mismatch")]
    MessageCrc,
    #[error("malformed headers")]
    Headers,
}

/// Decodes the first message of `buf`; returns it and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    let be32 = |at: usize| -> Result<usize, DecodeError> {
        let b = buf.get(at..at + 4).ok_or(DecodeError::Incomplete)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let total = be32(0)?;
    let headers_len = be32(4)?;
    if be32(8)? as u32 != crc32fast::hash(&buf[..8]) {
        return Err(DecodeError::PreludeCrc);
    }
    if total < OVERHEAD + headers_len {
        return Err(DecodeError::Headers);
    }
    if buf.len() < total {
        return Err(DecodeError::Incomplete);
    }
    if be32(total - 4)? as u32 != crc32fast::hash(&buf[..total - 4]) {
        return Err(DecodeError::MessageCrc);
    }
    let mut headers = Vec::new();
    let mut h = &buf[12..12 + headers_len];
    while !h.is_empty() {
        let name_len = *h.first().ok_or(DecodeError::Headers)? as usize;
        let name = h.get(1..1 + name_len).ok_or(DecodeError::Headers)?;
        let rest = &h[1 + name_len..];
        if rest.first() != Some(&TYPE_STRING) || rest.len() < 3 {
            return Err(DecodeError::Headers);
        }
        let value_len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let value = rest.get(3..3 + value_len).ok_or(DecodeError::Headers)?;
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        h = &rest[3 + value_len..];
    }
    let payload = Bytes::copy_from_slice(&buf[12 + headers_len..total - 4]);
    Ok((Message { headers, payload }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty message is 16 bytes; its CRCs (0x05c248eb of the prelude, 0x7d98c8ff of the
    /// message) computed independently with Python's `zlib.crc32`.
    #[test]
    fn empty_message_matches_the_reference_encoding() {
        let m = message(&[], b"");
        assert_eq!(
            m.as_ref(),
            &[
                0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
                0xc8, 0xff
            ]
        );
    }

    #[test]
    fn round_trip_and_corruption() {
        let m = event("PayloadChunk", "application/octet-stream", b"hello");
        let (decoded, used) = decode(&m).unwrap();
        assert_eq!(used, m.len());
        assert_eq!(decoded.header(":event-type"), Some("PayloadChunk"));
        assert_eq!(decoded.header(":message-type"), Some("event"));
        assert_eq!(decoded.payload, "hello");
        let mut bad = m.to_vec();
        let last = bad.len() - 5;
        bad[last] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::MessageCrc));
        assert_eq!(decode(&m[..10]), Err(DecodeError::Incomplete));
    }
}
