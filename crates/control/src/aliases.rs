//! Aliases: named pointers to versions, with weighted routing to a second version.

use std::collections::BTreeMap;

use kindling_model::alias::AliasRecord;
use kindling_model::validate::{self, Violations};
use kindling_model::{FunctionRef, Qualifier};
use kindling_store::{Entity, StoreError};

use crate::error::{ControlError, Result, revision_mismatch, stale_revision};
use crate::input::{CreateAlias, RoutingInput, UpdateAlias};
use crate::paginate::{Page, page_size, paginate};
use crate::resolve::parse_ref;
use crate::{ControlPlane, new_revision};

/// A ListAliases page.
pub type AliasList = Page<AliasRecord>;

fn version_violations(v: &mut Violations, version: &str) {
    v.string(
        version,
        "functionVersion",
        1,
        1024,
        Some(("(\\$LATEST|[0-9]+)", |s| {
            s == "$LATEST" || validate::is_digits(s)
        })),
    );
}

fn weights_violations(v: &mut Violations, weights: &BTreeMap<String, f64>) {
    for (version, weight) in weights {
        if !validate::is_digits(version) {
            v.add(
                version,
                "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]",
            );
        }
        if !(0.0..=1.0).contains(weight) {
            v.add(
                weight,
                "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]",
            );
        }
    }
}

/// Service-level checks of an alias's routing against its primary version.
fn check_routing(primary: &str, weights: &BTreeMap<String, f64>) -> Result<()> {
    if weights.len() > 1 {
        return Err(ControlError::InvalidParameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1".into(),
        ));
    }
    if let Some(extra) = weights.keys().next() {
        if primary == "$LATEST" {
            return Err(ControlError::InvalidParameter(
                "$LATEST is not supported for an alias pointing to more than 1 version".into(),
            ));
        }
        if extra == primary {
            return Err(ControlError::InvalidParameter(format!(
                "Invalid function version {extra}. Function version {extra} is already included in routing configuration."
            )));
        }
    }
    Ok(())
}

impl ControlPlane {
    fn alias_not_found(&self, function: &str, name: &str) -> ControlError {
        ControlError::NotFound(format!(
            "Cannot find alias arn: {}",
            self.arn()
                .qualified_arn(function, &Qualifier::Alias(name.to_string()))
        ))
    }

    fn function_ref(&self, raw: &str) -> Result<FunctionRef> {
        let r = parse_ref(self, raw, None, false)?;
        if self.store().function(&r.name)?.is_none() {
            return Err(self.not_found(&FunctionRef {
                qualifier: None,
                ..r
            }));
        }
        Ok(r)
    }

    /// The error when a version an alias routes to does not exist.
    fn missing_version(&self, function: &str, version: &str) -> ControlError {
        let q = Qualifier::parse(version).unwrap_or(Qualifier::Latest);
        ControlError::NotFound(format!(
            "Function not found: {}",
            self.arn().qualified_arn(function, &q)
        ))
    }

    fn check_versions_exist(&self, rec: &AliasRecord) -> Result<()> {
        for version in std::iter::once(&rec.function_version).chain(rec.weights.keys()) {
            let number = match Qualifier::parse(version) {
                Some(Qualifier::Version(n)) => Some(n),
                _ => None,
            };
            if self.store().version(&rec.function_name, number)?.is_none() {
                return Err(self.missing_version(&rec.function_name, version));
            }
        }
        Ok(())
    }

    /// CreateAlias.
    pub fn create_alias(&self, raw: &str, req: CreateAlias) -> Result<AliasRecord> {
        let mut v = Violations::new();
        let name = req.name.clone().unwrap_or_default();
        let version = req.function_version.clone().unwrap_or_default();
        if req.name.is_none() {
            v.add("null", "name", "Member must not be null");
        } else {
            v.string(
                &name,
                "name",
                1,
                128,
                Some(("(?!^[0-9]+$)([a-zA-Z0-9-_]+)", validate::is_alias_name)),
            );
        }
        if req.function_version.is_none() {
            v.add("null", "functionVersion", "Member must not be null");
        } else {
            version_violations(&mut v, &version);
        }
        if let Some(d) = &req.description {
            v.string(d, "description", 0, 256, None);
        }
        let weights = req
            .routing_config
            .and_then(|r| r.additional_version_weights)
            .unwrap_or_default();
        weights_violations(&mut v, &weights);
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        check_routing(&version, &weights)?;
        let _guard = self.lock();
        let r = self.function_ref(raw)?;
        let rec = AliasRecord {
            function_name: r.name.clone(),
            name: name.clone(),
            function_version: version,
            description: req.description.unwrap_or_default(),
            weights,
            revision_id: new_revision(),
        };
        if self.store().alias(&r.name, &name)?.is_some() {
            return Err(self.alias_exists(&r.name, &name));
        }
        self.check_versions_exist(&rec)?;
        match self.store().create_alias(&rec) {
            Err(StoreError::AlreadyExists(Entity::Alias)) => Err(self.alias_exists(&r.name, &name)),
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
            Err(StoreError::NotFound(Entity::Version)) => {
                Err(self.missing_version(&r.name, &rec.function_version))
            }
            other => Ok(other?),
        }?;
        Ok(rec)
    }

