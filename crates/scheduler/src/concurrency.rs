//! Concurrency admission: the account's unreserved pool and functions' reserved concurrency.
//!
//! Alone, a node admits against the limits themselves. In a cluster ([`Concurrency::use_grants`])
//! it also admits against the slots the cluster granted it per scope (the unreserved pool, or a
//! function with reserved concurrency): still one mutex and no I/O per invocation. An
//! invocation refused only for want of granted slots may ask the cluster for more (the slow
//! path, [`GrantBroker`]); the node's grant table follows the rules that keep the cluster
//! within its limits:
//! - a grant is used only after the cluster granted it ([`Concurrency::apply_grants`]);
//! - it is given back *before* the cluster hears of it, and never below the invocations in
//!   flight ([`Concurrency::grant_round`]);
//! - a fenced node admits nothing, and a node declared dead holds nothing
//!   ([`Concurrency::revoke_grants`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

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

/// The grant scope of the unreserved pool (a function's is `function:<name>`).
pub const UNRESERVED_SCOPE: &str = "unreserved";

/// The prefix of a function's grant scope.
const FUNCTION_SCOPE: &str = "function:";

/// A function scope unused this long, with nothing in flight, is given back and forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Asks the cluster for more slots of a scope for this node.
pub trait GrantBroker: Send + Sync + 'static {
    /// Asks for more of `scope`'s slots; by the time the future resolves, whatever was
    /// granted is applied to the node's table (or nothing could be had in time).
    fn ask(&self, scope: String) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Whether this node may admit invocations against its grants (not fenced).
pub type HealthFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the node tells the cluster about one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDemand {
    pub scope: String,
    /// The scope's limit (0 with `demand` and `keep` 0: the node gives the scope up).
    pub limit: u32,
    /// Peak in flight since the last round plus refusals meanwhile.
    pub demand: u32,
    /// The grant applied locally now (never below the invocations in flight).
    pub keep: u32,
}

/// One scope's grant on this node.
#[derive(Debug, Clone)]
struct ScopeGrant {
    limit: u32,
    granted: u32,
    /// The node's fair share at the last exchange with the cluster.
    target: Option<u32>,
    /// Most in flight at once since the last round.
    peak: u32,
    /// Invocations refused since the last round.
    refused: u32,
    used: Instant,
}

impl ScopeGrant {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            granted: 0,
            target: None,
            peak: 0,
            refused: 0,
            used: Instant::now(),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// In-flight invocations of functions without reserved concurrency.
    unreserved: u32,
    /// In-flight invocations per function.
    per_function: HashMap<String, u32>,
    /// The unreserved pool's grant (cluster only).
    unreserved_grant: Option<ScopeGrant>,
    /// Reserved functions' grants, by function name (cluster only).
    function_grants: HashMap<String, ScopeGrant>,
}

struct Granting {
    healthy: HealthFn,
    broker: Arc<dyn GrantBroker>,
}

/// Admission control shared by every invocation path.
#[derive(Default)]
pub struct Concurrency {
    counts: Mutex<Counts>,
    /// Set in a cluster: admission within granted slots.
    granting: OnceLock<Granting>,
}

impl std::fmt::Debug for Concurrency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Concurrency")
            .field("counts", &self.counts)
            .field("granting", &self.granting.get().is_some())
            .finish()
    }
}

