//! Function URL configurations (Create/Get/Update/Delete/ListFunctionUrlConfigs) and the
//! lookup a URL request starts with: url-id → function, qualifier, auth type and whether the
//! resource policy lets anyone call it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use kindling_model::url::{Cors, FunctionUrlRecord, InvokeMode, UrlAuthType, allows_public_url};
use kindling_model::validate::Violations;
use kindling_model::{FunctionRef, Qualifier};
use kindling_store::{Entity, StoreError};

use crate::error::{ControlError, Result};
use crate::input::FunctionUrlConfigInput;
use crate::paginate::{Page, page_size, paginate};
use crate::resolve::parse_ref;
use crate::{ControlPlane, new_revision, now_ms};

const QUALIFIER_PATTERN: &str = "((?!^\\d+$)^[0-9a-zA-Z-_]+$)";
const LATEST: &str = "$LATEST";

/// A URL configuration with the (qualified) function ARN it invokes.
#[derive(Debug, Clone)]
pub struct FunctionUrlView {
    pub function_arn: String,
    pub record: FunctionUrlRecord,
}

/// What a request to a function URL needs to know before it invokes.
#[derive(Debug, Clone)]
pub struct UrlTarget {
    pub record: Arc<FunctionUrlRecord>,
    /// The ARN the URL invokes (qualified for an alias URL).
    pub function_arn: String,
    /// Whether the resource policy of the URL's function (or alias) has the statement
    /// `AuthType` NONE requires: `lambda:InvokeFunctionUrl` for principal `*`.
    pub public: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CachedUrl {
    generation: u64,
    target: UrlTarget,
}

pub(crate) type UrlCache = HashMap<String, CachedUrl>;

fn check_input(input: &FunctionUrlConfigInput, create: bool) -> Result<()> {
    let mut v = Violations::new();
    match &input.auth_type {
        None if create => v.add("null", "authType", "Member must not be null"),
        None => {}
        Some(a) => v.one_of(a, "authType", &["NONE", "AWS_IAM"]),
    }
    if let Some(m) = &input.invoke_mode {
        v.one_of(m, "invokeMode", &["BUFFERED", "RESPONSE_STREAM"]);
    }
    if let Some(c) = &input.cors {
        check_cors(c, &mut v);
    }
    match v.message() {
        Some(m) => Err(ControlError::Validation(m)),
        None => Ok(()),
    }
}

fn check_list(
    list: Option<&Vec<String>>,
    field: &str,
    max_items: usize,
    item_len: (usize, usize),
    v: &mut Violations,
) {
    let Some(list) = list else { return };
    if list.len() > max_items {
        v.add(
            format!("[{}]", list.join(", ")),
            field,
            &format!("Member must have length less than or equal to {max_items}"),
        );
    }
    for item in list {
        v.string(
            item,
            &format!("{field}.member"),
            item_len.0,
            item_len.1,
            None,
        );
    }
}

fn check_cors(c: &Cors, v: &mut Violations) {
    check_list(
        c.allow_headers.as_ref(),
        "cors.allowHeaders",
        100,
        (0, 1024),
        v,
    );
    check_list(c.allow_methods.as_ref(), "cors.allowMethods", 6, (0, 6), v);
    check_list(
        c.allow_origins.as_ref(),
        "cors.allowOrigins",
        100,
        (1, 253),
        v,
    );
    check_list(
        c.expose_headers.as_ref(),
        "cors.exposeHeaders",
        100,
        (0, 1024),
        v,
    );
    if let Some(age) = c.max_age {
        v.range(age, "cors.maxAge", Some(0), Some(86_400));
    }
}

impl ControlPlane {
    /// The function and qualifier key (`$LATEST` or an alias) a URL operation targets; an
    /// alias must exist. Versions cannot have URLs.
    fn url_target_ref(&self, raw: &str, qualifier: Option<&str>) -> Result<(FunctionRef, String)> {
        // `$LATEST` is what an unqualified URL invokes; accept it spelled out.
        let qualifier = qualifier.filter(|q| *q != LATEST);
        if let Some(q) = qualifier {
            let mut v = Violations::new();
            v.string(
                q,
                "qualifier",
                1,
                128,
                Some((QUALIFIER_PATTERN, kindling_model::validate::is_alias_name)),
            );
            if let Some(m) = v.message() {
                return Err(ControlError::Validation(m));
            }
        }
        let r = parse_ref(self, raw, qualifier, false)?;
        let key = match &r.qualifier {
            None | Some(Qualifier::Latest) => LATEST.to_owned(),
            Some(Qualifier::Alias(a)) => a.clone(),
            Some(Qualifier::Version(n)) => {
                let mut v = Violations::new();
                v.add(
                    n,
                    "qualifier",
                    &format!("Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}"),
                );
                return Err(ControlError::Validation(v.message().unwrap_or_default()));
            }
        };
        self.load(&r)?;
        Ok((r, key))
    }

    fn url_function_arn(&self, name: &str, key: &str) -> String {
        if key == LATEST {
            self.arn().function_arn(name)
        } else {
            format!("{}:{key}", self.arn().function_arn(name))
        }
    }

    fn view(&self, record: FunctionUrlRecord) -> FunctionUrlView {
        FunctionUrlView {
            function_arn: self.url_function_arn(&record.function_name, &record.qualifier),
            record,
        }
    }

    fn no_url() -> ControlError {
        ControlError::NotFound("The resource you requested does not exist.".into())
    }

