//! Reserved concurrency and the account settings it is measured against.

use kindling_model::FunctionRef;
use kindling_model::limits;
use kindling_store::{Entity, StoreError};

use crate::ControlPlane;
use crate::error::{ControlError, Result};
use crate::resolve::parse_ref;

/// GetAccountSettings' figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    pub total_code_size_limit: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u32,
    pub unreserved_concurrent_executions: u64,
    pub total_code_size_used: u64,
    pub function_count: u64,
}

impl ControlPlane {
    fn unqualified(&self, raw: &str) -> Result<FunctionRef> {
        let r = parse_ref(self, raw, None, false)?;
        if r.qualifier.is_some() {
            return Err(ControlError::InvalidParameter(
                "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN."
                    .into(),
            ));
        }
        Ok(r)
    }

    /// PutFunctionConcurrency.
    pub fn put_concurrency(&self, raw: &str, value: Option<i64>) -> Result<u32> {
        let value = match value {
            None => {
                return Err(ControlError::Validation(
                    "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null".into(),
                ));
            }
            Some(v) if v < 0 => {
                return Err(ControlError::Validation(format!(
                    "1 validation error detected: Value '{v}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"
                )));
            }
            Some(v) => v,
        };
        let r = self.unqualified(raw)?;
        let cfg = self.config();
        let max_total = u64::from(
            cfg.account_concurrency
                .saturating_sub(cfg.min_unreserved_concurrency),
        );
        let floor_error = || {
            ControlError::InvalidParameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
                cfg.min_unreserved_concurrency
            ))
        };
        if value as u64 > max_total {
            return Err(floor_error());
        }
        let _guard = self.lock();
        // Provisioned concurrency of functions without a reservation is taken from the
        // unreserved pool too (this function's own moves into its reservation).
        let own_provisioned = match self.store().function(&r.name)? {
            Some(m) if m.reserved_concurrency.is_none() => {
                m.provisioned.values().map(|p| u64::from(p.requested)).sum()
            }
            _ => 0,
        };
        let taken = self
            .store()
            .account_usage()?
            .unreserved_provisioned
            .saturating_sub(own_provisioned);
        let max_total = max_total.saturating_sub(taken);
        match self
            .store()
            .set_reserved_concurrency(&r.name, Some(value as u32), max_total)
        {
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
            Err(StoreError::LimitExceeded) => Err(floor_error()),
            other => Ok(other?),
        }?;
        Ok(value as u32)
    }

    /// GetFunctionConcurrency.
    pub fn get_concurrency(&self, raw: &str) -> Result<Option<u32>> {
        let r = self.unqualified(raw)?;
        let meta = self
            .store()
            .function(&r.name)?
            .ok_or_else(|| self.not_found(&r))?;
        Ok(meta.reserved_concurrency)
    }

    /// DeleteFunctionConcurrency.
    pub fn delete_concurrency(&self, raw: &str) -> Result<()> {
        let r = self.unqualified(raw)?;
        let _guard = self.lock();
        match self
            .store()
            .set_reserved_concurrency(&r.name, None, u64::MAX)
        {
            Err(StoreError::NotFound(Entity::Function)) => Err(self.not_found(&r)),
            other => Ok(other?),
        }
    }

    /// GetAccountSettings.
    pub fn account_settings(&self) -> Result<AccountSettings> {
        let usage = self.store().account_usage()?;
        let limit = self.config().account_concurrency;
        Ok(AccountSettings {
            total_code_size_limit: limits::TOTAL_CODE_SIZE,
            code_size_unzipped: limits::CODE_SIZE_UNZIPPED,
            code_size_zipped: limits::CODE_SIZE_ZIPPED,
            concurrent_executions: limit,
            unreserved_concurrent_executions: u64::from(limit)
                .saturating_sub(usage.reserved_concurrency)
                .saturating_sub(usage.unreserved_provisioned),
            total_code_size_used: usage.total_code_size,
            function_count: usage.function_count,
        })
    }
}
