//! Functions: create, read, list, update code and configuration, delete.

use std::collections::BTreeMap;

use kindling_model::function::{FunctionMeta, FunctionSpec, LayerAttachment, VersionRecord};
use kindling_model::layer::LayerVersionRef;
use kindling_model::runtime::Availability;
use kindling_model::validate::{self, Violations};
use kindling_model::{FunctionRef, Qualifier, limits, runtime};
use kindling_store::{Entity, StoreError};

use crate::code::{check_unzipped, verify_zip, zip_bytes};
use crate::error::{ControlError, Result, revision_mismatch, stale_revision};
use crate::input::{ConfigInput, CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration};
use crate::paginate::{Page, page_size};
use crate::resolve::parse_ref;
use crate::{ControlPlane, new_revision, now_ms};

/// Environment variables Lambda sets itself and refuses from users.
const RESERVED_ENV: &[&str] = &[
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// GetFunction's result: the configuration plus function-level data.
#[derive(Debug, Clone)]
pub struct FunctionDetails {
    pub version: VersionRecord,
    /// Set when the function was reached through an alias (its ARN is the alias ARN).
    pub alias: Option<String>,
    /// The qualifier the client gave (in the name or the `Qualifier` parameter).
    pub qualifier: Option<Qualifier>,
    pub tags: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
}

/// A ListFunctions page.
pub type FunctionList = Page<VersionRecord>;

fn role_check(v: &mut Violations, role: &str) {
    if !validate::is_role_arn(role) {
        v.add(
            role,
            "role",
            "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        );
    }
}

fn env_check(vars: &BTreeMap<String, String>) -> Result<()> {
    let mut v = Violations::new();
    for key in vars.keys() {
        if !validate::is_env_key(key) {
            v.add(
                key,
                "environment.variables",
                "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
            );
        }
    }
    if let Some(m) = v.message() {
        return Err(ControlError::Validation(m));
    }
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_ENV.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(ControlError::InvalidParameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let size: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > limits::ENV_VARS_TOTAL {
        return Err(ControlError::InvalidParameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {}",
            serde_json::to_string(vars).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Model-level checks of the shared configuration members.
fn config_violations(v: &mut Violations, c: &ConfigInput) {
    if let Some(role) = &c.role {
        role_check(v, role);
    }
    if let Some(h) = &c.handler {
        v.string(
            h,
            "handler",
            0,
            128,
            Some(("[^\\s]+", validate::is_handler)),
        );
    }
    if let Some(d) = &c.description {
        v.string(d, "description", 0, 256, None);
    }
    if let Some(t) = c.timeout {
        v.range(t, "timeout", Some(1), None);
    }
    if let Some(m) = c.memory_size {
        v.range(
            m,
            "memorySize",
            Some(128),
            Some(i64::from(limits::MEMORY_MODEL_MAX)),
        );
    }
    if let Some(e) = c.ephemeral_storage.as_ref().and_then(|e| e.size) {
        v.range(
            e,
            "ephemeralStorage.size",
            Some(i64::from(limits::EPHEMERAL_MIN)),
            Some(i64::from(limits::EPHEMERAL_MAX)),
        );
    }
    if let Some(mode) = c.tracing_config.as_ref().and_then(|t| t.mode.as_deref()) {
        v.one_of(mode, "tracingConfig.mode", &["Active", "PassThrough"]);
    }
    if let Some(l) = &c.logging_config {
        if let Some(f) = &l.log_format {
            v.one_of(f, "loggingConfig.logFormat", &["JSON", "Text"]);
        }
        if let Some(a) = &l.application_log_level {
            v.one_of(
                a,
                "loggingConfig.applicationLogLevel",
                &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
            );
        }
        if let Some(s) = &l.system_log_level {
            v.one_of(
                s,
                "loggingConfig.systemLogLevel",
                &["DEBUG", "INFO", "WARN"],
            );
        }
    }
    if let Some(a) = c.snap_start.as_ref().and_then(|s| s.apply_on.as_deref()) {
        v.one_of(a, "snapStart.applyOn", &["PublishedVersions", "None"]);
    }
    if let Some(layers) = &c.layers {
        for arn in layers {
            v.string(
                arn,
                "layers",
                1,
                140,
                Some((
                    "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+",
                    |s| LayerVersionRef::parse(s).is_some(),
                )),
            );
        }
    }
}

fn architectures_check(v: &mut Violations, archs: &[String]) {
    if archs.len() != 1 {
        v.add(
            format!("{archs:?}"),
            "architectures",
            "Member must have length less than or equal to 1",
        );
    }
    for a in archs {
        v.one_of(a, "architectures", &["x86_64", "arm64"]);
    }
}

/// What container-image functions refuse: Runtime, Handler and Layers belong to the image.
fn image_config_check(c: &ConfigInput, creating: bool) -> Result<()> {
    let refuse = |what: &str| {
        Err(ControlError::InvalidParameter(format!(
            "{what} {} not supported for functions with packageType Image.",
            if what == "Layers" { "are" } else { "is" }
        )))
    };
    if c.runtime.is_some() {
        return refuse("Runtime");
    }
    if c.handler.is_some() {
        return refuse("Handler");
    }
    if c.layers.as_ref().is_some_and(|l| !l.is_empty() || creating) {
        return refuse("Layers");
    }
    if let Some(config) = &c.image_config {
        crate::image::check_image_config(config)?;
    }
    Ok(())
}

/// Lambda answers an unknown runtime with InvalidParameterValueException (not a validation error).
fn runtime_check(c: &ConfigInput) -> Result<()> {
    match &c.runtime {
        Some(rt) if !runtime::is_known(rt) => Err(ControlError::InvalidParameter(format!(
            "Value {rt} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
            runtime::ALL_RUNTIMES.join(", ")
        ))),
        Some(rt) => match runtime::deprecation_message(rt) {
            Some(m) => Err(ControlError::InvalidParameter(m)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

impl ControlPlane {
    /// Refuses a runtime the host cannot run at all (InvalidParameterValueException naming
    /// what is missing). A substitute (another version, emulation) is accepted: the cold
    /// start writes what runs instead into the function's log.
    fn runnable_check(&self, runtime: Option<&str>, architectures: &[String]) -> Result<()> {
        let arch = architectures.first().map_or("x86_64", String::as_str);
        match self.availability(runtime, arch) {
            Availability::Missing(m) => Err(ControlError::InvalidParameter(m)),
            Availability::Exact | Availability::Substitute(_) => Ok(()),
        }
    }

    /// What runs instead of what `rec` asks for (another version, emulation), if anything:
    /// CreateFunction's response says it in `StateReason`; cold starts write it to the log.
    pub fn runtime_note(&self, rec: &VersionRecord) -> Option<String> {
        let arch = rec
            .spec
            .architectures
            .first()
            .map_or("x86_64", String::as_str);
        match self.availability(rec.spec.runtime.as_deref(), arch) {
            Availability::Substitute(n) => Some(n),
            Availability::Exact | Availability::Missing(_) => None,
        }
    }

    /// Service-level checks and the merge of `c` into `spec`.
    fn apply_config(&self, spec: &mut FunctionSpec, c: &ConfigInput) -> Result<()> {
        runtime_check(c)?;
        if let Some(t) = c.timeout {
            if t > i64::from(limits::TIMEOUT_MAX) {
                return Err(ControlError::InvalidParameter(format!(
                    "1 validation error detected: Value '{t}' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to {}",
                    limits::TIMEOUT_MAX
                )));
            }
            spec.timeout = t as u32;
        }
        if let Some(m) = c.memory_size {
            if m > i64::from(limits::MEMORY_MAX) {
                return Err(ControlError::InvalidParameter(format!(
                    "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to {}",
                    limits::MEMORY_MAX
                )));
            }
            spec.memory_size = m as u32;
        }
        if let Some(env) = &c.environment {
            let vars = env.variables.clone().unwrap_or_default();
            env_check(&vars)?;
            spec.environment = Some(vars);
        }
        if let Some(role) = &c.role {
            spec.role = role.clone();
        }
        if let Some(rt) = &c.runtime {
            spec.runtime = Some(rt.clone());
        }
        if let Some(h) = &c.handler {
            spec.handler = Some(h.clone());
        }
        if let Some(d) = &c.description {
            spec.description = d.clone();
        }
        if let Some(dlq) = &c.dead_letter_config {
            spec.dead_letter_target = dlq.target_arn.clone().filter(|t| !t.is_empty());
        }
        if let Some(k) = &c.kms_key_arn {
            spec.kms_key_arn = (!k.is_empty()).then(|| k.clone());
        }
        if let Some(mode) = c.tracing_config.as_ref().and_then(|t| t.mode.clone()) {
            spec.tracing_mode = mode;
        }
        if let Some(e) = c.ephemeral_storage.as_ref().and_then(|e| e.size) {
            spec.ephemeral_storage = e as u32;
        }
        if let Some(l) = &c.logging_config {
            if let Some(f) = &l.log_format {
                spec.logging.log_format = f.clone();
            }
            if l.application_log_level.is_some() {
                spec.logging.application_log_level = l.application_log_level.clone();
            }
            if l.system_log_level.is_some() {
                spec.logging.system_log_level = l.system_log_level.clone();
            }
            if let Some(g) = &l.log_group {
                spec.logging.log_group = g.clone();
            }
            // JSON logs have levels (INFO unless set, as Lambda shows them); text logs none.
            if spec.logging.log_format == "JSON" {
                for level in [
                    &mut spec.logging.application_log_level,
                    &mut spec.logging.system_log_level,
                ] {
                    level.get_or_insert_with(|| "INFO".to_string());
                }
            } else {
                spec.logging.application_log_level = None;
                spec.logging.system_log_level = None;
            }
        }
        if let Some(s) = c.snap_start.as_ref().and_then(|s| s.apply_on.clone()) {
            spec.snap_start_apply_on = s;
        }
        if c.vpc_config.is_some() {
            spec.vpc_config = c.vpc_config.clone();
        }
        if c.file_system_configs.is_some() {
            spec.file_system_configs = c.file_system_configs.clone();
        }
        if c.image_config.is_some() {
            spec.image_config = c.image_config.clone();
        }
        if let Some(layers) = &c.layers {
            spec.layers = self.attach_layers(layers)?;
        }
        Ok(())
    }

    /// Resolves layer version ARNs to attachments, with Lambda's checks.
    fn attach_layers(&self, arns: &[String]) -> Result<Vec<LayerAttachment>> {
        if arns.len() > limits::MAX_LAYERS {
            return Err(ControlError::InvalidParameter(format!(
                "Cannot reference more than {} layers.",
                limits::MAX_LAYERS
            )));
        }
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut out = Vec::with_capacity(arns.len());
        for arn in arns {
            let missing =
                || ControlError::InvalidParameter(format!("Layer version {arn} does not exist."));
            let r = LayerVersionRef::parse(arn).ok_or_else(missing)?;
            if r.region != self.arn().region || r.account_id != self.arn().account_id {
                return Err(missing());
            }
            if let Some(other) = seen.insert(r.name.clone(), arn) {
                return Err(ControlError::InvalidParameter(format!(
                    "Two different versions of the same layer are not allowed to be referenced in the same function. {other} and {arn} are versions of the same layer."
                )));
            }
            let rec = self
                .store()
                .layer_version(&r.name, r.version, false)?
                .ok_or_else(missing)?;
            out.push(LayerAttachment {
                arn: arn.clone(),
                code_size: rec.code.size,
            });
        }
        Ok(out)
    }

    /// Unzipped size of the given layers (deleted versions still count for users).
    fn layers_unzipped(&self, layers: &[LayerAttachment]) -> Result<u64> {
        let mut total = 0;
        for l in layers {
            if let Some(r) = LayerVersionRef::parse(&l.arn)
                && let Some(rec) = self.store().layer_version(&r.name, r.version, true)?
            {
                total += rec.code.unzipped_size;
            }
        }
        Ok(total)
    }

    /// CreateFunction: returns `$LATEST` and, with `Publish`, version 1. The new function's
    /// invoke target is cached on the way out (after the write lock's release), so that its
    /// first invocation, usually right after the deploy, finds it without a store read.
    pub fn create_function(
        &self,
        req: CreateFunction,
    ) -> Result<(VersionRecord, Option<VersionRecord>)> {
        let created = self.create_function_locked(req)?;
        // Best effort: a function that cannot be invoked yet is looked up at its invoke.
        let _ = self.invoke_target(&created.0.function_name, None);
        Ok(created)
    }

    fn create_function_locked(
        &self,
        req: CreateFunction,
    ) -> Result<(VersionRecord, Option<VersionRecord>)> {
        let mut v = Violations::new();
        let name = req.function_name.clone().unwrap_or_default();
        if req.function_name.is_none() {
            v.add("null", "functionName", "Member must not be null");
        }
        if req.config.role.is_none() {
            v.add("null", "role", "Member must not be null");
        }
        if req.code.is_none() {
            v.add("null", "code", "Member must not be null");
        }
        config_violations(&mut v, &req.config);
        if let Some(archs) = &req.architectures {
            architectures_check(&mut v, archs);
        }
        if let Some(pt) = &req.package_type {
            v.one_of(pt, "packageType", &["Zip", "Image"]);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        let r = parse_ref(self, &name, None, false)?;
        if r.qualifier.is_some() {
            return Err(ControlError::InvalidParameter(
                "Function name cannot contain a qualifier on CreateFunction.".into(),
            ));
        }
        let is_image = req.package_type.as_deref() == Some("Image");
        if is_image {
            image_config_check(&req.config, true)?;
        } else if req.config.image_config.is_some() {
            return Err(ControlError::InvalidParameter(
                "ImageConfig is not supported for functions with packageType Zip.".into(),
            ));
        }
        if !is_image && (req.config.runtime.is_none() || req.config.handler.is_none()) {
            return Err(ControlError::InvalidParameter(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
                    .into(),
            ));
        }
        if let Some(tags) = &req.tags {
            crate::tags::check_tags(tags)?;
        }
        let mut spec = FunctionSpec::lambda_defaults(&r.name);
        if let Some(archs) = &req.architectures {
            spec.architectures.clone_from(archs);
        }
        self.apply_config(&mut spec, &req.config)?;
        if !is_image {
            self.runnable_check(spec.runtime.as_deref(), &spec.architectures)?;
        }
        let code_input = req.code.clone().unwrap_or_default();
        let (zip, image_code) = if is_image {
            spec.package_type = "Image".into();
            let arch = spec.architectures.first().cloned().unwrap_or_default();
            (Vec::new(), Some(self.resolve_image(&code_input, &arch)?))
        } else {
            (
                zip_bytes(&code_input, "CreateFunction", self.code_source())?,
                None,
            )
        };
        let unzipped = match &image_code {
            Some((_, size)) => *size,
            None => verify_zip(&zip)?,
        };
        let _guard = self.lock();
        if self.store().function(&r.name)?.is_some() {
            return Err(ControlError::Conflict(format!(
                "Function already exist: {}",
                r.name
            )));
        }
        let code = match image_code {
            Some((code, _)) => code,
            None => {
                check_unzipped(unzipped + self.layers_unzipped(&spec.layers)?)?;
                self.store_code(&zip, unzipped)?
            }
        };
        let now = now_ms();
        let latest = VersionRecord {
            function_name: r.name.clone(),
            version: None,
            spec,
            code,
            revision_id: new_revision(),
            last_modified_ms: now,
        };
        let published = req.publish.then(|| VersionRecord {
            version: Some(1),
            revision_id: new_revision(),
            ..latest.clone()
        });
        let meta = FunctionMeta {
            name: r.name.clone(),
            created_ms: now,
            tags: req.tags.unwrap_or_default(),
            reserved_concurrency: None,
            last_version: u64::from(req.publish),
            provisioned: Default::default(),
        };
        match self
            .store()
            .create_function(&meta, &latest, published.as_ref())
        {
            // Created by another node since the check above.
            Err(StoreError::AlreadyExists(Entity::Function)) => Err(ControlError::Conflict(
                format!("Function already exist: {}", r.name),
            )),
            other => other.map_err(ControlError::from),
        }?;
        tracing::info!(function = %r.name, publish = req.publish, "function created");
        Ok((latest, published))
    }

    /// GetFunction / GetFunctionConfiguration.
    pub fn get_function(&self, raw: &str, qualifier: Option<&str>) -> Result<FunctionDetails> {
        let r = parse_ref(self, raw, qualifier, true)?;
        let resolved = self.load(&r)?;
        let meta = self
            .store()
            .function(&r.name)?
            .ok_or_else(|| self.not_found(&r))?;
        Ok(FunctionDetails {
            version: resolved.record,
            alias: match &r.qualifier {
                Some(Qualifier::Alias(a)) => Some(a.clone()),
                _ => None,
            },
            qualifier: r.qualifier,
            tags: meta.tags,
            reserved_concurrency: meta.reserved_concurrency,
        })
    }

    /// ListFunctions.
    pub fn list_functions(
        &self,
        all_versions: bool,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<FunctionList> {
        let size = page_size(max_items, limits::LIST_FUNCTIONS_PAGE, 10_000)?
            .min(limits::LIST_FUNCTIONS_PAGE);
        let after = match marker {
            None => None,
            Some(m) => {
                let (name, version) = m.rsplit_once(':').ok_or_else(|| {
                    ControlError::InvalidParameter(format!("Invalid marker: {m}"))
                })?;
                let version: u64 = version
                    .parse()
                    .map_err(|_| ControlError::InvalidParameter(format!("Invalid marker: {m}")))?;
                Some((name.to_string(), version))
            }
        };
        let mut items = self.store().list_functions(
            after.as_ref().map(|(n, v)| (n.as_str(), *v)),
            all_versions,
            size + 1,
        )?;
        let more = items.len() > size;
        items.truncate(size);
        let next_marker = more
            .then(|| {
                items
                    .last()
                    .map(|l| format!("{}:{}", l.function_name, l.version.unwrap_or(0)))
            })
            .flatten();
        Ok(Page { items, next_marker })
    }

    /// UpdateFunctionCode.
    pub fn update_function_code(
        &self,
        raw: &str,
        req: UpdateFunctionCode,
    ) -> Result<(VersionRecord, Option<VersionRecord>)> {
        let r = parse_ref(self, raw, None, false)?;
        let mut v = Violations::new();
        if let Some(archs) = &req.architectures {
            architectures_check(&mut v, archs);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        // The package type is the function's: read it before resolving (the write lock is
        // not held while an image is verified).
        let before = self.load_latest(&r)?;
        let is_image = before.spec.package_type == "Image";
        if !is_image && let Some(archs) = &req.architectures {
            self.runnable_check(before.spec.runtime.as_deref(), archs)?;
        }
        let (zip, image_code) = if is_image {
            let arch = req
                .architectures
                .as_ref()
                .or(Some(&before.spec.architectures))
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| "x86_64".into());
            (Vec::new(), Some(self.resolve_image(&req.code, &arch)?))
        } else {
            if req.code.image_uri.is_some() {
                return Err(ControlError::InvalidParameter(
                    "Please don't provide ImageUri when updating a function with packageType Zip."
                        .into(),
                ));
            }
            (
                zip_bytes(&req.code, "UpdateFunctionCode", self.code_source())?,
                None,
            )
        };
        let unzipped = match &image_code {
            Some((_, size)) => *size,
            None => verify_zip(&zip)?,
        };
        let _guard = self.lock();
        let current = self.load_latest(&r)?;
        if req
            .revision_id
            .as_ref()
            .is_some_and(|rev| *rev != current.revision_id)
        {
            return Err(revision_mismatch());
        }
        let mut next = current.clone();
        if let Some(archs) = req.architectures {
            next.spec.architectures = archs;
        }
        if image_code.is_none() {
            check_unzipped(unzipped + self.layers_unzipped(&next.spec.layers)?)?;
        }
        if req.dry_run {
            return Ok((next, None));
        }
        next.code = match image_code {
            Some((code, _)) => code,
            None => self.store_code(&zip, unzipped)?,
        };
        next.revision_id = new_revision();
        next.last_modified_ms = now_ms();
        let client_revision = req.revision_id.is_some();
        self.commit_latest(&r, &next, &current.revision_id, client_revision)?;
        let published = if req.publish {
            Some(self.publish_locked(&r, &next, None, client_revision)?)
        } else {
            None
        };
        Ok((next, published))
    }

    /// UpdateFunctionConfiguration.
    pub fn update_function_configuration(
        &self,
        raw: &str,
        req: UpdateFunctionConfiguration,
    ) -> Result<VersionRecord> {
        let r = parse_ref(self, raw, None, false)?;
        let mut v = Violations::new();
        config_violations(&mut v, &req.config);
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        if let Some(rt) = &req.config.runtime {
            // Before the write lock: the first check of a runtime may build it (seconds).
            runtime_check(&req.config)?;
            let archs = self.load_latest(&r)?.spec.architectures;
            self.runnable_check(Some(rt), &archs)?;
        }
        let _guard = self.lock();
        let current = self.load_latest(&r)?;
        if req
            .revision_id
            .as_ref()
            .is_some_and(|rev| *rev != current.revision_id)
        {
            return Err(revision_mismatch());
        }
        let mut next = current.clone();
        if current.spec.package_type == "Image" {
            image_config_check(&req.config, false)?;
        } else if req.config.image_config.is_some() {
            return Err(ControlError::InvalidParameter(
                "ImageConfig is not supported for functions with packageType Zip.".into(),
            ));
        }
        self.apply_config(&mut next.spec, &req.config)?;
        if current.spec.package_type != "Image" {
            check_unzipped(next.code.unzipped_size + self.layers_unzipped(&next.spec.layers)?)?;
        }
        next.revision_id = new_revision();
        next.last_modified_ms = now_ms();
        self.commit_latest(&r, &next, &current.revision_id, req.revision_id.is_some())?;
        Ok(next)
    }

    /// Replaces `$LATEST` if it is still at `expected` (the revision read under the write lock;
    /// another node may have changed it since).
    fn commit_latest(
        &self,
        r: &FunctionRef,
        next: &VersionRecord,
        expected: &str,
        client_revision: bool,
    ) -> Result<()> {
        match self.store().update_latest(next, expected) {
            Err(StoreError::RevisionMismatch) => Err(stale_revision(
                client_revision,
                &self.arn().function_arn(&r.name),
            )),
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            })),
            other => Ok(other?),
        }
    }

    /// DeleteFunction: the whole function, or one published version.
    pub fn delete_function(&self, raw: &str, qualifier: Option<&str>) -> Result<()> {
        let r = parse_ref(self, raw, qualifier, true)?;
        let _guard = self.lock();
        if self.store().function(&r.name)?.is_none() {
            return Err(self.not_found(&FunctionRef {
                qualifier: None,
                ..r.clone()
            }));
        }
        match &r.qualifier {
            None => match self.store().delete_function(&r.name) {
                Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
                other => Ok(other?),
            },
            Some(Qualifier::Latest) => Err(ControlError::InvalidParameter(
                "$LATEST version cannot be deleted without deleting the function.".into(),
            )),
            Some(Qualifier::Alias(_)) => Err(ControlError::InvalidParameter(
                "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias.".into(),
            )),
            Some(Qualifier::Version(n)) => match self.store().delete_version(&r.name, *n) {
                Err(StoreError::NotFound(Entity::Version)) => Err(self.not_found(&r)),
                Err(StoreError::InUse { alias }) => Err(ControlError::Conflict(format!(
                    "Unable to delete version because the following aliases reference it: [{alias}]"
                ))),
                other => {
                    other?;
                    // Its provisioned concurrency configuration goes with it (as in Lambda).
                    self.forget_provisioned(&r.name, &n.to_string())
                }
            },
        }
    }
}
