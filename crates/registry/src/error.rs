//! The registry's errors and their one rendering: the OCI distribution error body
//! `{"errors":[{"code":"BLOB_UNKNOWN","message":"…","detail":…}]}` with the code's status.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("tag invalid: {0}")]
    TagInvalid(String),
    #[error("{0}")]
    SizeInvalid(String),
    /// A blob or manifest over the registry's limits (413).
    #[error("{0}")]
    TooLarge(String),
    /// The requested range does not continue the upload (416).
    #[error("the chunk starts at {start}; the upload has {size} bytes")]
    RangeInvalid { start: u64, size: u64 },
    #[error("authentication required")]
    Unauthorized,
    #[error("requested access to the resource is denied: {0}")]
    Denied(String),
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    #[error("the request body stopped arriving")]
    Timeout,
    /// The host failed (disk, a task): 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BlobUnknown(_)
            | Self::BlobUploadUnknown
            | Self::ManifestUnknown(_)
            | Self::NameUnknown(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeInvalid { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BlobUnknown(_) => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid(_) | Self::RangeInvalid { .. } | Self::Timeout => {
                "BLOB_UPLOAD_INVALID"
            }
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid(_) => "DIGEST_INVALID",
            Self::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid(_) => "MANIFEST_INVALID",
            Self::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            Self::NameInvalid(_) => "NAME_INVALID",
            Self::NameUnknown(_) => "NAME_UNKNOWN",
            Self::TagInvalid(_) => "TAG_INVALID",
            Self::SizeInvalid(_) | Self::TooLarge(_) => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied(_) => "DENIED",
            Self::Unsupported(_) => "UNSUPPORTED",
            Self::Internal(_) => "UNKNOWN",
        }
    }

    /// The error as the registry answers it.
    pub fn into_response(self, head_only: bool) -> Response<Body> {
        if let Self::Internal(m) = &self {
            tracing::error!(error = %m, "registry request failed");
        }
        let body = serde_json::json!({
            "errors": [{"code": self.code(), "message": self.to_string(), "detail": null}]
        })
        .to_string();
        let mut res = Response::new(if head_only {
            Body::empty()
        } else {
            Body::from(body)
        });
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        if matches!(self, Self::Unauthorized) {
            h.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Kindling registry\""),
            );
        }
        res
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn errors_render_in_the_distribution_format() {
        let res = RegistryError::BlobUnknown("sha256:ab".into()).into_response(false);
        assert_eq!(res.status(), 404);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        let res = RegistryError::Unauthorized.into_response(false);
        assert_eq!(res.status(), 401);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
    }
}
