//! Buckets: create, look up, list, configure, delete.

use kindling_model::objects::{BucketConfig, BucketRecord};
use kindling_store::{Entity, StoreError};

use crate::error::{ObjectError, Result};
use crate::names::validate_bucket_name;
use crate::{Objects, now_ms};

/// The region S3 creates a bucket in when no `LocationConstraint` is given.
const DEFAULT_LOCATION: &str = "us-east-1";

/// A bucket after CreateBucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedBucket {
    pub record: BucketRecord,
    /// The caller already owned it and S3 answers success anyway (us-east-1's legacy rule:
    /// creating a bucket you own there again is not an error).
    pub existed: bool,
}

pub(crate) fn no_such_bucket(bucket: &str) -> impl Fn(StoreError) -> ObjectError + '_ {
    move |e| match e {
        StoreError::NotFound(Entity::Bucket) => ObjectError::NoSuchBucket {
            bucket: bucket.to_string(),
        },
        e => ObjectError::from(e),
    }
}

impl Objects {
    /// Creates a bucket in `location` (the `LocationConstraint`; none means us-east-1).
    /// Creating a bucket that exists: in us-east-1 without a constraint, success with
    /// `existed` (S3's legacy rule there); anywhere else `BucketAlreadyOwnedByYou` (every
    /// bucket on this server belongs to its one account).
    pub async fn create_bucket(&self, name: &str, location: Option<&str>) -> Result<CreatedBucket> {
        validate_bucket_name(name)?;
        if let Some(loc) = location {
            if loc == DEFAULT_LOCATION {
                return Err(ObjectError::InvalidLocationConstraint {
                    constraint: loc.to_string(),
                });
            }
            if loc.is_empty()
                || loc.len() > 32
                || !loc
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(ObjectError::InvalidLocationConstraint {
                    constraint: loc.to_string(),
                });
            }
        }
        let record = BucketRecord {
            name: name.to_string(),
            region: location.unwrap_or(DEFAULT_LOCATION).to_string(),
            created_ms: now_ms(),
            versioning: None,
            policy: None,
            tags: Default::default(),
            encryption: None,
            public_access_block: None,
        };
        let name = name.to_string();
        let constrained = location.is_some();
        let max = self.inner.config.max_buckets;
        self.blocking(move |inner| match inner.store.create_bucket(&record, max) {
            Ok(()) => Ok(CreatedBucket {
                record,
                existed: false,
            }),
            Err(StoreError::AlreadyExists(_)) => {
                let existing = inner
                    .store
                    .bucket(&name)?
                    .ok_or(ObjectError::NoSuchBucket {
                        bucket: name.clone(),
                    })?;
                if existing.region == DEFAULT_LOCATION && !constrained {
                    Ok(CreatedBucket {
                        record: existing,
                        existed: true,
                    })
                } else {
                    Err(ObjectError::BucketAlreadyOwnedByYou { bucket: name })
                }
            }
            Err(StoreError::LimitExceeded) => Err(ObjectError::TooManyBuckets { max }),
            Err(e) => Err(e.into()),
        })
        .await
    }

    /// A bucket, or `NoSuchBucket`.
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        let name = name.to_string();
        self.blocking(move |inner| {
            inner
                .store
                .bucket(&name)?
                .ok_or(ObjectError::NoSuchBucket { bucket: name })
        })
        .await
    }

    /// Every bucket, by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.blocking(|inner| Ok(inner.store.buckets()?)).await
    }

    /// Replaces one part of a bucket's configuration.
    pub async fn set_bucket_config(&self, name: &str, config: BucketConfig) -> Result<()> {
        let name = name.to_string();
        self.blocking(move |inner| {
            inner
                .store
                .set_bucket_config(&name, &config)
                .map_err(no_such_bucket(&name))
        })
        .await
    }

    /// Deletes an empty bucket (its unfinished multipart uploads go with it).
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.blocking(move |inner| {
            let blobs = inner.store.delete_bucket(&name).map_err(|e| match e {
                StoreError::NotEmpty(_) => ObjectError::BucketNotEmpty {
                    bucket: name.clone(),
                },
                e => no_such_bucket(&name)(e),
            })?;
            inner.files.remove(&blobs);
            Ok(())
        })
        .await
    }
}
