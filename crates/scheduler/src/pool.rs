//! The warm pool: idle environments by exact function version and revision, and the
//! invocations waiting for one.
//!
//! Generic over what it holds ([`Pooled`]), so it knows nothing of how environments run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kindling_model::function::VersionRecord;
use tokio::sync::oneshot;

use crate::freezer::Freezer;

/// Environments are shared only by invocations of the same version at the same revision, so an
/// update of `$LATEST` never reaches an environment started with the old code or configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub function: String,
    pub version: String,
    pub revision: String,
}

impl PoolKey {
    pub fn of(rec: &VersionRecord) -> Self {
        Self {
            function: rec.function_name.clone(),
            version: rec.version_label(),
            revision: rec.revision_id.clone(),
        }
    }
}

/// What the pool needs of an environment.
pub(crate) trait Pooled: Send + 'static {
    fn key(&self) -> &PoolKey;
    /// When its last invocation ended.
    fn last_used(&self) -> Instant;
    /// Its runtime is still running.
    fn alive(&self) -> bool;
    fn freezer(&self) -> &Arc<Freezer>;
}

/// Either an idle environment, or a receiver on which one will be handed over when an
/// invocation of the same key returns its environment.
pub(crate) enum Taken<E> {
    Warm(E),
    Wait(oneshot::Receiver<E>),
}

/// Idle environments, most recently used last (taken first: hot environments stay hot), and
/// the invocations waiting for an environment of a key, oldest first.
pub(crate) struct Pool<E> {
    idle: HashMap<PoolKey, Vec<E>>,
    waiters: HashMap<PoolKey, VecDeque<oneshot::Sender<E>>>,
    /// Keys of which an environment went idle since [`Pool::advertised`] last looked.
    recent: HashSet<PoolKey>,
}

impl<E> Default for Pool<E> {
    fn default() -> Self {
        Self {
            idle: HashMap::new(),
            waiters: HashMap::new(),
            recent: HashSet::new(),
        }
    }
}

impl<E: Pooled> Pool<E> {
    /// An idle environment of `key`, marked busy.
    pub fn take(&mut self, key: &PoolKey) -> Option<E> {
        // An emptied list stays (the warm path takes and puts back the same key on every
        // invoke: no key clone and re-insert each time); the reaper's `expired` drops it.
        let env = self.idle.get_mut(key)?.pop();
        if let Some(env) = &env {
            env.freezer().set_idle(false);
        }
        env
    }

    /// An idle environment of `key`, or a place in the line for the next one returned.
    pub fn take_or_wait(&mut self, key: &PoolKey) -> Taken<E> {
        if let Some(env) = self.take(key) {
            return Taken::Warm(env);
        }
        let (tx, rx) = oneshot::channel();
        let line = self.waiters.entry(key.clone()).or_default();
        line.retain(|w| !w.is_closed());
        line.push_back(tx);
        Taken::Wait(rx)
    }

    /// Returns an environment: to the oldest invocation waiting for its key, else to the idle
    /// list (marked idle, so the reaper may freeze it where it sits).
    pub fn put(&mut self, mut env: E) {
        if let Some(line) = self.waiters.get_mut(env.key()) {
            while let Some(waiter) = line.pop_front() {
                match waiter.send(env) {
                    Ok(()) => return,
                    // That invocation stopped waiting (it got a cold-start slot): next one.
                    Err(back) => env = back,
                }
            }
            self.waiters.remove(env.key());
        }
        env.freezer().set_idle(true);
        if !self.recent.contains(env.key()) {
            self.recent.insert(env.key().clone());
        }
        match self.idle.get_mut(env.key()) {
            Some(list) => list.push(env),
            None => {
                self.idle.insert(env.key().clone(), vec![env]);
            }
        }
    }

