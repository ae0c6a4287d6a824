//! Concurrency admission: the account's unreserved pool and functions' reserved concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Why an invocation was throttled (`TooManyRequestsException.Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The account's unreserved concurrency is exhausted.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is exhausted (or zero).
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// No execution environment could be had in time: every cold-start slot stayed busy and
    /// no warm environment freed up (Lambda's limit on how fast a function scales out).
    FunctionInvocationRateLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Self::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            Self::FunctionInvocationRateLimitExceeded => "FunctionInvocationRateLimitExceeded",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// In-flight invocations of functions without reserved concurrency.
    unreserved: u32,
    /// In-flight invocations per function.
    per_function: HashMap<String, u32>,
}

/// Admission control shared by every invocation path.
#[derive(Debug, Default)]
pub struct Concurrency {
    counts: Mutex<Counts>,
}

/// One admitted invocation; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    owner: Arc<Concurrency>,
    function: String,
    reserved: bool,
}

impl Concurrency {
    /// Admits one invocation of `function`. With `reserved`, the function may run that many at
    /// once; otherwise it shares `unreserved_pool` with every other unreserved function.
    pub fn acquire(
        self: &Arc<Self>,
        function: &str,
        reserved: Option<u32>,
        unreserved_pool: u32,
    ) -> Result<Permit, ThrottleReason> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let running = c.per_function.get(function).copied().unwrap_or(0);
        match reserved {
            Some(limit) if running >= limit => {
                return Err(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
            }
            Some(_) => {}
            None if c.unreserved >= unreserved_pool => {
                return Err(ThrottleReason::ConcurrentInvocationLimitExceeded);
            }
            None => c.unreserved += 1,
        }
        *c.per_function.entry(function.to_string()).or_insert(0) += 1;
        Ok(Permit {
            owner: Arc::clone(self),
            function: function.to_string(),
            reserved: reserved.is_some(),
        })
    }

    /// In-flight invocations without reserved concurrency, and per function (by name).
    pub fn snapshot(&self) -> (u32, Vec<(String, u32)>) {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut per: Vec<(String, u32)> = c
            .per_function
            .iter()
            .map(|(f, n)| (f.clone(), *n))
            .collect();
        per.sort();
        (c.unreserved, per)
    }

    /// In-flight invocations of one function.
    pub fn running(&self, function: &str) -> u32 {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.per_function.get(function).copied().unwrap_or(0)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self
            .owner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.reserved {
            c.unreserved = c.unreserved.saturating_sub(1);
        }
        if let Some(n) = c.per_function.get_mut(&self.function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_function.remove(&self.function);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_unreserved_pools() {
        let c = Arc::new(Concurrency::default());
        let a = c.acquire("a", Some(1), 10).unwrap();
        assert_eq!(
            c.acquire("a", Some(1), 10).unwrap_err(),
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
        );
        assert!(c.acquire("z", Some(0), 10).is_err());
        let b1 = c.acquire("b", None, 2).unwrap();
        let _b2 = c.acquire("c", None, 2).unwrap();
        assert_eq!(
            c.acquire("d", None, 2).unwrap_err(),
            ThrottleReason::ConcurrentInvocationLimitExceeded
        );
        drop(b1);
        assert!(c.acquire("d", None, 2).is_ok());
        drop(a);
        assert_eq!(c.running("a"), 0);
        assert!(c.acquire("a", Some(1), 10).is_ok());
    }
}
