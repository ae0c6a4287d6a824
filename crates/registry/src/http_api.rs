//! The `/v2/` API: request routing, authentication, and each operation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use kindling_edge::gate::{AuthPolicy, context};
use kindling_oci::manifest::{self, ParsedManifest};
use kindling_oci::reference::valid_repository;
use kindling_oci::{Digest, Reference};
use sha2::{Digest as _, Sha256};

use crate::body::{append, file_body, read_small};
use crate::error::RegistryError;
use crate::storage::Storage;

/// Uploads in progress at once (each holds a file).
const MAX_UPLOADS: usize = 256;
/// An upload nobody touched for this long is abandoned: its file is removed when the next
/// upload starts.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// An upload in progress: its repository, and the hash and size of what arrived so far.
/// Its bytes hold room in the storage, and its file stays, until it is dropped (finished,
/// cancelled, failed, expired, or its request's handler dropped half-way).
struct Upload {
    repo: String,
    hasher: Sha256,
    written: u64,
    touched: std::time::Instant,
    storage: Arc<Storage>,
    /// Its file (moved into the blob store when the upload completes).
    path: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.storage.release(self.written);
        // Whatever is still at the upload's path is abandoned: removed, so no file stays
        // outside the storage's accounting (a completed upload's file has been moved).
        let path = std::mem::take(&mut self.path);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    let _ = std::fs::remove_file(path);
                });
            }
            Err(_) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// What the registry serves with.
#[derive(Clone)]
pub struct RegistryState {
    storage: Arc<Storage>,
    policy: Arc<AuthPolicy>,
    /// Uploads by id; an upload is taken out while a request appends to it.
    uploads: Arc<Mutex<HashMap<String, Upload>>>,
}

impl RegistryState {
    pub fn new(storage: Arc<Storage>, policy: Arc<AuthPolicy>) -> Self {
        Self {
            storage,
            policy,
            uploads: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    fn take_upload(&self, id: &str) -> Option<Upload> {
        self.uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    fn put_upload(&self, id: &str, mut upload: Upload) {
        upload.touched = std::time::Instant::now();
        self.uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), upload);
    }

    /// Forgets uploads idle past [`UPLOAD_IDLE`]; returns their files to remove.
    fn expire_uploads(&self) -> Vec<std::path::PathBuf> {
        let mut uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
        let stale: Vec<String> = uploads
            .iter()
            .filter(|(_, u)| u.touched.elapsed() > UPLOAD_IDLE)
            .map(|(id, _)| id.clone())
            .collect();
        stale
            .into_iter()
            .map(|id| {
                uploads.remove(&id);
                self.storage.upload_path(&id)
            })
            .collect()
    }
}

/// The registry's router (mounted for [`kindling_edge::ServiceId::Registry`]).
pub fn router(state: RegistryState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// What a `/v2/` path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    /// An upload; `None`: start one.
    Upload(String, Option<String>),
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Route::Base);
    }
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_string()));
    }
    if let Some((name, tail)) = rest.rsplit_once("/blobs/uploads") {
        let id = tail.trim_start_matches('/');
        return Some(Route::Upload(
            name.to_string(),
            (!id.is_empty()).then(|| id.to_string()),
        ));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Route::Manifest(name.to_string(), reference.to_string()));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Route::Blob(name.to_string(), digest.to_string()));
    }
    None
}

async fn dispatch(State(state): State<RegistryState>, req: Request) -> Response<Body> {
    let head_only = req.method() == Method::HEAD;
    let mut res = match serve(&state, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(head_only),
    };
    res.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    res
}

/// Requests the policy wants signed must carry an operator's key pair as Basic credentials.
fn authenticate(policy: &AuthPolicy, parts: &Parts) -> Result<(), RegistryError> {
    let (origin, _) = context(parts);
    if !policy.must_sign(origin) {
        return Ok(());
    }
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(RegistryError::Unauthorized)?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or(RegistryError::Unauthorized)?;
    let decoded = B64
        .decode(encoded.trim())
        .map_err(|_| RegistryError::Unauthorized)?;
    let text = String::from_utf8(decoded).map_err(|_| RegistryError::Unauthorized)?;
    let (id, secret) = text.split_once(':').ok_or(RegistryError::Unauthorized)?;
    if policy.operators.check_secret(id, secret) {
        Ok(())
    } else {
        Err(RegistryError::Unauthorized)
    }
}

