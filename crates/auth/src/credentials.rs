//! The access keys a server accepts, and the file they are read from.
//!
//! # File format
//!
//! UTF-8 text. Blank lines and lines whose first non-blank character is `#` or `;` are
//! comments. Two shapes are accepted, and may be mixed (one-line entries must come before the
//! first section):
//!
//! * one key per line: `ACCESS_KEY_ID SECRET_ACCESS_KEY [SESSION_TOKEN]`, fields separated by
//!   spaces or tabs;
//! * AWS shared-credentials style (so `~/.aws/credentials` works as is): `[profile-name]`
//!   sections with `aws_access_key_id = ...`, `aws_secret_access_key = ...` and optionally
//!   `aws_session_token = ...` (or the older `aws_security_token`). Other keys are ignored, and
//!   so are sections with neither key id nor secret (profiles that use SSO or roles); a section
//!   with only one of the two is an error.
//!
//! ```text
//! # kindling credentials
//! AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//!
//! [ci]
//! aws_access_key_id = AKIDCI0000000000
//! aws_secret_access_key = c2VjcmV0LWZvci1jaQ
//! ```
//!
//! A key id may appear only once; a file with no keys at all is an error. When an entry has a
//! session token, requests must carry it in `X-Amz-Security-Token`; when it has none, requests
//! carrying a token are refused.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret access key and the session token that goes with it, if any.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

/// Access key id → secret access key (and optional session token). `Debug` never shows
/// secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    keys: HashMap<String, Secret>,
}

/// Why a credentials file or text could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read credentials file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that fits neither format, or a key id given twice. `line` is 1-based.
    #[error("{}line {line}: {message}", origin(path.as_deref()))]
    Syntax {
        path: Option<PathBuf>,
        line: usize,
        message: String,
    },
    #[error("{}no access keys defined", origin(path.as_deref()))]
    Empty { path: Option<PathBuf> },
}

