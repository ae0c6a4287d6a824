//! A small signed HTTP client for the CLI: CloudFormation's query protocol, S3 puts and
//! Kindling's own gated paths (`kindling nodes`), with
//! SigV4 from `kindling-auth` (the credentials of the environment, `test`/`test` otherwise).

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use kindling_auth::{SigningParams, amz_date, authorization_header};
use kindling_protocol::xml_read::{Element, ReadLimits, parse};

/// Where and as whom the CLI calls.
pub struct Client {
    http: reqwest::blocking::Client,
    endpoint: String,
    host: String,
    region: String,
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

/// A CloudFormation error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

fn form_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
        .replace("%7E", "~")
}

impl Client {
    pub fn new(endpoint: &str, region: &str) -> anyhow::Result<Self> {
        Self::with_timeout(endpoint, region, Duration::from_secs(300))
    }

    /// A client whose requests give up after `timeout`.
    pub fn with_timeout(endpoint: &str, region: &str, timeout: Duration) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .context("the endpoint must be an http:// or https:// URL")?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ok(Self {
            http: reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .context("building the HTTP client")?,
            endpoint,
            host,
            region: region.to_string(),
            access_key: env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
            secret_key: env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
            session_token: env("AWS_SESSION_TOKEN"),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn signed(
        &self,
        method: &str,
        path: &str,
        service: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::blocking::Response> {
        let now = SystemTime::now();
        let date = amz_date(now);
        let hash = sha256_hex(&body);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-date".into(), date),
            ("x-amz-content-sha256".into(), hash),
        ];
        if let Some(ct) = content_type {
            headers.push(("content-type".into(), ct.into()));
        }
        if let Some(t) = &self.session_token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        let raw: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let auth = authorization_header(
            &kindling_auth::Request {
                method,
                path,
                query: "",
                headers: &raw,
                payload: kindling_auth::Payload::Bytes(&body),
            },
            &SigningParams {
                access_key_id: &self.access_key,
                secret_access_key: &self.secret_key,
                region: &self.region,
                service,
                time: now,
            },
        );
        let url = format!("{}{path}", self.endpoint);
        let mut req = self
            .http
            .request(method.parse().context("method")?, &url)
            .header("authorization", auth);
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req.body(body)
            .send()
            .with_context(|| format!("calling {url} (is `kindling serve` running there?)"))
    }

    /// A signed `GET` of one of Kindling's own paths (signing name `service`).
    pub fn get(&self, path: &str, service: &str) -> anyhow::Result<reqwest::blocking::Response> {
        self.signed("GET", path, service, None, Vec::new())
    }

    /// One CloudFormation action; the `…Result` element, or the service's error.
    pub fn cfn(&self, action: &str, params: &[(String, String)]) -> anyhow::Result<Element> {
        let mut body = format!("Action={action}&Version=2010-05-15");
        for (k, v) in params {
            body.push('&');
            body.push_str(&form_encode(k));
            body.push('=');
            body.push_str(&form_encode(v));
        }
        let res = self.signed(
            "POST",
            "/",
            "cloudformation",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            body.into_bytes(),
        )?;
        let status = res.status();
        let bytes = res.bytes().context("reading the answer")?;
        let limits = ReadLimits {
            max_depth: 32,
            max_elements: 1_000_000,
        };
        let doc = parse(&bytes, limits)
            .map_err(|e| anyhow::anyhow!("unreadable answer to {action} ({status}): {e}"))?;
        if !status.is_success() {
            let err = doc.child("Error").unwrap_or(&doc);
            return Err(ApiError {
                code: err.child_text("Code").unwrap_or("Error").to_string(),
                message: err.child_text("Message").unwrap_or("").to_string(),
            }
            .into());
        }
        Ok(doc
            .child(&format!("{action}Result"))
            .cloned()
            .unwrap_or_default())
    }

    /// Creates a bucket (an existing one of ours is fine).
    pub fn ensure_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let res = self.signed("PUT", &format!("/{bucket}"), "s3", None, Vec::new())?;
        let status = res.status();
        let text = res.text().unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            Ok(())
        } else {
            bail!("creating bucket {bucket}: {status} {text}")
        }
    }

    /// Stores an object (path-style URL).
    pub fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let path = format!("/{bucket}/{}", form_encode(key).replace("%2F", "/"));
        let res = self.signed("PUT", &path, "s3", Some("application/octet-stream"), body)?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else {
            bail!(
                "uploading s3://{bucket}/{key}: {status} {}",
                res.text().unwrap_or_default()
            )
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `member`s of a list element.
pub fn members<'a>(parent: &'a Element, list: &str) -> Vec<&'a Element> {
    parent
        .child(list)
        .map(|l| l.children_named("member").collect())
        .unwrap_or_default()
}