fn repo_name(name: &str) -> Result<String, RegistryError> {
    if valid_repository(name) {
        Ok(name.to_string())
    } else {
        Err(RegistryError::NameInvalid(name.to_string()))
    }
}

fn digest_of(text: &str) -> Result<Digest, RegistryError> {
    Digest::parse(text).map_err(|e| RegistryError::DigestInvalid(e.to_string()))
}

fn query_param(parts: &Parts, name: &str) -> Option<String> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Internal(format!("a blocking task failed: {e}")))?
}

fn respond(status: StatusCode, headers: &[(&'static str, String)], body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            res.headers_mut().insert(*k, v);
        }
    }
    res
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(
        status,
        &[("content-type", "application/json".into())],
        Body::from(value.to_string()),
    )
}

async fn serve(state: &RegistryState, req: Request) -> Result<Response<Body>, RegistryError> {
    let (parts, body) = req.into_parts();
    authenticate(&state.policy, &parts)?;
    let route = route(parts.uri.path()).ok_or_else(|| {
        RegistryError::Unsupported(format!("no such endpoint: {}", parts.uri.path()))
    })?;
    let method = parts.method.clone();
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        (Route::Catalog, Method::GET) => catalog(state, &parts).await,
        (Route::Tags(name), Method::GET) => tags(state, &parts, repo_name(&name)?).await,
        (Route::Manifest(name, reference), m) => {
            let repo = repo_name(&name)?;
            let reference = Reference::parse(&reference).map_err(|e| match e {
                kindling_oci::RefError::Digest(d) => RegistryError::DigestInvalid(d.to_string()),
                other => RegistryError::TagInvalid(other.to_string()),
            })?;
            match m {
                Method::GET | Method::HEAD => {
                    get_manifest(state, repo, reference, m == Method::HEAD).await
                }
                Method::PUT => put_manifest(state, &parts, body, repo, reference).await,
                Method::DELETE => {
                    let storage = Arc::clone(&state.storage);
                    blocking(move || storage.delete_manifest(&repo, &reference)).await?;
                    Ok(respond(StatusCode::ACCEPTED, &[], Body::empty()))
                }
                other => Err(RegistryError::Unsupported(format!("{other} on a manifest"))),
            }
        }
        (Route::Blob(name, digest), m) => {
            let repo = repo_name(&name)?;
            let digest = digest_of(&digest)?;
            match m {
                Method::GET | Method::HEAD => {
                    get_blob(state, repo, digest, m == Method::HEAD).await
                }
                Method::DELETE => {
                    let storage = Arc::clone(&state.storage);
                    blocking(move || storage.unlink_blob(&repo, &digest)).await?;
                    Ok(respond(StatusCode::ACCEPTED, &[], Body::empty()))
                }
                other => Err(RegistryError::Unsupported(format!("{other} on a blob"))),
            }
        }
        (Route::Upload(name, None), Method::POST) => {
            start_upload(state, &parts, body, repo_name(&name)?).await
        }
        (Route::Upload(name, Some(id)), m) => {
            let repo = repo_name(&name)?;
            // Ids are the UUIDs this registry hands out (they name files): nothing else is one.
            if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(RegistryError::BlobUploadUnknown);
            }
            match m {
                Method::PATCH => patch_upload(state, &parts, body, repo, id).await,
                Method::PUT => finish_upload(state, &parts, body, repo, id).await,
                Method::GET => {
                    let upload = state
                        .take_upload(&id)
                        .ok_or(RegistryError::BlobUploadUnknown)?;
                    let (written, same_repo) = (upload.written, upload.repo == repo);
                    state.put_upload(&id, upload);
                    if !same_repo {
                        return Err(RegistryError::BlobUploadUnknown);
                    }
                    Ok(upload_status(StatusCode::NO_CONTENT, &repo, &id, written))
                }
                Method::DELETE => {
                    let upload = state
                        .take_upload(&id)
                        .ok_or(RegistryError::BlobUploadUnknown)?;
                    if upload.repo != repo {
                        state.put_upload(&id, upload);
                        return Err(RegistryError::BlobUploadUnknown);
                    }
                    let _ = tokio::fs::remove_file(state.storage.upload_path(&id)).await;
                    Ok(respond(StatusCode::NO_CONTENT, &[], Body::empty()))
                }
                other => Err(RegistryError::Unsupported(format!("{other} on an upload"))),
            }
        }
        (_, m) => Err(RegistryError::Unsupported(format!(
            "{m} {}",
            parts.uri.path()
        ))),
    }
}