    fn alias_exists(&self, function: &str, name: &str) -> ControlError {
        ControlError::Conflict(format!(
            "Alias already exists: {}",
            self.arn()
                .qualified_arn(function, &Qualifier::Alias(name.to_string()))
        ))
    }

    /// GetAlias.
    pub fn get_alias(&self, raw: &str, name: &str) -> Result<AliasRecord> {
        let r = self.function_ref(raw)?;
        self.store()
            .alias(&r.name, name)?
            .ok_or_else(|| self.alias_not_found(&r.name, name))
    }

    /// UpdateAlias.
    pub fn update_alias(&self, raw: &str, name: &str, req: UpdateAlias) -> Result<AliasRecord> {
        let mut v = Violations::new();
        if let Some(version) = &req.function_version {
            version_violations(&mut v, version);
        }
        if let Some(d) = &req.description {
            v.string(d, "description", 0, 256, None);
        }
        let new_weights = req.routing_config.map(
            |RoutingInput {
                 additional_version_weights,
             }| additional_version_weights.unwrap_or_default(),
        );
        if let Some(w) = &new_weights {
            weights_violations(&mut v, w);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        let _guard = self.lock();
        let r = self.function_ref(raw)?;
        let current = self
            .store()
            .alias(&r.name, name)?
            .ok_or_else(|| self.alias_not_found(&r.name, name))?;
        if req
            .revision_id
            .as_ref()
            .is_some_and(|rev| *rev != current.revision_id)
        {
            return Err(revision_mismatch());
        }
        let mut next = current.clone();
        if let Some(version) = req.function_version {
            next.function_version = version;
        }
        if let Some(d) = req.description {
            next.description = d;
        }
        if let Some(w) = new_weights {
            next.weights = w;
        }
        check_routing(&next.function_version, &next.weights)?;
        self.check_versions_exist(&next)?;
        next.revision_id = new_revision();
        match self.store().update_alias(&next, &current.revision_id) {
            Err(StoreError::RevisionMismatch) => Err(stale_revision(
                req.revision_id.is_some(),
                &self
                    .arn()
                    .qualified_arn(&r.name, &Qualifier::Alias(name.to_string())),
            )),
            Err(StoreError::NotFound(Entity::Alias)) => Err(self.alias_not_found(&r.name, name)),
            Err(StoreError::NotFound(Entity::Version)) => {
                Err(self.missing_version(&r.name, &next.function_version))
            }
            other => Ok(other?),
        }?;
        Ok(next)
    }

    /// DeleteAlias (idempotent once the function exists).
    pub fn delete_alias(&self, raw: &str, name: &str) -> Result<()> {
        let _guard = self.lock();
        let r = self.function_ref(raw)?;
        // Its provisioned concurrency configuration goes with it (as in Lambda), first: a
        // crash in between leaves an alias without one, never one without its alias.
        self.forget_provisioned(&r.name, name)?;
        Ok(self.store().delete_alias(&r.name, name)?)
    }

    /// ListAliases, optionally only those routing to `function_version`.
    pub fn list_aliases(
        &self,
        raw: &str,
        function_version: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<AliasList> {
        let size = page_size(max_items, 50, 10_000)?;
        let r = self.function_ref(raw)?;
        let aliases: Vec<AliasRecord> = self
            .store()
            .aliases(&r.name)?
            .into_iter()
            .filter(|a| {
                function_version
                    .is_none_or(|v| a.function_version == v || a.weights.contains_key(v))
            })
            .collect();
        Ok(paginate(aliases, |a| a.name.clone(), marker, size))
    }
}
