//! Random requests signed by botocore (the real Lambda client's serializer and signer, plus
//! hand-made `SigV4Auth` / `SigV4QueryAuth` requests with odd paths, queries and headers) must
//! verify, and must stop verifying when tampered with.
//!
//! Needs a Python with botocore: set `KINDLING_AUTH_BOTOCORE_PYTHON` to its path (for example
//! `/tmp/conf-venv/bin/python`); the test is `#[ignore]`d otherwise, and `scripts/test` runs it
//! with `--ignored` and the test venv's Python. Optional:
//! `KINDLING_AUTH_BOTOCORE_CASES` (default 400) and `KINDLING_AUTH_BOTOCORE_SEED` (default:
//! from the clock, printed so a failure can be replayed).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kindling_auth::{AuthError, Credentials, Payload, Request, Verifier};

fn unhex(field: &str) -> Vec<u8> {
    assert!(field.len().is_multiple_of(2), "odd hex field");
    (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("hex"))
        .collect()
}

fn text(field: &str) -> String {
    String::from_utf8(unhex(field)).expect("utf-8 field")
}

struct Case {
    kind: String,
    label: String,
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    access_key_id: String,
    secret: String,
    token: Option<String>,
    region: String,
    now: SystemTime,
}

impl Case {
    fn parse(line: &str) -> Self {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 12, "bad line: {line}");
        let blob = unhex(f[6]);
        let parts: Vec<&[u8]> = if blob.is_empty() {
            Vec::new()
        } else {
            blob.split(|&b| b == 0).collect()
        };
        let headers = parts
            .chunks(2)
            .map(|nv| {
                (
                    String::from_utf8(nv[0].to_vec()).expect("header name"),
                    nv[1].to_vec(),
                )
            })
            .collect();
        let token = text(f[9]);
        let now: i64 = text(f[11]).parse().expect("time");
        Self {
            kind: text(f[0]),
            label: text(f[1]),
            method: text(f[2]),
            path: text(f[3]),
            query: text(f[4]),
            body: unhex(f[5]),
            headers,
            access_key_id: text(f[7]),
            secret: text(f[8]),
            token: (!token.is_empty()).then_some(token),
            region: text(f[10]),
            now: UNIX_EPOCH + Duration::from_secs(u64::try_from(now).expect("after 1970")),
        }
    }

    fn verify(&self, verifier: &Verifier, method: &str, body: &[u8]) -> Result<String, AuthError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        verifier
            .verify(
                &Request {
                    method,
                    path: &self.path,
                    query: &self.query,
                    headers: &headers,
                    payload: Payload::Bytes(body),
                },
                self.now,
            )
            .map(|id| id.access_key_id)
    }

    /// Whether a header name is sent more than once (botocore signs the values joined).
    fn has_repeated_header(&self) -> bool {
        self.headers.iter().enumerate().any(|(i, (n, _))| {
            self.headers[..i]
                .iter()
                .any(|(m, _)| m.eq_ignore_ascii_case(n))
        })
    }

    /// The case with each repeated header sent once, its values joined with `,`: the same
    /// canonical request (each value is trimmed and its inner whitespace collapsed anyway).
    fn joined(&self) -> Self {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in &self.headers {
            match headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                Some((_, joined)) => {
                    joined.push(b',');
                    joined.extend_from_slice(value.trim_ascii());
                }
                None => headers.push((name.clone(), value.trim_ascii_end().to_vec())),
            }
        }
        Self {
            kind: self.kind.clone(),
            label: self.label.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
            headers,
            access_key_id: self.access_key_id.clone(),
            secret: self.secret.clone(),
            token: self.token.clone(),
            region: self.region.clone(),
            now: self.now,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} {} {}?{} headers={:?} body={} bytes",
            self.kind,
            self.label,
            self.method,
            self.path,
            self.query,
            self.headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>(),
            self.body.len()
        )
    }
}

#[test]
#[ignore = "needs KINDLING_AUTH_BOTOCORE_PYTHON (a Python with botocore); scripts/test runs it"]
fn botocore_signed_requests_verify() {
    let python = std::env::var_os("KINDLING_AUTH_BOTOCORE_PYTHON").expect(
        "set KINDLING_AUTH_BOTOCORE_PYTHON to a Python with botocore \
         (e.g. .venv/bin/python) to sign random requests with botocore",
    );
    let cases: u32 = std::env::var("KINDLING_AUTH_BOTOCORE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("KINDLING_AUTH_BOTOCORE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("botocore cases: {cases}, KINDLING_AUTH_BOTOCORE_SEED={seed}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_sign.py");
    let output = Command::new(&python)
        .arg(&script)
        .args(["random", &seed.to_string(), &cases.to_string()])
        .output()
        .expect("run python");
    assert!(
        output.status.code() != Some(3),
        "botocore is not importable by {} (install tests/requirements.txt): {}",
        Path::new(&python).display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    assert!(
        output.status.success(),
        "botocore_sign.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let mut seen = 0;
    let mut labels = std::collections::BTreeMap::<String, u32>::new();
    for line in stdout.lines() {
        let case = Case::parse(line);
        *labels
            .entry(format!("{}/{}", case.kind, case.label))
            .or_default() += 1;
        let mut store = Credentials::new();
        store.insert(&case.access_key_id, &case.secret, case.token.clone());
        let verifier = Verifier::new(store).with_region(&case.region);
        // A signed header sent twice is refused (the services read the first value only);
        // the same request with the values joined in one header verifies.
        let case = if case.has_repeated_header() {
            assert!(
                matches!(
                    case.verify(&verifier, &case.method, &case.body),
                    Err(AuthError::IncompleteSignature(_))
                ),
                "a repeated signed header was accepted: {}",
                case.describe()
            );
            case.joined()
        } else {
            case
        };

        assert_eq!(
            case.verify(&verifier, &case.method, &case.body),
            Ok(case.access_key_id.clone()),
            "botocore-signed request refused: {}",
            case.describe()
        );

        let mut wrong = Credentials::new();
        wrong.insert(&case.access_key_id, "not-the-secret", case.token.clone());
        assert_eq!(
            case.verify(&Verifier::new(wrong), &case.method, &case.body),
            Err(AuthError::SignatureDoesNotMatch),
            "{}",
            case.describe()
        );

        let other_method = if case.method == "GET" { "HEAD" } else { "GET" };
        assert_eq!(
            case.verify(&verifier, other_method, &case.body),
            Err(AuthError::SignatureDoesNotMatch),
            "{}",
            case.describe()
        );

        let mut body = case.body.clone();
        match body.first_mut() {
            Some(b) => *b ^= 1,
            None => body.push(b'x'),
        }
        // Refused either way: by the signature, or first by a signed X-Amz-Content-Sha256
        // header (which AWS JS SDK v3's signer adds) that no longer matches the body.
        let refused = case.verify(&verifier, &case.method, &body);
        assert!(
            matches!(
                refused,
                Err(AuthError::SignatureDoesNotMatch | AuthError::InvalidSignature(_))
            ),
            "{refused:?}: {}",
            case.describe()
        );
        seen += 1;
    }
    assert_eq!(seen, cases, "every case was checked");
    println!("checked: {labels:?}");
}