    /// CreateFunctionUrlConfig.
    pub fn create_function_url_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: FunctionUrlConfigInput,
    ) -> Result<FunctionUrlView> {
        check_input(&input, true)?;
        let _guard = self.lock();
        let (r, key) = self.url_target_ref(raw, qualifier)?;
        let now = now_ms();
        let record = FunctionUrlRecord {
            url_id: uuid::Uuid::new_v4().simple().to_string(),
            function_name: r.name.clone(),
            qualifier: key.clone(),
            auth_type: input
                .auth_type
                .as_deref()
                .and_then(UrlAuthType::parse)
                .unwrap_or(UrlAuthType::AwsIam),
            cors: input.cors,
            invoke_mode: input
                .invoke_mode
                .as_deref()
                .and_then(InvokeMode::parse)
                .unwrap_or_default(),
            creation_ms: now,
            last_modified_ms: now,
            revision_id: new_revision(),
        };
        match self.store().create_function_url(&record) {
            Ok(()) => Ok(self.view(record)),
            Err(StoreError::AlreadyExists(Entity::FunctionUrl)) => {
                Err(ControlError::Conflict(format!(
                    "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                    self.url_function_arn(&r.name, &key)
                )))
            }
            Err(StoreError::NotFound(Entity::Function | Entity::Alias)) => Err(self.not_found(&r)),
            Err(e) => Err(e.into()),
        }
    }

    /// GetFunctionUrlConfig.
    pub fn get_function_url_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionUrlView> {
        let (r, key) = self.url_target_ref(raw, qualifier)?;
        let record = self
            .store()
            .function_url(&r.name, &key)?
            .ok_or_else(Self::no_url)?;
        Ok(self.view(record))
    }

    /// UpdateFunctionUrlConfig: the members given replace the stored ones (`Cors` as a whole).
    pub fn update_function_url_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: FunctionUrlConfigInput,
    ) -> Result<FunctionUrlView> {
        check_input(&input, false)?;
        let _guard = self.lock();
        let (r, key) = self.url_target_ref(raw, qualifier)?;
        let current = self
            .store()
            .function_url(&r.name, &key)?
            .ok_or_else(Self::no_url)?;
        let mut next = current.clone();
        if let Some(a) = input.auth_type.as_deref().and_then(UrlAuthType::parse) {
            next.auth_type = a;
        }
        if let Some(c) = input.cors {
            next.cors = Some(c);
        }
        if let Some(m) = input.invoke_mode.as_deref().and_then(InvokeMode::parse) {
            next.invoke_mode = m;
        }
        next.last_modified_ms = now_ms();
        next.revision_id = new_revision();
        match self
            .store()
            .update_function_url(&next, &current.revision_id)
        {
            Ok(()) => Ok(self.view(next)),
            Err(StoreError::NotFound(_)) => Err(Self::no_url()),
            Err(StoreError::RevisionMismatch) => Err(ControlError::Conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {}",
                self.url_function_arn(&r.name, &key)
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// DeleteFunctionUrlConfig.
    pub fn delete_function_url_config(&self, raw: &str, qualifier: Option<&str>) -> Result<()> {
        let _guard = self.lock();
        let (r, key) = self.url_target_ref(raw, qualifier)?;
        if !self.store().delete_function_url(&r.name, &key)? {
            return Err(Self::no_url());
        }
        Ok(())
    }

    /// ListFunctionUrlConfigs: by qualifier; `MaxItems` 1-50.
    pub fn list_function_url_configs(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<FunctionUrlView>> {
        let size = page_size(max_items, 50, 50)?;
        let r = parse_ref(self, raw, None, false)?;
        if self.store().function(&r.name)?.is_none() {
            return Err(self.not_found(&r));
        }
        let items: Vec<FunctionUrlView> = self
            .store()
            .function_urls(&r.name)?
            .into_iter()
            .map(|rec| self.view(rec))
            .collect();
        Ok(paginate(
            items,
            |v| v.record.qualifier.clone(),
            marker,
            size,
        ))
    }

    /// What the URL `url_id` invokes, read from the store (blocking) and cached until the
    /// next control-plane write. `None`: no such URL.
    pub fn url_target(&self, url_id: &str) -> Result<Option<UrlTarget>> {
        let generation = self.generation();
        if let Some(t) = self.cached_url(url_id, generation) {
            return Ok(Some(t));
        }
        let Some(record) = self.store().function_url_by_id(url_id)? else {
            return Ok(None);
        };
        let policy_key = record.alias().unwrap_or("");
        let public = self
            .store()
            .policy(&record.function_name, policy_key)?
            .is_some_and(|p| p.statements.iter().any(allows_public_url));
        let target = UrlTarget {
            function_arn: self.url_function_arn(&record.function_name, &record.qualifier),
            record: Arc::new(record),
            public,
        };
        let mut cache = self
            .url_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Stale entries are never read again (see `invoke_target`).
        cache.retain(|_, c| c.generation == generation);
        cache.insert(
            url_id.to_owned(),
            CachedUrl {
                generation,
                target: target.clone(),
            },
        );
        Ok(Some(target))
    }

    /// [`Self::url_target`] from memory only: `None` when not cached (or stale).
    pub fn cached_url_target(&self, url_id: &str) -> Option<UrlTarget> {
        self.cached_url(url_id, self.generation())
    }

    fn cached_url(&self, url_id: &str, generation: u64) -> Option<UrlTarget> {
        self.url_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(url_id)
            .filter(|c| c.generation == generation)
            .map(|c| c.target.clone())
    }
}