    /// Removes the environment idle the longest, of any key (each list's first is its
    /// least recently used).
    pub fn take_least_recent(&mut self) -> Option<E> {
        let key = self
            .idle
            .iter()
            .filter_map(|(key, list)| list.first().map(|e| (e.last_used(), key)))
            .min_by_key(|(used, _)| *used)
            .map(|(_, key)| key.clone())?;
        let list = self.idle.get_mut(&key)?;
        let env = list.remove(0);
        if list.is_empty() {
            self.idle.remove(&key);
        }
        env.freezer().set_idle(false);
        Some(env)
    }

    /// Removes environments idle for `max_idle` or longer, and those whose runtime died.
    pub fn expired(&mut self, max_idle: Duration, now: Instant) -> Vec<E> {
        let mut out = Vec::new();
        for list in self.idle.values_mut() {
            let (old, fresh): (Vec<E>, Vec<E>) = std::mem::take(list)
                .into_iter()
                .partition(|e| now.duration_since(e.last_used()) >= max_idle || !e.alive());
            *list = fresh;
            out.extend(old);
        }
        self.idle.retain(|_, l| !l.is_empty());
        for env in &out {
            env.freezer().set_idle(false);
        }
        out
    }

    /// The freezers (with their idle periods) of idle environments not yet frozen, idle for
    /// `after` or longer. The environments stay where they are: an invocation may take one
    /// while it is being frozen.
    pub fn freeze_candidates(&self, after: Duration, now: Instant) -> Vec<(Arc<Freezer>, u64)> {
        self.idle
            .values()
            .flatten()
            .filter(|e| e.freezer().wants_freeze() && now.duration_since(e.last_used()) >= after)
            .map(|e| (Arc::clone(e.freezer()), e.freezer().idle_period()))
            .collect()
    }

    /// Removes the idle environments of a function's versions other than the current revisions.
    pub fn stale(&mut self, key: &PoolKey) -> Vec<E> {
        let stale: Vec<PoolKey> = self
            .idle
            .keys()
            .filter(|k| {
                k.function == key.function && k.version == key.version && k.revision != key.revision
            })
            .cloned()
            .collect();
        let out: Vec<E> = stale
            .into_iter()
            .flat_map(|k| self.idle.remove(&k).unwrap_or_default())
            .collect();
        for env in &out {
            env.freezer().set_idle(false);
        }
        out
    }

    /// Every idle environment; waiting invocations lose their place (their receivers close).
    pub fn drain(&mut self) -> Vec<E> {
        self.waiters.clear();
        let out: Vec<E> = self.idle.drain().flat_map(|(_, l)| l).collect();
        for env in &out {
            env.freezer().set_idle(false);
        }
        out
    }

    /// Whether an environment of `key` is idle now.
    pub fn has_idle(&self, key: &PoolKey) -> bool {
        self.idle.get(key).is_some_and(|list| !list.is_empty())
    }

    /// The keys this node advertises to the others (routing of synchronous invokes): those
    /// with an idle environment now or at some moment since the last call. A key whose
    /// environments stay busy a whole period, or are gone, drops out.
    pub fn advertised(&mut self) -> Vec<PoolKey> {
        let mut keys: Vec<PoolKey> = self.recent.drain().collect();
        keys.extend(
            self.idle
                .iter()
                .filter(|(_, list)| !list.is_empty())
                .map(|(key, _)| key.clone()),
        );
        keys
    }

    /// Idle environments.
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}

