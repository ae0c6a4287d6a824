//! The MD5 digests SQS returns and clients verify (facts §1.6): of the body, and of message
//! (or system) attributes in SQS's length-prefixed encoding.

use std::collections::BTreeMap;

use kindling_model::messaging::AttributeValue;
use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Lowercase hex MD5 of the UTF-8 body.
pub fn md5_of_body(body: &str) -> String {
    hex(&Md5::digest(body.as_bytes()))
}

fn put(h: &mut Md5, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// MD5 of attributes: names ascending; each as length-prefixed name, data type, a transport
/// byte (1 string, 2 binary) and the length-prefixed value. `None` for no attributes.
pub fn md5_of_attributes(attrs: &BTreeMap<String, AttributeValue>) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut h = Md5::new();
    // BTreeMap iterates in byte order of the names, as SQS sorts them.
    for (name, v) in attrs {
        put(&mut h, name.as_bytes());
        put(&mut h, v.data_type.as_bytes());
        if let Some(s) = &v.string_value {
            h.update([1u8]);
            put(&mut h, s.as_bytes());
        } else if let Some(b) = &v.binary_value {
            h.update([2u8]);
            put(&mut h, b);
        }
    }
    Some(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str, v: &str) -> AttributeValue {
        AttributeValue {
            data_type: t.into(),
            string_value: Some(v.into()),
            binary_value: None,
        }
    }

    #[test]
    fn published_test_vectors() {
        assert_eq!(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
        let mut a = BTreeMap::new();
        a.insert("attribName1".to_string(), s("String", "attribValue 1"));
        assert_eq!(
            md5_of_attributes(&a).unwrap(),
            "19e27d4e946b072f3f58da80d94fd778"
        );
        let mut b = BTreeMap::new();
        b.insert(
            "binaryAttribute".to_string(),
            AttributeValue {
                data_type: "Binary".into(),
                string_value: None,
                binary_value: Some(b"Hello binary world!".to_vec()),
            },
        );
        assert_eq!(
            md5_of_attributes(&b).unwrap(),
            "31a92b15d92f8db860eda32aceb656c3"
        );
        a.extend(b);
        a.insert(
            "customNumberTypeAttrib".into(),
            s("Number.float", "4563442423554324324264524243.32543234"),
        );
        assert_eq!(
            md5_of_attributes(&a).unwrap(),
            "c932db14a896c663f83c260297d594ff"
        );
        let mut t = BTreeMap::new();
        t.insert(
            "AWSTraceHeader".to_string(),
            s(
                "String",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            ),
        );
        assert_eq!(
            md5_of_attributes(&t).unwrap(),
            "5f48eef650c1d0207456969c85af2fdd"
        );
        assert_eq!(md5_of_attributes(&BTreeMap::new()), None);
    }
}
