//! The registry driven through its router, as a client would.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use kindling_edge::gate::AuthPolicy;
use kindling_oci::Digest;
use tower::ServiceExt;

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn state(dir: &std::path::Path, policy: AuthPolicy) -> RegistryState {
    let limits = Limits {
        max_blob: 1 << 20,
        max_total: 4 << 20,
    };
    let storage = Arc::new(Storage::open(dir, limits).unwrap());
    RegistryState::new(storage, Arc::new(policy))
}

async fn send(
    s: &RegistryState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router(s.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

fn local() -> AuthPolicy {
    AuthPolicy::local(SECRET, "us-east-1")
}

#[tokio::test]
async fn chunked_and_monolithic_uploads_then_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), local());
    let (st, h, _) = send(&s, "GET", "/v2/", &[], vec![]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["docker-distribution-api-version"], "registry/2.0");

    // Chunked: POST, two PATCHes, PUT.
    let data = b"hello layer data".to_vec();
    let digest = Digest::of(&data);
    let (st, h, _) = send(&s, "POST", "/v2/team/app/blobs/uploads/", &[], vec![]).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let loc = h["location"].to_str().unwrap().to_string();
    let (st, h, _) = send(
        &s,
        "PATCH",
        &loc,
        &[("content-range", "0-4")],
        data[..5].to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(h["range"], "0-4");
    // A chunk that does not continue the upload.
    let (st, _, body) = send(
        &s,
        "PATCH",
        &loc,
        &[("content-range", "3-6")],
        data[3..].to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(code(&body), "BLOB_UPLOAD_INVALID");
    let (st, _, _) = send(&s, "PATCH", &loc, &[], data[5..10].to_vec()).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let put = format!("{loc}?digest={digest}");
    let (st, h, _) = send(&s, "PUT", &put, &[], data[10..].to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(h["docker-content-digest"], digest.to_string().as_str());
    let (st, h, body) = send(
        &s,
        "HEAD",
        &format!("/v2/team/app/blobs/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert!(body.is_empty());
    let (_, _, body) = send(
        &s,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(body, data);
    // Another repository does not hold it until mounted.
    let (st, _, body) = send(&s, "GET", &format!("/v2/other/blobs/{digest}"), &[], vec![]).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN".into())
    );
    let mount = format!("/v2/other/blobs/uploads/?mount={digest}&from=team/app");
    let (st, _, _) = send(&s, "POST", &mount, &[], vec![]).await;
    assert_eq!(st, StatusCode::CREATED);

    // Monolithic config blob, wrong digest refused.
    let config =
        br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bootstrap"]}}"#.to_vec();
    let cd = Digest::of(&config);
    let bad = format!("/v2/team/app/blobs/uploads/?digest={digest}");
    let (st, _, body) = send(&s, "POST", &bad, &[], config.clone()).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    let good = format!("/v2/team/app/blobs/uploads/?digest={cd}");
    let (st, _, _) = send(&s, "POST", &good, &[], config.clone()).await;
    assert_eq!(st, StatusCode::CREATED);

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": kindling_oci::manifest::OCI_MANIFEST,
        "config": {"mediaType": kindling_oci::manifest::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.to_string(), "size": data.len()}],
    })
    .to_string();
    let ct = [("content-type", kindling_oci::manifest::OCI_MANIFEST)];
    let (st, h, _) = send(
        &s,
        "PUT",
        "/v2/team/app/manifests/v1",
        &ct,
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let md = Digest::of(manifest.as_bytes());
    assert_eq!(h["docker-content-digest"], md.to_string().as_str());
    let (st, h, body) = send(
        &s,
        "GET",
        &format!("/v2/team/app/manifests/{md}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], kindling_oci::manifest::OCI_MANIFEST);
    assert_eq!(body, manifest.as_bytes());
    let (_, _, body) = send(&s, "GET", "/v2/team/app/tags/list", &[], vec![]).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["v1"]));
    // The same manifest in a repository without its blobs.
    let (st, _, body) = send(
        &s,
        "PUT",
        "/v2/empty/manifests/v1",
        &ct,
        manifest.into_bytes(),
    )
    .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let (st, _, body) = send(
        &s,
        "PUT",
        "/v2/team/app/manifests/v2",
        &ct,
        b"{nope".to_vec(),
    )
    .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID".into())
    );
    let (st, _, body) = send(&s, "GET", "/v2/team/app/manifests/nope", &[], vec![]).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into())
    );
    let (st, _, body) = send(&s, "GET", "/v2/nothing/tags/list", &[], vec![]).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN".into())
    );
    let (st, _, body) = send(&s, "GET", "/v2/Bad..Name/tags/list", &[], vec![]).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "NAME_INVALID".into())
    );
    let (st, _, body) = send(&s, "GET", "/v2/team/app/blobs/sha256:xyz", &[], vec![]).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );

    // Resolution: the layer is not a tar, so the image is refused as corrupt.
    let err = s
        .storage()
        .resolve(
            "team/app",
            &kindling_oci::Reference::Tag("v1".into()),
            "amd64",
            1 << 30,
        )
        .unwrap_err();
    assert!(matches!(err, ResolveError::Invalid(_)), "{err}");

    // Delete by digest removes the tag too.
    let (st, _, _) = send(
        &s,
        "DELETE",
        &format!("/v2/team/app/manifests/{md}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _, _) = send(&s, "GET", "/v2/team/app/manifests/v1", &[], vec![]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), local());
    let big = vec![0u8; (1 << 20) + 1];
    let d = Digest::of(&big);
    let (st, _, body) = send(
        &s,
        "POST",
        &format!("/v2/app/blobs/uploads/?digest={d}"),
        &[],
        big,
    )
    .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID".into())
    );
    assert_eq!(s.storage().used(), 0);
    // Nothing left in uploads.
    assert_eq!(
        std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn shared_mode_wants_an_operators_key_as_basic_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let creds = kindling_auth::Credentials::parse("AKIDOPERATOR s3cretkey\n").unwrap();
    let s = state(
        dir.path(),
        AuthPolicy::new(creds, true, SECRET, "us-east-1"),
    );
    let (st, h, body) = send(&s, "GET", "/v2/", &[], vec![]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHORIZED");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    use base64::Engine;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AKIDOPERATOR:s3cretkey")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AKIDOPERATOR:wrong")
    );
    let (st, _, _) = send(&s, "GET", "/v2/", &[("authorization", &good)], vec![]).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = send(&s, "GET", "/v2/", &[("authorization", &bad)], vec![]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// A gzip'd tar with one file.
fn layer(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

async fn push_blob(s: &RegistryState, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::of(data);
    let uri = format!("/v2/{repo}/blobs/uploads/?digest={d}");
    let (st, _, _) = send(s, "POST", &uri, &[], data.to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    d
}

#[tokio::test]
async fn images_resolve_through_an_index_to_their_platform() {
    use kindling_oci::manifest::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), local());
    let l = layer("bootstrap", b"#!binary");
    let ld = push_blob(&s, "app", &l).await;
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bootstrap"],"WorkingDir":"/var/task","Env":["A=1"]}}"#;
    let cd = push_blob(&s, "app", config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": l.len()}],
    })
    .to_string();
    let md = Digest::of(manifest.as_bytes());
    let ct = [("content-type", OCI_MANIFEST)];
    let (st, _, _) = send(
        &s,
        "PUT",
        &format!("/v2/app/manifests/{md}"),
        &ct,
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    })
    .to_string();
    let ict = [("content-type", OCI_INDEX)];
    let (st, _, _) = send(
        &s,
        "PUT",
        "/v2/app/manifests/multi",
        &ict,
        index.clone().into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    // An index naming a manifest the repository lacks is refused.
    let dangling = index.replace(&md.hex().to_string(), &"0".repeat(64));
    let (st, _, body) = send(
        &s,
        "PUT",
        "/v2/app/manifests/bad",
        &ict,
        dangling.into_bytes(),
    )
    .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );

    let tag = kindling_oci::Reference::Tag("multi".into());
    let r = s.storage().resolve("app", &tag, "amd64", 1 << 30).unwrap();
    assert_eq!(r.manifest_digest, md);
    assert_eq!(r.reference_digest, Digest::of(index.as_bytes()));
    assert_eq!(
        r.config.entrypoint.as_deref(),
        Some(&["/bootstrap".to_string()][..])
    );
    assert_eq!(r.layers, vec![(ld.clone(), l.len() as u64)]);
    assert_eq!(r.unpacked_size, 8);
    // No arm64 image in the index.
    let err = s
        .storage()
        .resolve("app", &tag, "arm64", 1 << 30)
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Invalid(ref m) if m.contains("linux/arm64")),
        "{err}"
    );
    // Over the unpacked limit.
    let err = s.storage().resolve("app", &tag, "amd64", 4).unwrap_err();
    assert!(matches!(err, ResolveError::Invalid(_)), "{err}");
    // A layer whose bytes changed on disk is caught by its digest.
    std::fs::write(s.storage().blob_path(&ld), layer("bootstrap", b"#!evil!!")).unwrap();
    let err = s
        .storage()
        .resolve("app", &tag, "amd64", 1 << 30)
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Invalid(ref m) if m.contains("corrupt")),
        "{err}"
    );
    let missing = kindling_oci::Reference::Tag("nope".into());
    assert!(matches!(
        s.storage().resolve("app", &missing, "amd64", 1 << 30),
        Err(ResolveError::NotFound(_))
    ));
}

