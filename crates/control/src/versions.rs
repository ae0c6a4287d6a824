//! Versions: publishing immutable snapshots of `$LATEST`, and listing them.

use kindling_model::FunctionRef;
use kindling_model::function::VersionRecord;
use kindling_model::validate::Violations;
use kindling_store::{Entity, StoreError};

use crate::error::{ControlError, Result, revision_mismatch, stale_revision, update_in_progress};
use crate::input::PublishVersion;
use crate::paginate::{Page, page_size, paginate};
use crate::resolve::parse_ref;
use crate::{ControlPlane, new_revision, now_ms};

/// True when publishing `latest` would only repeat `published` (same code and configuration).
fn unchanged(latest: &VersionRecord, published: &VersionRecord) -> bool {
    latest.code.sha256 == published.code.sha256 && latest.spec == published.spec
}

impl ControlPlane {
    /// PublishVersion.
    pub fn publish_version(&self, raw: &str, req: PublishVersion) -> Result<VersionRecord> {
        let r = parse_ref(self, raw, None, false)?;
        let mut v = Violations::new();
        if let Some(d) = &req.description {
            v.string(d, "description", 0, 256, None);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        let _guard = self.lock();
        let latest = self.load_latest(&r)?;
        if let Some(sha) = &req.code_sha256
            && *sha != latest.code.sha256
        {
            return Err(ControlError::InvalidParameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                latest.code.sha256
            )));
        }
        if req
            .revision_id
            .as_ref()
            .is_some_and(|rev| *rev != latest.revision_id)
        {
            return Err(revision_mismatch());
        }
        self.publish_locked(&r, &latest, req.description, req.revision_id.is_some())
    }

    /// Publishes `latest` as the next version unless nothing changed since the newest
    /// published version, which is then returned. The caller holds the write lock;
    /// `client_revision` tells whether the client pinned a `RevisionId`.
    pub(crate) fn publish_locked(
        &self,
        r: &FunctionRef,
        latest: &VersionRecord,
        description: Option<String>,
        client_revision: bool,
    ) -> Result<VersionRecord> {
        let meta = self
            .store()
            .function(&r.name)?
            .ok_or_else(|| self.not_found(r))?;
        if let Some(newest) = self
            .store()
            .versions(&r.name)?
            .into_iter()
            .rev()
            .find(|v| v.version.is_some())
            && unchanged(latest, &newest)
            && description
                .as_ref()
                .is_none_or(|d| *d == newest.spec.description)
        {
            return Ok(newest);
        }
        let mut rec = latest.clone();
        rec.version = Some(meta.last_version + 1);
        rec.revision_id = new_revision();
        rec.last_modified_ms = now_ms();
        if let Some(d) = description {
            rec.spec.description = d;
        }
        let function_arn = self.arn().function_arn(&r.name);
        match self.store().insert_version(&rec, &latest.revision_id) {
            // $LATEST changed since it was read: the client's revision, or another node's write.
            Err(StoreError::RevisionMismatch) => {
                Err(stale_revision(client_revision, &function_arn))
            }
            // Another node published this number first.
            Err(StoreError::AlreadyExists(Entity::Version)) => {
                Err(update_in_progress(&function_arn))
            }
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(r)),
            other => Ok(other?),
        }?;
        tracing::info!(function = %r.name, version = rec.version, "version published");
        Ok(rec)
    }

    /// ListVersionsByFunction: `$LATEST` then published versions in ascending order.
    pub fn list_versions(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<VersionRecord>> {
        let r = parse_ref(self, raw, None, true)?;
        let size = page_size(max_items, 50, 10_000)?;
        if self.store().function(&r.name)?.is_none() {
            return Err(self.not_found(&r));
        }
        let versions = self.store().versions(&r.name)?;
        Ok(paginate(
            versions,
            |v| format!("{:020}", v.version.unwrap_or(0)),
            marker,
            size,
        ))
    }
}
