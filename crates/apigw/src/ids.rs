//! Identifiers as API Gateway mints them: lower-case letters and digits.

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random lower-case alphanumerics.
pub(crate) fn new_id(len: usize) -> String {
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// API ids: 10 characters (`a1b2c3d4e5`).
pub(crate) fn api_id() -> String {
    new_id(10)
}

/// Route, integration, deployment and resource ids: 7 characters (6 for resources, as v1).
pub(crate) fn child_id() -> String {
    new_id(7)
}

pub(crate) fn resource_id() -> String {
    new_id(6)
}

pub(crate) fn revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` looks like an id this module minted (any length): refuses ids that could
/// never exist before touching the store.
pub(crate) fn plausible(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = api_id();
        assert_eq!(id.len(), 10);
        assert!(plausible(&id));
        assert!(!plausible("../x"));
        assert_eq!(resource_id().len(), 6);
    }
}
