//! Tags on functions (TagResource, UntagResource, ListTags).

use std::collections::BTreeMap;

use kindling_model::FunctionRef;
use kindling_store::{Entity, StoreError};

use crate::ControlPlane;
use crate::error::{ControlError, Result};

const MAX_TAGS: usize = 50;

/// Lambda's limits on tag keys and values.
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(ControlError::InvalidParameter(format!(
                "Tag keys must be 1-128 characters and values at most 256 characters: {k}"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(ControlError::InvalidParameter(format!(
                "Tag keys starting with 'aws:' are reserved for AWS use: {k}"
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ControlError::InvalidParameter(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

impl ControlPlane {
    /// The function a tag resource ARN names (tags belong to the function as a whole).
    fn tag_target(&self, resource: &str) -> Result<String> {
        let r = FunctionRef::parse(resource, false)
            .ok()
            .filter(|r| r.region.is_some() && resource.starts_with("arn:"))
            .ok_or_else(|| {
                ControlError::Validation(format!(
                    "1 validation error detected: Value '{resource}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
                ))
            })?;
        if r.qualifier.is_some() {
            return Err(ControlError::InvalidParameter(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
                    .into(),
            ));
        }
        if r.is_foreign(self.arn()) || self.store().function(&r.name)?.is_none() {
            return Err(ControlError::NotFound(format!(
                "Function not found: {resource}"
            )));
        }
        Ok(r.name)
    }

    /// TagResource: merges `tags` into the function's tags.
    pub fn tag_resource(&self, resource: &str, tags: BTreeMap<String, String>) -> Result<()> {
        let _guard = self.lock();
        let name = self.tag_target(resource)?;
        let mut meta = self
            .store()
            .function(&name)?
            .ok_or_else(|| ControlError::NotFound(format!("Function not found: {resource}")))?;
        meta.tags.extend(tags);
        check_tags(&meta.tags)?;
        self.commit_tags(resource, &meta)
    }

    /// UntagResource.
    pub fn untag_resource(&self, resource: &str, keys: &[String]) -> Result<()> {
        let _guard = self.lock();
        let name = self.tag_target(resource)?;
        let mut meta = self
            .store()
            .function(&name)?
            .ok_or_else(|| ControlError::NotFound(format!("Function not found: {resource}")))?;
        for k in keys {
            meta.tags.remove(k);
        }
        self.commit_tags(resource, &meta)
    }

    fn commit_tags(
        &self,
        resource: &str,
        meta: &kindling_model::function::FunctionMeta,
    ) -> Result<()> {
        match self.store().put_function_meta(meta) {
            Err(StoreError::NotFound(Entity::Function)) => Err(ControlError::NotFound(format!(
                "Function not found: {resource}"
            ))),
            other => Ok(other?),
        }
    }

    /// ListTags.
    pub fn list_tags(&self, resource: &str) -> Result<BTreeMap<String, String>> {
        let name = self.tag_target(resource)?;
        Ok(self
            .store()
            .function(&name)?
            .map(|m| m.tags)
            .unwrap_or_default())
    }
}