#[tokio::test]
async fn uploads_in_progress_count_against_the_registry_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), local());
    let chunk = vec![7u8; 1 << 20];
    let mut accepted = Vec::new();
    // Five uploads of one blob-size each: the registry holds 4 MiB in all.
    for _ in 0..5 {
        let (st, h, _) = send(&s, "POST", "/v2/app/blobs/uploads/", &[], vec![]).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let at = h["location"].to_str().unwrap().to_string();
        let (st, _, body) = send(&s, "PATCH", &at, &[], chunk.clone()).await;
        if st == StatusCode::ACCEPTED {
            accepted.push(at);
        } else {
            assert_eq!((st, code(&body)), (StatusCode::FORBIDDEN, "DENIED".into()));
        }
    }
    assert_eq!(accepted.len(), 4, "the fifth upload is refused");
    // Cancelling one gives its room back.
    let (st, _, _) = send(&s, "DELETE", &accepted[0], &[], vec![]).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, h, _) = send(&s, "POST", "/v2/app/blobs/uploads/", &[], vec![]).await;
    let at = h["location"].to_str().unwrap().to_string();
    let (st, _, _) = send(&s, "PATCH", &at, &[], chunk.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // Finishing one keeps its bytes counted once (as a blob).
    let d = Digest::of(&chunk);
    let (st, _, _) = send(&s, "PUT", &format!("{at}?digest={d}"), &[], vec![]).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(s.storage().used(), 1 << 20);
    let (_, h, _) = send(&s, "POST", "/v2/app/blobs/uploads/", &[], vec![]).await;
    let at = h["location"].to_str().unwrap().to_string();
    let (st, _, _) = send(&s, "PATCH", &at, &[], vec![1u8; 10]).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "4 MiB are held");
}

