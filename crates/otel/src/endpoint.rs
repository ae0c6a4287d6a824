//! The collector's address.

/// Where batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// `http://host[:port][/base]` → requests to `<base>/v1/traces` (a URL already ending in
    /// `/v1/traces` is used as it is).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("the OTLP endpoint must be an http:// URL: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("bad port in the OTLP endpoint: {url}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("no host in the OTLP endpoint: {url}"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("/v1/traces") {
            path.to_string()
        } else {
            format!("{path}/v1/traces")
        };
        if path.parse::<hyper::Uri>().is_err() {
            return Err(format!("bad path in the OTLP endpoint: {url}"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 4318, "/v1/traces")
        );
        assert_eq!(
            Endpoint::parse("http://c:1/v1/traces").unwrap().path,
            "/v1/traces"
        );
        assert_eq!(
            Endpoint::parse("http://c/otlp/").unwrap().path,
            "/otlp/v1/traces"
        );
        assert!(Endpoint::parse("https://c:1").is_err());
        assert!(Endpoint::parse("http://c:1/a b").is_err());
    }
}
