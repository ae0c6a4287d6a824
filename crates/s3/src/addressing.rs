//! Which bucket and key a request names: path-style (`/<bucket>/<key>`, what botocore sends
//! to any custom endpoint) or virtual-hosted (`<bucket>.s3.<anything>`, `<bucket>.localhost`,
//! `<bucket>.<configured host>`, what other SDKs send to a host name).

use percent_encoding::percent_decode_str;

use crate::error::S3Error;

/// The bucket and key of a request (`None` for the service level, `ListBuckets`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub bucket: Option<String>,
    /// Empty when the request is about the bucket itself.
    pub key: String,
    /// Whether the bucket came from the Host header.
    pub virtual_hosted: bool,
}

/// Host names under which `<bucket>.<host>` is virtual-hosted addressing, besides
/// `<bucket>.s3.<anything>` and `<bucket>.localhost`.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    pub base: Vec<String>,
}

/// The host without its port, lowercased; `None` for an IP literal.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    if host.starts_with('[') {
        return None; // IPv6 literal
    }
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(name)
}

/// The bucket a Host header names, if it is a virtual-hosted one.
pub fn bucket_from_host(host: &str, hosts: &Hosts) -> Option<String> {
    let name = host_name(host)?;
    let labels: Vec<&str> = name.split('.').collect();
    // `<bucket>.s3.<region>.amazonaws.com`, `<bucket>.s3.localhost`, `<bucket>.s3-us-west-2...`
    if let Some(i) = labels
        .iter()
        .skip(1)
        .position(|l| *l == "s3" || l.starts_with("s3-"))
    {
        let bucket = labels[..=i].join(".");
        return (!bucket.is_empty()).then_some(bucket);
    }
    for base in hosts
        .base
        .iter()
        .map(|b| b.to_ascii_lowercase())
        .chain(std::iter::once("localhost".to_string()))
    {
        if let Some(bucket) = name.strip_suffix(&format!(".{base}"))
            && !bucket.is_empty()
        {
            return Some(bucket.to_string());
        }
    }
    None
}

fn decode(segment: &str) -> Result<String, S3Error> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::InvalidUri)
}

/// The bucket and key of a request from its Host header and raw (percent-encoded) path.
pub fn locate(host: Option<&str>, raw_path: &str, hosts: &Hosts) -> Result<Target, S3Error> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host.and_then(|h| bucket_from_host(h, hosts)) {
        return Ok(Target {
            bucket: Some(bucket),
            key: decode(path)?,
            virtual_hosted: true,
        });
    }
    if path.is_empty() {
        return Ok(Target::default());
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    Ok(Target {
        bucket: Some(decode(bucket)?),
        key: decode(key)?,
        virtual_hosted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts {
            base: vec!["kindling.internal".into()],
        }
    }

    #[test]
    fn path_style_splits_bucket_and_key() {
        let t = locate(Some("127.0.0.1:9001"), "/bkt/a/b%20c+d%2Fe", &hosts()).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key, "a/b c+d/e");
        assert!(!t.virtual_hosted);
        let t = locate(Some("localhost:9001"), "/bkt/", &hosts()).unwrap();
        assert_eq!((t.bucket.as_deref(), t.key.as_str()), (Some("bkt"), ""));
        let t = locate(Some("localhost"), "/bkt", &hosts()).unwrap();
        assert_eq!((t.bucket.as_deref(), t.key.as_str()), (Some("bkt"), ""));
        assert_eq!(locate(None, "/", &hosts()).unwrap(), Target::default());
        let t = locate(Some("[::1]:9001"), "/b/k", &hosts()).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("b"));
        assert!(locate(None, "/b/%ff", &hosts()).is_err());
    }

    #[test]
    fn virtual_hosted_buckets_come_from_the_host() {
        for (host, bucket) in [
            ("mybucket.localhost:9001", "mybucket"),
            ("my.dotted.bucket.localhost", "my.dotted.bucket"),
            ("mybucket.s3.us-east-1.amazonaws.com", "mybucket"),
            ("mybucket.s3.localhost:4566", "mybucket"),
            ("mybucket.s3-us-west-2.amazonaws.com", "mybucket"),
            ("MyBucket.Kindling.Internal:80", "mybucket"),
        ] {
            let t = locate(Some(host), "/dir/key.txt", &hosts()).unwrap();
            assert_eq!(t.bucket.as_deref(), Some(bucket), "{host}");
            assert_eq!(t.key, "dir/key.txt");
            assert!(t.virtual_hosted);
        }
        for host in [
            "localhost:9001",
            "127.0.0.1:9001",
            "s3.amazonaws.com",
            "example.com",
            "kindling.internal",
            ".localhost",
        ] {
            assert_eq!(bucket_from_host(host, &hosts()), None, "{host}");
        }
        let t = locate(Some("b1.localhost"), "/", &hosts()).unwrap();
        assert_eq!((t.bucket.as_deref(), t.key.as_str()), (Some("b1"), ""));
    }
}