fn page(parts: &Parts, items: Vec<String>) -> Result<(Vec<String>, bool), RegistryError> {
    let last = query_param(parts, "last");
    let n = match query_param(parts, "n") {
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| RegistryError::Unsupported(format!("n={n} is not a number")))?,
        ),
        None => None,
    };
    let mut items: Vec<String> = match last {
        Some(last) => items.into_iter().filter(|t| *t > last).collect(),
        None => items,
    };
    let more = n.is_some_and(|n| items.len() > n);
    if let Some(n) = n {
        items.truncate(n);
    }
    Ok((items, more))
}

async fn catalog(state: &RegistryState, parts: &Parts) -> Result<Response<Body>, RegistryError> {
    let storage = Arc::clone(&state.storage);
    let repos = blocking(move || Ok(storage.repositories())).await?;
    let (repos, more) = page(parts, repos)?;
    let mut res = json(
        StatusCode::OK,
        &serde_json::json!({ "repositories": repos }),
    );
    if more && let Some(last) = repos.last() {
        let link = format!("</v2/_catalog?last={last}&n={}>; rel=\"next\"", repos.len());
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(http::header::LINK, v);
        }
    }
    Ok(res)
}

async fn tags(
    state: &RegistryState,
    parts: &Parts,
    repo: String,
) -> Result<Response<Body>, RegistryError> {
    let storage = Arc::clone(&state.storage);
    let r = repo.clone();
    let tags = blocking(move || {
        if !storage.repo_exists(&r) {
            return Err(RegistryError::NameUnknown(r));
        }
        storage.tags(&r)
    })
    .await?;
    let (tags, more) = page(parts, tags)?;
    let mut res = json(
        StatusCode::OK,
        &serde_json::json!({ "name": repo, "tags": tags }),
    );
    if more && let Some(last) = tags.last() {
        let link = format!(
            "</v2/{repo}/tags/list?last={last}&n={}>; rel=\"next\"",
            tags.len()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(http::header::LINK, v);
        }
    }
    Ok(res)
}

async fn get_manifest(
    state: &RegistryState,
    repo: String,
    reference: Reference,
    head_only: bool,
) -> Result<Response<Body>, RegistryError> {
    let storage = Arc::clone(&state.storage);
    let shown = format!("{repo}:{reference}");
    let found = blocking(move || storage.manifest(&repo, &reference)).await?;
    let (digest, media_type, bytes) = found.ok_or(RegistryError::ManifestUnknown(shown))?;
    let headers = [
        ("content-type", media_type),
        ("docker-content-digest", digest.to_string()),
        ("content-length", bytes.len().to_string()),
        ("etag", format!("\"{digest}\"")),
    ];
    let body = if head_only {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    Ok(respond(StatusCode::OK, &headers, body))
}

async fn put_manifest(
    state: &RegistryState,
    parts: &Parts,
    body: Body,
    repo: String,
    reference: Reference,
) -> Result<Response<Body>, RegistryError> {
    let idle = context(parts).1.idle_timeout();
    let bytes = read_small(body, manifest::MAX_MANIFEST, idle).await?;
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = manifest::parse_manifest(&bytes, content_type.as_deref())
        .map_err(|e| RegistryError::ManifestInvalid(e.to_string()))?;
    if let Reference::Digest(d) = &reference {
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(RegistryError::DigestInvalid(format!(
                "the manifest's digest is {actual}, not {d}"
            )));
        }
    }
    let storage = Arc::clone(&state.storage);
    let r = repo.clone();
    let digest = blocking(move || {
        for d in parsed.references() {
            let present = match &parsed {
                ParsedManifest::Image { .. } => storage.blob_in_repo(&r, &d.digest) == Some(d.size),
                ParsedManifest::Index { .. } => storage
                    .manifest_digest(&r, &Reference::Digest(d.digest.clone()))?
                    .is_some(),
            };
            if !present {
                return Err(RegistryError::ManifestBlobUnknown(d.digest.to_string()));
            }
        }
        let tag = match &reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        storage.put_manifest(&r, &bytes, parsed.media_type(), tag)
    })
    .await?;
    Ok(respond(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{repo}/manifests/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    ))
}