/// Freezes, where they sit, the idle environments of `pool` idle for `after` or longer; the
/// freezes run one after the other (each is a few cgroup writes and a short wait).
pub(crate) async fn freeze_idle<E: Pooled>(pool: &Mutex<Pool<E>>, after: Duration) {
    let candidates = pool
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .freeze_candidates(after, Instant::now());
    for (freezer, period) in candidates {
        freezer.freeze_if_idle(period).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Notify;

    use super::*;
    use crate::freezer::tests::Fake;

    struct FakeEnv {
        key: PoolKey,
        last_used: Instant,
        freezer: Arc<Freezer>,
        id: u32,
    }

    impl Pooled for FakeEnv {
        fn key(&self) -> &PoolKey {
            &self.key
        }
        fn last_used(&self) -> Instant {
            self.last_used
        }
        fn alive(&self) -> bool {
            true
        }
        fn freezer(&self) -> &Arc<Freezer> {
            &self.freezer
        }
    }

    fn key(f: &str) -> PoolKey {
        PoolKey {
            function: f.into(),
            version: "$LATEST".into(),
            revision: "r1".into(),
        }
    }

    fn env(f: &str, id: u32, fake: Arc<Fake>, idle_for: Duration) -> FakeEnv {
        FakeEnv {
            key: key(f),
            last_used: Instant::now() - idle_for,
            freezer: Arc::new(Freezer::new(fake)),
            id,
        }
    }

    /// An invocation arriving while the reaper freezes the idle environments finds its warm
    /// environment (thawed), instead of an empty pool and a cold start.
    #[tokio::test]
    async fn an_environment_being_frozen_stays_in_the_pool() {
        let gate = Arc::new(Notify::new());
        let fake = Arc::new(Fake {
            gate: Some(Arc::clone(&gate)),
            ..Fake::default()
        });
        let pool = Arc::new(Mutex::new(Pool::default()));
        pool.lock()
            .unwrap()
            .put(env("f", 1, Arc::clone(&fake), Duration::from_secs(1)));
        let reaper = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { freeze_idle(&pool, Duration::from_millis(500)).await }
        });
        fake.started.notified().await;

        let taken = pool.lock().unwrap().take(&key("f"));
        let taken = taken.expect("the environment being frozen is still in the pool");
        assert_eq!(taken.id, 1);
        let thaw = tokio::spawn({
            let freezer = Arc::clone(&taken.freezer);
            async move { freezer.thaw().await }
        });
        gate.notify_one();
        reaper.await.unwrap();
        thaw.await.unwrap();
        assert!(!taken.freezer.is_frozen());
        assert_eq!(
            *fake.log.lock().unwrap(),
            ["freeze-start", "frozen", "thawed"]
        );
        // Taken environments are not frozen again.
        freeze_idle(&pool, Duration::ZERO).await;
        assert_eq!(fake.log.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn frozen_environments_stay_in_the_pool_and_are_not_frozen_twice() {
        let fake = Arc::new(Fake::default());
        let pool = Mutex::new(Pool::default());
        pool.lock()
            .unwrap()
            .put(env("f", 1, Arc::clone(&fake), Duration::from_secs(1)));
        pool.lock()
            .unwrap()
            .put(env("g", 2, Arc::clone(&fake), Duration::ZERO));
        freeze_idle(&pool, Duration::from_millis(500)).await;
        freeze_idle(&pool, Duration::from_millis(500)).await;
        assert_eq!(*fake.log.lock().unwrap(), ["freeze-start", "frozen"]);
        assert_eq!(pool.lock().unwrap().len(), 2);
        assert!(
            pool.lock()
                .unwrap()
                .take(&key("f"))
                .unwrap()
                .freezer
                .is_frozen()
        );
    }

    #[test]
    fn returned_environments_go_to_the_oldest_waiter() {
        let fake = Arc::new(Fake::default());
        let mut pool = Pool::default();
        let Taken::Wait(mut gone) = pool.take_or_wait(&key("f")) else {
            panic!("nothing idle yet");
        };
        let Taken::Wait(mut first) = pool.take_or_wait(&key("f")) else {
            panic!("nothing idle yet");
        };
        let Taken::Wait(mut second) = pool.take_or_wait(&key("f")) else {
            panic!("nothing idle yet");
        };
        let Taken::Wait(mut other) = pool.take_or_wait(&key("g")) else {
            panic!("nothing idle yet");
        };
        gone.close(); // that invocation got a cold-start slot
        pool.put(env("f", 1, Arc::clone(&fake), Duration::ZERO));
        assert_eq!(first.try_recv().unwrap().id, 1);
        assert!(second.try_recv().is_err());
        pool.put(env("f", 2, Arc::clone(&fake), Duration::ZERO));
        assert_eq!(second.try_recv().unwrap().id, 2);
        assert!(other.try_recv().is_err());
        assert_eq!(pool.len(), 0, "handed over, not idle");
        // Without waiters, environments go idle; the most recently used is taken first.
        pool.put(env("f", 3, Arc::clone(&fake), Duration::ZERO));
        pool.put(env("f", 4, Arc::clone(&fake), Duration::ZERO));
        assert_eq!(pool.len(), 2);
        match pool.take_or_wait(&key("f")) {
            Taken::Warm(e) => assert_eq!(e.id, 4),
            Taken::Wait(_) => panic!("an idle environment was there"),
        }
        drop(pool);
        assert!(other.try_recv().is_err(), "the line closes with the pool");
    }

    #[test]
    fn expired_and_stale_environments_leave_the_pool() {
        let fake = Arc::new(Fake::default());
        let mut pool = Pool::default();
        pool.put(env("f", 1, Arc::clone(&fake), Duration::from_secs(10)));
        pool.put(env("f", 2, Arc::clone(&fake), Duration::ZERO));
        let mut old = env("f", 3, Arc::clone(&fake), Duration::ZERO);
        old.key.revision = "r0".into();
        pool.put(old);
        let expired = pool.expired(Duration::from_secs(5), Instant::now());
        assert_eq!(expired.iter().map(|e| e.id).collect::<Vec<_>>(), [1]);
        let stale = pool.stale(&key("f"));
        assert_eq!(stale.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn the_environment_idle_the_longest_is_taken_first_whatever_its_key() {
        let fake = Arc::new(Fake::default());
        let mut pool = Pool::default();
        pool.put(env("f", 1, Arc::clone(&fake), Duration::from_secs(5)));
        pool.put(env("f", 2, Arc::clone(&fake), Duration::from_secs(1)));
        pool.put(env("g", 3, Arc::clone(&fake), Duration::from_secs(9)));
        pool.put(env("h", 4, Arc::clone(&fake), Duration::ZERO));
        let order: Vec<u32> = std::iter::from_fn(|| pool.take_least_recent())
            .map(|e| e.id)
            .collect();
        assert_eq!(order, [3, 1, 2, 4]);
        assert_eq!(pool.len(), 0);
        assert!(!pool.has_idle(&key("g")), "an emptied key is gone");
    }

    /// A key is advertised while an environment of it is idle, and for one more look after
    /// its last one was taken (it was idle during that period); then it drops out.
    #[test]
    fn advertised_keys_are_those_idle_now_or_since_the_last_look() {
        let fake = Arc::new(Fake::default());
        let mut pool = Pool::default();
        assert!(pool.advertised().is_empty());
        pool.put(env("f", 1, Arc::clone(&fake), Duration::ZERO));
        assert!(pool.has_idle(&key("f")) && !pool.has_idle(&key("g")));
        let mut seen = pool.advertised();
        seen.dedup();
        assert_eq!(seen, [key("f")]);
        let taken = pool.take(&key("f")).unwrap();
        assert!(!pool.has_idle(&key("f")));
        // Idle since the last look? No: it went idle before it, and is busy now.
        assert!(pool.advertised().is_empty());
        pool.put(taken);
        let taken = pool.take(&key("f")).unwrap();
        assert_eq!(
            pool.advertised(),
            [key("f")],
            "idle for a moment of the period"
        );
        assert!(pool.advertised().is_empty());
        // An environment handed over to a waiting invocation never went idle.
        let Taken::Wait(mut rx) = pool.take_or_wait(&key("f")) else {
            panic!("nothing idle");
        };
        pool.put(taken);
        assert_eq!(rx.try_recv().unwrap().id, 1);
        assert!(pool.advertised().is_empty());
    }
}
