//! Kindling's OCI distribution registry, on the one endpoint under `/v2/` (the API `skopeo`,
//! `crane`, `podman push` and `docker push` speak), so container-image functions need no
//! other registry:
//!
//! * blobs: `HEAD`/`GET`/`DELETE /v2/<name>/blobs/<digest>`; uploads `POST
//!   /v2/<name>/blobs/uploads/` (monolithic with `?digest=`, cross-repository `?mount=&from=`),
//!   `PATCH` chunks (`Content-Range` checked), `PUT ?digest=` to finish, `GET` status,
//!   `DELETE` to cancel. Data streams to disk and is hashed as it arrives; the digest is
//!   checked and the file fsync'd before `201 Created`;
//! * manifests: `PUT`/`GET`/`HEAD`/`DELETE /v2/<name>/manifests/<tag|digest>`, OCI image
//!   manifests and indexes, Docker schema 2 manifests and lists, validated, their blobs (or
//!   child manifests) required to be in the repository;
//! * `GET /v2/<name>/tags/list` (`n`, `last`), `GET /v2/_catalog`, `GET /v2/`.
//!
//! Repository names follow ECR (`team/app`). Errors are the distribution spec's
//! `{"errors":[{"code":…}]}` ([`RegistryError`]).
//!
//! **Authentication**: requests that the server's policy requires to be signed (shared mode,
//! and any request from inside an execution environment) must carry HTTP Basic credentials:
//! an operator's access key id as the user name and its secret access key as the password
//! (`skopeo --dest-creds AKID:SECRET`), checked in constant time; otherwise `401` with a
//! `WWW-Authenticate: Basic` challenge. In local mode other requests are open, as the rest of
//! Kindling's endpoint.

mod body;
mod error;
mod http_api;
mod resolve;
mod storage;

pub use error::RegistryError;
pub use http_api::{RegistryState, router};
pub use resolve::{ResolveError, ResolvedImage};
pub use storage::{Limits, Storage};

#[cfg(test)]
mod tests;