fn origin(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// A section being read: its header line, and the keys seen so far.
struct Section {
    line: usize,
    name: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

fn syntax(line: usize, message: impl Into<String>) -> CredentialsError {
    CredentialsError::Syntax {
        path: None,
        line,
        message: message.into(),
    }
}

/// The store being built and the line each key id came from.
#[derive(Default)]
struct Parser {
    out: Credentials,
    lines_of: HashMap<String, usize>,
}

impl Parser {
    fn add(
        &mut self,
        line: usize,
        id: String,
        secret: String,
        token: Option<String>,
    ) -> Result<(), CredentialsError> {
        if !valid_key_id(&id) {
            return Err(syntax(line, "the access key id is not valid"));
        }
        if !valid_secret(&secret) {
            return Err(syntax(line, "the secret access key is not valid"));
        }
        if token.as_deref().is_some_and(|t| !valid_secret(t)) {
            return Err(syntax(line, "the session token is not valid"));
        }
        if let Some(first) = self.lines_of.insert(id.clone(), line) {
            return Err(syntax(
                line,
                format!("access key id {id} is already defined on line {first}"),
            ));
        }
        self.out.insert(id, secret, token);
        Ok(())
    }

    fn finish(&mut self, s: Section) -> Result<(), CredentialsError> {
        match (s.access_key_id, s.secret_access_key) {
            (Some(id), Some(secret)) => self.add(s.line, id, secret, s.session_token),
            (None, None) => Ok(()),
            _ => Err(syntax(
                s.line,
                format!(
                    "section [{}] needs both aws_access_key_id and aws_secret_access_key",
                    s.name
                ),
            )),
        }
    }
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn valid_secret(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Credentials {
    /// An empty store (every request is then refused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a key; returns whether `access_key_id` was already there.
    pub fn insert(
        &mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> bool {
        self.keys
            .insert(
                access_key_id.into(),
                Secret {
                    secret_access_key: secret_access_key.into(),
                    session_token,
                },
            )
            .is_some()
    }

    /// `self` with one more key (no session token); for building stores in code and tests.
    pub fn with_key(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.insert(access_key_id, secret_access_key, None);
        self
    }

    /// Reads the file format described in the [module documentation](self).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CredentialsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            CredentialsError::Syntax { line, message, .. } => CredentialsError::Syntax {
                path: Some(path.to_path_buf()),
                line,
                message,
            },
            CredentialsError::Empty { .. } => CredentialsError::Empty {
                path: Some(path.to_path_buf()),
            },
            other => other,
        })
    }

    /// Parses the file format described in the [module documentation](self).
    pub fn parse(text: &str) -> Result<Self, CredentialsError> {
        let mut parser = Parser::default();
        let mut section: Option<Section> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(syntax(number, "a section header must end with ']'"));
                };
                if let Some(done) = section.take() {
                    parser.finish(done)?;
                }
                section = Some(Section {
                    line: number,
                    name: name.trim().to_string(),
                    access_key_id: None,
                    secret_access_key: None,
                    session_token: None,
                });
                continue;
            }
            match section.as_mut() {
                Some(s) => {
                    let Some((key, value)) = line.split_once('=') else {
                        return Err(syntax(
                            number,
                            format!("expected 'name = value' in section [{}]", s.name),
                        ));
                    };
                    let value = value.trim().to_string();
                    match key.trim().to_ascii_lowercase().as_str() {
                        "aws_access_key_id" => s.access_key_id = Some(value),
                        "aws_secret_access_key" => s.secret_access_key = Some(value),
                        "aws_session_token" | "aws_security_token" => s.session_token = Some(value),
                        _ => {}
                    }
                }
                None => {
                    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
                    let (id, secret, token) = match fields.as_slice() {
                        [id, secret] => (id, secret, None),
                        [id, secret, token] => (id, secret, Some(token.to_string())),
                        _ => {
                            return Err(syntax(
                                number,
                                "expected 'ACCESS_KEY_ID SECRET_ACCESS_KEY [SESSION_TOKEN]'",
                            ));
                        }
                    };
                    parser.add(number, id.to_string(), secret.to_string(), token)?;
                }
            }
        }
        if let Some(done) = section.take() {
            parser.finish(done)?;
        }
        if parser.out.is_empty() {
            return Err(CredentialsError::Empty { path: None });
        }
        Ok(parser.out)
    }

    /// How many access keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `access_key_id` is known.
    pub fn contains(&self, access_key_id: &str) -> bool {
        self.keys.contains_key(access_key_id)
    }

    /// The known access key ids, in no particular order.
    pub fn access_key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether `secret` is the secret access key of `access_key_id` (compared in constant
    /// time). For schemes that carry the key pair itself, such as the container registry's
    /// HTTP Basic authentication.
    pub fn check_secret(&self, access_key_id: &str, secret: &str) -> bool {
        self.keys.get(access_key_id).is_some_and(|s| {
            crate::crypto::constant_time_eq(s.secret_access_key.as_bytes(), secret.as_bytes())
        })
    }

    pub(crate) fn get(&self, access_key_id: &str) -> Option<&Secret> {
        self.keys.get(access_key_id)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.access_key_ids().collect();
        ids.sort_unstable();
        f.debug_struct("Credentials")
            .field("access_key_ids", &ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked_per_key() {
        let c = Credentials::parse("AKID1 s3cret\n").expect("parses");
        assert!(c.check_secret("AKID1", "s3cret"));
        assert!(!c.check_secret("AKID1", "s3cre"));
        assert!(!c.check_secret("AKID2", "s3cret"));
    }

    #[test]
    fn one_key_per_line() {
        let c = Credentials::parse(
            "# comment\n\n  AKID1 secret/one+x  \nAKID2\tsecret2\ttoken2\n; also a comment\n",
        )
        .expect("parses");
        assert_eq!(c.len(), 2);
        let one = c.get("AKID1").expect("AKID1");
        assert_eq!(one.secret_access_key, "secret/one+x");
        assert_eq!(one.session_token, None);
        assert_eq!(
            c.get("AKID2").and_then(|s| s.session_token.as_deref()),
            Some("token2")
        );
    }

    #[test]
    fn aws_ini_sections() {
        let c = Credentials::parse(
            "AKIDTOP topsecret\n\
             [default]\n\
             aws_access_key_id = AKIDDEFAULT\n\
             aws_secret_access_key=defsecret\n\
             region = us-east-1\n\
             \n\
             [sso-profile]\n\
             sso_start_url = https://example.com/start\n\
             [temp]\n\
             AWS_ACCESS_KEY_ID = ASIATEMP\n\
             aws_secret_access_key = tempsecret\n\
             aws_session_token = tok==\n",
        )
        .expect("parses");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.get("AKIDDEFAULT").map(|s| s.secret_access_key.as_str()),
            Some("defsecret")
        );
        assert_eq!(
            c.get("ASIATEMP").and_then(|s| s.session_token.as_deref()),
            Some("tok==")
        );
        assert!(c.contains("AKIDTOP"));
    }

    fn syntax_line(text: &str) -> usize {
        match Credentials::parse(text) {
            Err(CredentialsError::Syntax { line, .. }) => line,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(syntax_line("AKID\n"), 1);
        assert_eq!(syntax_line("A s\nB s t u\n"), 2);
        assert_eq!(syntax_line("A s\n\nA t\n"), 3);
        assert_eq!(syntax_line("[x\n"), 1);
        assert_eq!(syntax_line("[x]\naws_access_key_id = A\n"), 1);
        assert_eq!(syntax_line("[x]\nnot a pair\n"), 2);
        assert_eq!(syntax_line("[x]\naws_access_key_id = A\n[y]\n"), 1);
        assert_eq!(syntax_line("A/B secret\n"), 1);
        assert_eq!(
            syntax_line(
                "[x]\naws_access_key_id = A\naws_secret_access_key = s\n[y]\naws_access_key_id = A\naws_secret_access_key = t\n"
            ),
            4
        );
        assert!(matches!(
            Credentials::parse("# nothing\n"),
            Err(CredentialsError::Empty { .. })
        ));
    }

    #[test]
    fn from_file_reports_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good");
        std::fs::write(&good, "AKID secret\n").expect("write");
        assert!(
            Credentials::from_file(&good)
                .expect("reads")
                .contains("AKID")
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "AKID\n").expect("write");
        let message = Credentials::from_file(&bad).expect_err("bad").to_string();
        assert!(message.contains("bad: line 1:"), "{message}");
        let missing = Credentials::from_file(dir.path().join("missing")).expect_err("missing");
        assert!(matches!(missing, CredentialsError::Io { .. }));
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::new().with_key("AKID", "very-secret");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret"));
    }
}
