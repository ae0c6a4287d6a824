//! Resolving client-supplied function names and qualifiers to stored records.

use kindling_model::arn::RefError;
use kindling_model::function::VersionRecord;
use kindling_model::{FunctionRef, Qualifier};

use crate::ControlPlane;
use crate::error::{ControlError, Result};

/// A function reference checked against the name patterns and merged with the `Qualifier`
/// query parameter.
pub(crate) fn parse_ref(
    plane: &ControlPlane,
    raw: &str,
    qualifier_param: Option<&str>,
    namespaced: bool,
) -> Result<FunctionRef> {
    let max = if namespaced { 256 } else { 140 };
    let mut r = FunctionRef::parse(raw, namespaced).map_err(|e| match e {
        RefError::Malformed | RefError::BadQualifier if raw.is_empty() || raw.len() > max => {
            ControlError::Validation(format!(
                "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must have length {}",
                if raw.is_empty() { "greater than or equal to 1".to_string() } else { format!("less than or equal to {max}") }
            ))
        }
        _ => ControlError::Validation(format!(
            "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_{}]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            if namespaced { "\\." } else { "" }
        )),
    })?;
    if r.is_foreign(plane.arn()) {
        return Err(ControlError::NotFound(format!("Function not found: {raw}")));
    }
    if let Some(q) = qualifier_param {
        let parsed = Qualifier::parse(q).ok_or_else(|| {
            ControlError::Validation(format!(
                "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
            ))
        })?;
        match &r.qualifier {
            Some(existing) if *existing != parsed => {
                return Err(ControlError::InvalidParameter(
                    "The derived qualifier from the function name does not match the specified qualifier."
                        .into(),
                ));
            }
            _ => r.qualifier = Some(parsed),
        }
    }
    Ok(r)
}

/// A function version reached through a reference, with how it was reached.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub record: VersionRecord,
    /// The qualifier the client used (`None`: unqualified, i.e. `$LATEST`).
    pub qualifier: Option<Qualifier>,
    /// The alias's routing: `(version, weight)` of the additional version, when routed.
    pub routing: Option<(u64, f64)>,
}

impl ControlPlane {
    /// "Function not found: <arn>" for a reference.
    pub(crate) fn not_found(&self, r: &FunctionRef) -> ControlError {
        let arn = match &r.qualifier {
            Some(q) => self.arn().qualified_arn(&r.name, q),
            None => self.arn().function_arn(&r.name),
        };
        ControlError::NotFound(format!("Function not found: {arn}"))
    }

    /// Loads the version a reference names (an alias resolves to its primary version).
    pub(crate) fn load(&self, r: &FunctionRef) -> Result<Resolved> {
        let store = self.store();
        let (number, routing) = match &r.qualifier {
            None | Some(Qualifier::Latest) => (None, None),
            Some(Qualifier::Version(v)) => (Some(*v), None),
            Some(Qualifier::Alias(a)) => {
                let alias = store.alias(&r.name, a)?.ok_or_else(|| self.not_found(r))?;
                let routing = alias
                    .weights
                    .iter()
                    .next()
                    .and_then(|(v, w)| v.parse().ok().map(|v| (v, *w)));
                let number = match Qualifier::parse(&alias.function_version) {
                    Some(Qualifier::Version(v)) => Some(v),
                    _ => None,
                };
                (number, routing)
            }
        };
        let record = store
            .version(&r.name, number)?
            .ok_or_else(|| self.not_found(r))?;
        Ok(Resolved {
            record,
            qualifier: r.qualifier.clone(),
            routing,
        })
    }

    /// Resolves a client's function name (+ optional `Qualifier`) to a stored version.
    pub fn resolve(&self, raw: &str, qualifier: Option<&str>) -> Result<Resolved> {
        let r = parse_ref(self, raw, qualifier, true)?;
        self.load(&r)
    }

    /// Loads `$LATEST` of an unqualified reference, refusing qualified ones where Lambda does.
    pub(crate) fn load_latest(&self, r: &FunctionRef) -> Result<VersionRecord> {
        if let Some(q) = &r.qualifier
            && !q.is_latest()
        {
            return Err(ControlError::InvalidParameter(format!(
                "Cannot modify a published version or alias ({q}); only $LATEST is mutable."
            )));
        }
        self.store().version(&r.name, None)?.ok_or_else(|| {
            self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            })
        })
    }
}
