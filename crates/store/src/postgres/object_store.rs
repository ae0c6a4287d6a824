//! [`ObjectStore`] on PostgreSQL: every change commits durably. The bytes stay in files of
//! the node that stored them (the S3 crate's `<data-dir>/s3`): only the metadata is shared.

use std::collections::BTreeMap;

use kindling_model::objects::{BucketConfig, BucketRecord, ObjectRecord, PartRecord, UploadRecord};

use super::{PgStore, objects};
use crate::Result;
use crate::objects::{Completed, KeyRange, ObjectStore};

impl ObjectStore for PgStore {
    fn create_bucket(&self, rec: &BucketRecord) -> Result<()> {
        self.write(|c| objects::create_bucket(c, rec))
    }

    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        self.read(|c| objects::bucket(c, name))
    }

    fn buckets(&self) -> Result<Vec<BucketRecord>> {
        self.read(objects::buckets)
    }

    fn set_bucket_config(&self, name: &str, config: &BucketConfig) -> Result<()> {
        self.write(|c| objects::set_bucket_config(c, name, config))
    }

    fn delete_bucket(&self, name: &str) -> Result<Vec<String>> {
        self.write(|c| objects::delete_bucket(c, name))
    }

    fn put_object(&self, rec: &ObjectRecord) -> Result<Option<String>> {
        self.write(|c| objects::put_object(c, rec))
    }

    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.read(|c| objects::object(c, bucket, key))
    }

    fn list_objects(
        &self,
        bucket: &str,
        range: KeyRange<'_>,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>> {
        self.read(|c| objects::list_objects(c, bucket, range, limit))
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<String>> {
        self.write(|c| objects::delete_object(c, bucket, key))
    }

    fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        blob: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.write(|c| objects::set_object_tags(c, bucket, key, blob, tags))
    }

    fn create_upload(&self, rec: &UploadRecord) -> Result<()> {
        self.write(|c| objects::create_upload(c, rec))
    }

    fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
        self.read(|c| objects::upload(c, upload_id))
    }

    fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        after: Option<(&[u8], &str)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>> {
        self.read(|c| objects::list_uploads(c, bucket, prefix, after, limit))
    }

    fn put_part(&self, rec: &PartRecord) -> Result<Option<String>> {
        self.write(|c| objects::put_part(c, rec))
    }

    fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<PartRecord>> {
        self.read(|c| objects::parts(c, upload_id, after, limit))
    }

    fn complete_upload(&self, upload_id: &str, object: &ObjectRecord) -> Result<Completed> {
        self.write(|c| objects::complete_upload(c, upload_id, object))
    }

    fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
        self.write(|c| objects::abort_upload(c, upload_id))
    }

    fn unreferenced_blobs(&self, blobs: &[String]) -> Result<Vec<String>> {
        self.read(|c| objects::unreferenced_blobs(c, blobs))
    }
}
