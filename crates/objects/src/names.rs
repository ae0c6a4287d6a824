//! Bucket names and object keys: what S3 accepts.
//!
//! Keys never become file names (bytes live in files named by random blob ids), so a key may
//! hold `..`, `/`, or any other UTF-8; only its length and NUL are limited.

use crate::error::ObjectError;

/// Longest object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks a general-purpose bucket name against S3's rules: 3-63 characters of lowercase
/// letters, digits, dots and hyphens, starting and ending with a letter or digit, no two
/// adjacent dots, not shaped like an IPv4 address, none of the reserved prefixes and suffixes.
pub fn validate_bucket_name(name: &str) -> Result<(), ObjectError> {
    let invalid = |reason: &'static str| ObjectError::InvalidBucketName {
        bucket: name.to_string(),
        reason,
    };
    if !(3..=63).contains(&name.len()) {
        return Err(invalid(
            "Bucket names must be between 3 and 63 characters long.",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(invalid(
            "Bucket names can consist only of lowercase letters, numbers, dots (.), and hyphens (-).",
        ));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(invalid(
            "Bucket names must begin and end with a letter or number.",
        ));
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(invalid(
            "Bucket names must not contain two adjacent periods or a period next to a hyphen.",
        ));
    }
    let octets: Vec<&str> = name.split('.').collect();
    if octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "Bucket names must not be formatted as an IP address.",
        ));
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(invalid(
                "Bucket names must not start with a reserved prefix.",
            ));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(invalid("Bucket names must not end with a reserved suffix."));
        }
    }
    Ok(())
}

/// Checks an object key: 1 to 1024 UTF-8 bytes, no NUL (XML 1.0 cannot carry it, so no
/// listing could show it).
pub fn validate_key(key: &str) -> Result<(), ObjectError> {
    if key.is_empty() {
        return Err(ObjectError::InvalidArgument(
            "The object key must not be empty.".into(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ObjectError::KeyTooLong { len: key.len() });
    }
    if key.contains('\0') {
        return Err(ObjectError::InvalidArgument(
            "Object keys must not contain the NUL character.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in [
            "abc",
            "my-bucket.v2",
            "a1b2c3",
            "aws-sam-cli-managed-default-samclisourcebucket-1a2b3c",
        ] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.5.4",
            "xn--bucket",
            "bucket-s3alias",
            "..",
            "a/b",
            "a\0b",
            "bücket",
        ] {
            assert!(
                matches!(
                    validate_bucket_name(bad),
                    Err(ObjectError::InvalidBucketName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_any_utf8_up_to_1024_bytes_without_nul() {
        for ok in [
            "a",
            "../../etc/passwd",
            "dir/",
            "/leading",
            "sp ace+plus%25",
            "é☺",
        ] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        assert!(validate_key(&"k".repeat(1024)).is_ok());
        assert!(matches!(
            validate_key(&"k".repeat(1025)),
            Err(ObjectError::KeyTooLong { len: 1025 })
        ));
        assert!(validate_key("").is_err());
        assert!(validate_key("a\0b").is_err());
    }
}
