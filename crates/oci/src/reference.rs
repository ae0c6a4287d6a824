//! Image references: Lambda's `ImageUri` as Kindling accepts it, and the names the registry
//! serves (ECR's rules for repositories, the OCI spec's for tags).
//!
//! An `ImageUri` names Kindling's own registry, in either form:
//! * ECR's: `<account>.dkr.ecr.<region>.localhost[:<port>]/<repository>[:<tag>|@<digest>]`;
//! * a plain local address: `127.0.0.1:<port>/…`, `localhost:<port>/…`, `[::1]:<port>/…`.
//!
//! A reference without tag or digest means `:latest`, as Docker reads it.

use std::fmt;

use crate::digest::{Digest, DigestError};

/// Longest repository name (ECR's limit).
pub const MAX_REPOSITORY: usize = 256;
/// Longest tag (the OCI distribution spec's limit).
pub const MAX_TAG: usize = 128;

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A manifest reference as it appears in `/v2/<name>/manifests/<reference>`.
    pub fn parse(text: &str) -> Result<Self, RefError> {
        if text.contains(':') {
            return Digest::parse(text)
                .map(Reference::Digest)
                .map_err(RefError::Digest);
        }
        if valid_tag(text) {
            Ok(Reference::Tag(text.to_string()))
        } else {
            Err(RefError::Tag(text.to_string()))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A parsed `ImageUri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written.
    pub registry: String,
    /// The account of an ECR-style host.
    pub account: Option<String>,
    /// The region of an ECR-style host.
    pub region: Option<String>,
    pub repository: String,
    pub reference: Reference,
}

/// Why a reference or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error(
        "repository name {0:?} is invalid: 2-256 characters of lowercase letters, digits and \
         separators (. _ - /), each path component starting and ending with a letter or digit"
    )]
    Repository(String),
    #[error("tag {0:?} is invalid: 1-128 of [A-Za-z0-9_.-], not starting with . or -")]
    Tag(String),
    #[error(transparent)]
    Digest(DigestError),
    #[error("{0}")]
    Uri(String),
}

/// ECR's repository rule: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`,
/// 2-256 characters. Components can never be `.` or `..`: safe as relative paths.
pub fn valid_repository(name: &str) -> bool {
    (2..=MAX_REPOSITORY).contains(&name.len())
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            let sep = |c: &u8| matches!(c, b'.' | b'_' | b'-');
            !b.is_empty()
                && b.first().is_some_and(alnum)
                && b.last().is_some_and(alnum)
                && b.iter().all(|c| alnum(c) || sep(c))
                && !b.windows(2).any(|w| sep(&w[0]) && sep(&w[1]))
        })
}

/// The OCI tag rule: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn uri_error(uri: &str, why: &str) -> RefError {
    RefError::Uri(format!("Source image {uri} is not valid: {why}"))
}

impl ImageRef {
    /// Parses an `ImageUri` naming Kindling's registry (see the module docs).
    pub fn parse(uri: &str) -> Result<Self, RefError> {
        let Some((registry, rest)) = uri.split_once('/') else {
            return Err(uri_error(uri, "it has no registry host"));
        };
        let (host, port) = split_port(registry).ok_or_else(|| uri_error(uri, "bad port"))?;
        let (account, region) = if host == "127.0.0.1" || host == "localhost" || host == "[::1]" {
            if port.is_none() {
                return Err(uri_error(uri, "a local registry address needs its port"));
            }
            (None, None)
        } else {
            let labels: Vec<&str> = host.split('.').collect();
            match labels.as_slice() {
                [account, "dkr", "ecr", region, "localhost"]
                    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    (Some((*account).to_string()), Some((*region).to_string()))
                }
                _ => {
                    return Err(uri_error(
                        uri,
                        "Kindling runs images from its own registry only: \
                         <account>.dkr.ecr.<region>.localhost:<port>/<repository>:<tag> or \
                         127.0.0.1:<port>/<repository>:<tag>",
                    ));
                }
            }
        };
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            let digest = Digest::parse(digest).map_err(RefError::Digest)?;
            // `repo:tag@digest`: the digest wins, as Docker reads it.
            let repo = repo.split_once(':').map_or(repo, |(r, _)| r);
            (repo, Reference::Digest(digest))
        } else if let Some((repo, tag)) = rest.rsplit_once(':') {
            if !valid_tag(tag) {
                return Err(RefError::Tag(tag.to_string()));
            }
            (repo, Reference::Tag(tag.to_string()))
        } else {
            (rest, Reference::Tag("latest".into()))
        };
        if !valid_repository(repository) {
            return Err(RefError::Repository(repository.to_string()));
        }
        Ok(Self {
            registry: registry.to_string(),
            account,
            region,
            repository: repository.to_string(),
            reference,
        })
    }

    /// The same image pinned to `digest` (Lambda's `ResolvedImageUri`).
    pub fn resolved(&self, digest: &Digest) -> String {
        format!("{}/{}@{digest}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}/{}:{t}", self.registry, self.repository),
            Reference::Digest(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
        }
    }
}

/// `host[:port]` → (host, port); `None` for a port that is not a number.
fn split_port(registry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = registry.strip_prefix('[') {
        let (_, after) = rest.split_once(']')?;
        let host_len = registry.len() - after.len();
        return match after.strip_prefix(':') {
            Some(p) => Some((&registry[..host_len], Some(p.parse().ok()?))),
            None if after.is_empty() => Some((registry, None)),
            None => None,
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((registry, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr() {
        for good in ["ab", "my-app", "team/app_1", "a.b/c-d/e_f", "x9"] {
            assert!(valid_repository(good), "{good}");
        }
        for bad in [
            "a", "", "App", "a//b", "/ab", "ab/", "a..b", "-ab", "ab-", "../ab", "a/../b", "a b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(!valid_repository(&"a".repeat(257)));
    }

    #[test]
    fn image_uris_in_both_forms() {
        let r =
            ImageRef::parse("123456789012.dkr.ecr.us-east-1.localhost:9001/team/app:v1").unwrap();
        assert_eq!(r.account.as_deref(), Some("123456789012"));
        assert_eq!(r.region.as_deref(), Some("us-east-1"));
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference, Reference::Tag("v1".into()));
        let d = Digest::of(b"x");
        let r = ImageRef::parse(&format!("127.0.0.1:5000/app@{d}")).unwrap();
        assert_eq!(r.reference, Reference::Digest(d.clone()));
        assert_eq!(r.resolved(&d), format!("127.0.0.1:5000/app@{d}"));
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(r.reference, Reference::Tag("latest".into()));
        assert_eq!(r.to_string(), "localhost:5000/app:latest");
        for bad in [
            "app:v1",
            "docker.io/library/alpine:3",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1",
            "127.0.0.1/app:v1",
            "127.0.0.1:x/app:v1",
            "127.0.0.1:5000/App:v1",
            "127.0.0.1:5000/app:-bad",
            "127.0.0.1:5000/app@sha256:abc",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_references() {
        assert_eq!(Reference::parse("v1").unwrap(), Reference::Tag("v1".into()));
        assert!(matches!(
            Reference::parse(&Digest::of(b"").to_string()).unwrap(),
            Reference::Digest(_)
        ));
        assert!(Reference::parse("../x").is_err());
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