async fn get_blob(
    state: &RegistryState,
    repo: String,
    digest: Digest,
    head_only: bool,
) -> Result<Response<Body>, RegistryError> {
    let storage = Arc::clone(&state.storage);
    let d = digest.clone();
    let opened = blocking(move || {
        let Some(size) = storage.blob_in_repo(&repo, &d) else {
            return Ok(None);
        };
        let file = if head_only {
            None
        } else {
            Some(std::fs::File::open(storage.blob_path(&d))?)
        };
        Ok(Some((size, file)))
    })
    .await?;
    let (size, file) = opened.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    let headers = [
        ("content-type", "application/octet-stream".to_string()),
        ("docker-content-digest", digest.to_string()),
        ("content-length", size.to_string()),
        ("etag", format!("\"{digest}\"")),
    ];
    let body = match file {
        Some(f) => file_body(f, size),
        None => Body::empty(),
    };
    Ok(respond(StatusCode::OK, &headers, body))
}

fn upload_status(status: StatusCode, repo: &str, id: &str, written: u64) -> Response<Body> {
    let range = if written == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", written - 1)
    };
    respond(
        status,
        &[
            ("location", format!("/v2/{repo}/blobs/uploads/{id}")),
            ("range", range),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

fn created(repo: &str, digest: &Digest) -> Response<Body> {
    respond(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{repo}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn start_upload(
    state: &RegistryState,
    parts: &Parts,
    body: Body,
    repo: String,
) -> Result<Response<Body>, RegistryError> {
    if let (Some(mount), Some(from)) = (query_param(parts, "mount"), query_param(parts, "from")) {
        let digest = digest_of(&mount)?;
        if valid_repository(&from) {
            let storage = Arc::clone(&state.storage);
            let (r, d) = (repo.clone(), digest.clone());
            let linked = blocking(move || {
                if storage.blob_in_repo(&from, &d).is_none() {
                    return Ok(false);
                }
                storage.link_blob(&r, &d)
            })
            .await?;
            if linked {
                return Ok(created(&repo, &digest));
            }
        }
        // Not mountable: an ordinary upload, as the spec says.
    }
    let monolithic = query_param(parts, "digest")
        .map(|d| digest_of(&d))
        .transpose()?;
    if monolithic.is_none() && declared_length(parts).is_some_and(|n| n > 0) {
        return Err(RegistryError::BlobUploadInvalid(
            "a body on POST needs ?digest= (monolithic upload)".into(),
        ));
    }
    for stale in state.expire_uploads() {
        let _ = tokio::fs::remove_file(stale).await;
    }
    let in_progress = state
        .uploads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    if in_progress >= MAX_UPLOADS {
        return Err(RegistryError::Denied(format!(
            "{MAX_UPLOADS} uploads are in progress; finish or cancel some"
        )));
    }
    if let Some(n) = declared_length(parts) {
        state.storage.check_room(n)?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let path = state.storage.upload_path(&id);
    tokio::fs::File::create(&path).await?;
    let upload = Upload {
        repo: repo.clone(),
        hasher: Sha256::new(),
        written: 0,
        touched: std::time::Instant::now(),
        storage: Arc::clone(&state.storage),
        path: path.clone(),
    };
    match monolithic {
        Some(digest) => {
            let mut upload = upload;
            let result = write_chunk(state, parts, body, &id, &mut upload).await;
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e);
            }
            complete(state, &id, upload, &digest).await?;
            Ok(created(&repo, &digest))
        }
        None => {
            state.put_upload(&id, upload);
            Ok(upload_status(StatusCode::ACCEPTED, &repo, &id, 0))
        }
    }
}

/// Appends the request body to upload `id`.
async fn write_chunk(
    state: &RegistryState,
    parts: &Parts,
    body: Body,
    id: &str,
    upload: &mut Upload,
) -> Result<(), RegistryError> {
    let idle = context(parts).1.idle_timeout();
    let path = state.storage.upload_path(id);
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await?;
    let limit = state.storage.limits.max_blob;
    let storage = Arc::clone(&state.storage);
    append(
        body,
        &mut file,
        &mut upload.hasher,
        &mut upload.written,
        limit,
        idle,
        |n| storage.reserve(n),
    )
    .await?;
    state.storage.check_room(upload.written)?;
    Ok(())
}

/// Checks the digest, fsyncs the data and moves it into the blob store.
async fn complete(
    state: &RegistryState,
    id: &str,
    upload: Upload,
    digest: &Digest,
) -> Result<(), RegistryError> {
    let path = state.storage.upload_path(id);
    let actual = Digest::from_sha256(upload.hasher.clone().finalize().into());
    if &actual != digest {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(RegistryError::DigestInvalid(format!(
            "the uploaded content's digest is {actual}, not {digest}"
        )));
    }
    let storage = Arc::clone(&state.storage);
    let d = digest.clone();
    blocking(move || {
        let result = std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(RegistryError::from)
            .and_then(|()| storage.commit_upload(&path, &upload.repo, &d));
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        // The upload's room is given back only now that its bytes count as a blob.
        drop(upload);
        result
    })
    .await
}

/// `Content-Range: <start>-<end>` (some clients send `bytes=<start>-<end>`).
fn content_range_start(parts: &Parts) -> Result<Option<u64>, RegistryError> {
    let Some(v) = parts.headers.get(http::header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    let text = text
        .trim()
        .trim_start_matches("bytes=")
        .trim_start_matches("bytes ");
    let start = text
        .split('-')
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| RegistryError::BlobUploadInvalid(format!("bad Content-Range {text:?}")))?;
    Ok(Some(start))
}

async fn patch_upload(
    state: &RegistryState,
    parts: &Parts,
    body: Body,
    repo: String,
    id: String,
) -> Result<Response<Body>, RegistryError> {
    let mut upload = state
        .take_upload(&id)
        .ok_or(RegistryError::BlobUploadUnknown)?;
    if upload.repo != repo {
        state.put_upload(&id, upload);
        return Err(RegistryError::BlobUploadUnknown);
    }
    if let Some(start) = content_range_start(parts)?
        && start != upload.written
    {
        let size = upload.written;
        state.put_upload(&id, upload);
        return Err(RegistryError::RangeInvalid { start, size });
    }
    match write_chunk(state, parts, body, &id, &mut upload).await {
        Ok(()) => {
            let written = upload.written;
            state.put_upload(&id, upload);
            Ok(upload_status(StatusCode::ACCEPTED, &repo, &id, written))
        }
        Err(e) => {
            // A chunk cut half-way leaves the upload unusable: it is dropped.
            let _ = tokio::fs::remove_file(state.storage.upload_path(&id)).await;
            Err(e)
        }
    }
}

async fn finish_upload(
    state: &RegistryState,
    parts: &Parts,
    body: Body,
    repo: String,
    id: String,
) -> Result<Response<Body>, RegistryError> {
    let digest = query_param(parts, "digest")
        .ok_or_else(|| {
            RegistryError::DigestInvalid("?digest= is required to finish an upload".into())
        })
        .and_then(|d| digest_of(&d))?;
    let mut upload = state
        .take_upload(&id)
        .ok_or(RegistryError::BlobUploadUnknown)?;
    if upload.repo != repo {
        state.put_upload(&id, upload);
        return Err(RegistryError::BlobUploadUnknown);
    }
    if let Err(e) = write_chunk(state, parts, body, &id, &mut upload).await {
        let _ = tokio::fs::remove_file(state.storage.upload_path(&id)).await;
        return Err(e);
    }
    complete(state, &id, upload, &digest).await?;
    Ok(created(&repo, &digest))
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn paths_route() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(route("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            route("/v2/team/app/manifests/v1"),
            Some(Route::Manifest("team/app".into(), "v1".into()))
        );
        assert_eq!(
            route("/v2/app/blobs/sha256:ab"),
            Some(Route::Blob("app".into(), "sha256:ab".into()))
        );
        assert_eq!(
            route("/v2/app/blobs/uploads/"),
            Some(Route::Upload("app".into(), None))
        );
        assert_eq!(
            route("/v2/app/blobs/uploads/u1"),
            Some(Route::Upload("app".into(), Some("u1".into())))
        );
        assert_eq!(route("/v2/app/other"), None);
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
    }
}