#[tokio::test]
async fn an_oversized_image_config_is_refused_before_it_is_read() {
    use kindling_oci::manifest::{MAX_CONFIG, OCI_CONFIG, OCI_MANIFEST};
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_blob: 8 << 20,
        max_total: 32 << 20,
    };
    let storage = Arc::new(Storage::open(dir.path(), limits).unwrap());
    let s = RegistryState::new(storage, Arc::new(local()));
    let l = layer("bootstrap", b"#!binary");
    let ld = push_blob(&s, "app", &l).await;
    // Valid JSON, padded past the limit (the whole blob would be read into memory).
    let mut config = br#"{"os":"linux"}"#.to_vec();
    config.resize(MAX_CONFIG as usize + 1, b' ');
    let cd = push_blob(&s, "app", &config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": l.len()}],
    })
    .to_string();
    let ct = [("content-type", OCI_MANIFEST)];
    let (st, _, _) = send(
        &s,
        "PUT",
        "/v2/app/manifests/big",
        &ct,
        manifest.into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let tag = kindling_oci::Reference::Tag("big".into());
    let err = s
        .storage()
        .resolve("app", &tag, "amd64", 1 << 30)
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Invalid(ref m) if m.contains("config")),
        "{err}"
    );
}

/// A request body whose chunks arrive when the test sends them.
struct Trickle(tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for Trickle {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn an_upload_whose_handler_is_dropped_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), local());
    let uploads = dir.path().join("uploads");
    let files = || std::fs::read_dir(&uploads).unwrap().count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // A monolithic upload (POST with ?digest=) and a chunk of a chunked one, each cut
    // half-way by its connection going away (the handler's future dropped).
    let digest = Digest::of(b"never finished");
    for method in ["POST", "PATCH"] {
        let uri = if method == "POST" {
            format!("/v2/app/blobs/uploads/?digest={digest}")
        } else {
            let (st, h, _) = send(&s, "POST", "/v2/app/blobs/uploads/", &[], vec![]).await;
            assert_eq!(st, StatusCode::ACCEPTED);
            h["location"].to_str().unwrap().to_string()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Body::new(Trickle(rx)))
            .unwrap();
        let task = tokio::spawn(router(s.clone()).oneshot(req));
        tx.send(bytes::Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        // Wait until the bytes are on disk, then drop the handler.
        while !std::fs::read_dir(&uploads)
            .unwrap()
            .flatten()
            .any(|e| e.metadata().unwrap().len() == 10)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the chunk never landed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        while files() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{method}: the upload's file stays after its handler was dropped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