/// Why [`Concurrency::admit`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: ThrottleReason,
    /// The scope to ask the cluster for more slots of, when the limit itself was not reached
    /// (only the node's grant was) and the node is healthy.
    pub ask: Option<String>,
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
        self.admit(function, reserved, unreserved_pool)
            .map_err(|r| r.reason)
    }

    /// [`Self::acquire`], saying whether more granted slots could help.
    pub fn admit(
        self: &Arc<Self>,
        function: &str,
        reserved: Option<u32>,
        unreserved_pool: u32,
    ) -> Result<Permit, Refused> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let running = c.per_function.get(function).copied().unwrap_or(0);
        let (reason, in_scope, limit) = match reserved {
            Some(limit) => (
                ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
                running,
                limit,
            ),
            None => (
                ThrottleReason::ConcurrentInvocationLimitExceeded,
                c.unreserved,
                unreserved_pool,
            ),
        };
        if in_scope >= limit {
            return Err(Refused { reason, ask: None });
        }
        if let Some(granting) = self.granting.get() {
            let healthy = (granting.healthy)();
            let grant = match reserved {
                Some(_) => {
                    if !c.function_grants.contains_key(function) {
                        c.function_grants
                            .insert(function.to_string(), ScopeGrant::new(limit));
                    }
                    c.function_grants.get_mut(function)
                }
                None => Some(
                    c.unreserved_grant
                        .get_or_insert_with(|| ScopeGrant::new(limit)),
                ),
            };
            if let Some(g) = grant {
                g.limit = limit;
                g.used = Instant::now();
                if !healthy || in_scope >= g.granted {
                    g.refused = g.refused.saturating_add(1);
                    let ask = healthy.then(|| match reserved {
                        Some(_) => format!("{FUNCTION_SCOPE}{function}"),
                        None => UNRESERVED_SCOPE.to_string(),
                    });
                    return Err(Refused { reason, ask });
                }
                g.peak = g.peak.max(in_scope + 1);
            }
        }
        if reserved.is_none() {
            c.unreserved += 1;
        }
        // The name is copied only when the function has nothing running yet (the entry API
        // would copy it for every invocation).
        match c.per_function.get_mut(function) {
            Some(n) => *n += 1,
            None => {
                c.per_function.insert(function.to_string(), 1);
            }
        }
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

    /// From now on, admits only within the slots the cluster grants this node (none yet),
    /// and only while `healthy`. Set once (later calls are ignored).
    pub fn use_grants(&self, healthy: HealthFn, broker: Arc<dyn GrantBroker>) {
        let _ = self.granting.set(Granting { healthy, broker });
    }

    /// Whether admission is within the cluster's grants.
    pub fn granting(&self) -> bool {
        self.granting.get().is_some()
    }

    /// The broker to ask for more slots (in a cluster).
    pub fn broker(&self) -> Option<Arc<dyn GrantBroker>> {
        self.granting.get().map(|g| Arc::clone(&g.broker))
    }

    /// The start of a rebalancing round: gives back, locally and at once, what each scope
    /// holds beyond its last known fair share (never below its invocations in flight), and
    /// returns every scope's demand and kept grant for the cluster. Forgets function scopes
    /// idle for a while (asking for nothing: the cluster deletes their grants).
    pub fn grant_round(&self) -> Vec<ScopeDemand> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let c = &mut *c;
        let mut out = Vec::new();
        if let Some(g) = &mut c.unreserved_grant {
            out.push(round_one(UNRESERVED_SCOPE.to_string(), g, c.unreserved));
        }
        let mut forget = Vec::new();
        for (function, g) in &mut c.function_grants {
            let running = c.per_function.get(function).copied().unwrap_or(0);
            let scope = format!("{FUNCTION_SCOPE}{function}");
            if running == 0 && g.refused == 0 && g.used.elapsed() > FORGET_AFTER {
                forget.push(function.clone());
                out.push(ScopeDemand {
                    scope,
                    limit: 0,
                    demand: 0,
                    keep: 0,
                });
            } else {
                out.push(round_one(scope, g, running));
            }
        }
        for function in forget {
            c.function_grants.remove(&function);
        }
        out
    }

    /// What the node tells the cluster when it asks for more of `scope` (nothing given back).
    pub fn grant_ask(&self, scope: &str) -> Option<ScopeDemand> {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (g, running) = match scope.strip_prefix(FUNCTION_SCOPE) {
            Some(function) => (
                c.function_grants.get(function)?,
                c.per_function.get(function).copied().unwrap_or(0),
            ),
            None => (c.unreserved_grant.as_ref()?, c.unreserved),
        };
        Some(ScopeDemand {
            scope: scope.to_string(),
            limit: g.limit,
            demand: g.peak.max(running).saturating_add(g.refused.max(1)),
            keep: g.granted,
        })
    }

    /// Applies what the cluster granted: `(scope, granted, fair share)`, unless `current()`
    /// says (under the table's lock) that the grants were revoked since they were asked for.
    pub fn apply_grants(&self, grants: &[(String, u32, u32)], current: &dyn Fn() -> bool) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !current() {
            return;
        }
        for (scope, granted, target) in grants {
            let g = match scope.strip_prefix(FUNCTION_SCOPE) {
                Some(function) => c.function_grants.get_mut(function),
                None => c.unreserved_grant.as_mut(),
            };
            if let Some(g) = g {
                g.granted = *granted;
                g.target = Some(*target);
            }
        }
    }

    /// Drops every grant (the node was declared dead or leaves: the cluster freed them).
    pub fn revoke_grants(&self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let c = &mut *c;
        for g in c
            .unreserved_grant
            .iter_mut()
            .chain(c.function_grants.values_mut())
        {
            g.granted = 0;
            g.target = None;
        }
    }

    /// Slots granted to this node, by scope (empty alone).
    pub fn granted(&self) -> Vec<(String, u32)> {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, u32)> = c
            .function_grants
            .iter()
            .map(|(f, g)| (format!("{FUNCTION_SCOPE}{f}"), g.granted))
            .collect();
        out.sort();
        if let Some(g) = &c.unreserved_grant {
            out.insert(0, (UNRESERVED_SCOPE.to_string(), g.granted));
        }
        out
    }
}

/// One scope's part of [`Concurrency::grant_round`]: shrink to the fair share first.
fn round_one(scope: String, g: &mut ScopeGrant, running: u32) -> ScopeDemand {
    if let Some(target) = g.target
        && g.granted > target
    {
        g.granted = target.max(running);
    }
    let demand = g.peak.max(running).saturating_add(g.refused);
    g.peak = running;
    g.refused = 0;
    ScopeDemand {
        scope,
        limit: g.limit,
        demand,
        keep: g.granted,
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
