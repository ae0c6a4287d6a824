//! Routing synchronous invokes to the node that holds warm environments for their target.
//!
//! Each node advertises in the database the invoke targets (function, version, code revision:
//! the scheduler's pool key as a string) for which it holds warm environments that were idle
//! at some moment of the last publication period; the set is written only when it changes, at
//! most every [`PUBLISH_EVERY`], off the invocations' path. Every node keeps a copy of the
//! others' sets ([`Directory`]), refreshed with its heartbeats. An invocation that finds no
//! idle environment on its own node asks [`Directory::pick`] for a live peer advertising its
//! target, without a database round trip; the caller forwards the request there and, when the
//! peer declines (no idle environment left: it is "full") or cannot be reached, runs it
//! locally after all. A peer that declined is not asked again for that target, and one that
//! could not be reached not at all, for a while ([`Directory::declined`],
//! [`Directory::unreachable`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kindling_store::nodes::WarmNode;

/// How often a node looks whether its set of warm targets changed (and writes it if so).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// The current warm targets of this node (the scheduler's), sorted or not.
pub type WarmFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// A node invokes may be forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: String,
    /// `host:port` of its API.
    pub address: String,
}

/// Counters of forwarded invokes, for `/metrics`.
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Invokes this node forwarded and a peer ran.
    pub forwarded: AtomicU64,
    /// Forwarded invokes a peer declined (run here instead).
    pub declined: AtomicU64,
    /// Forwards that could not reach their peer (run here instead).
    pub unreachable: AtomicU64,
    /// Forwarded invokes whose peer failed after it had the request (the caller got an error).
    pub failed: AtomicU64,
    /// Invokes other nodes forwarded here that ran here.
    pub served_for_peers: AtomicU64,
    /// Invokes other nodes forwarded here that found no idle environment (declined).
    pub declined_for_peers: AtomicU64,
}

/// Peers not to ask until an instant: a whole node (unreachable), or one target of it
/// (declined).
#[derive(Default)]
struct Avoid {
    nodes: HashMap<String, Instant>,
    targets: HashMap<String, HashMap<String, Instant>>,
}

impl Avoid {
    fn avoids(&self, peer: &Peer, target: &str, now: Instant) -> bool {
        self.nodes
            .get(&peer.node_id)
            .is_some_and(|until| now < *until)
            || self
                .targets
                .get(&peer.node_id)
                .and_then(|t| t.get(target))
                .is_some_and(|until| now < *until)
    }

    fn prune(&mut self, now: Instant) {
        self.nodes.retain(|_, until| now < *until);
        for t in self.targets.values_mut() {
            t.retain(|_, until| now < *until);
        }
        self.targets.retain(|_, t| !t.is_empty());
    }
}

/// This node's copy of the other nodes' warm targets, and the routing decision.
pub struct Directory {
    me: String,
    by_target: RwLock<HashMap<String, Vec<Arc<Peer>>>>,
    /// Targets advertised per node, as last refreshed (for `/metrics`).
    counts: RwLock<Vec<(String, usize)>>,
    avoid: Mutex<Avoid>,
    /// Spreads choices over several peers advertising one target.
    next: AtomicUsize,
    /// How long a peer that declined a target is not asked again for it.
    declined_for: Duration,
    /// How long a peer that could not be reached is not asked at all.
    unreachable_for: Duration,
    pub stats: RouteStats,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Directory {
    pub fn new(me: &str, declined_for: Duration, unreachable_for: Duration) -> Self {
        Self {
            me: me.to_string(),
            by_target: RwLock::new(HashMap::new()),
            counts: RwLock::new(Vec::new()),
            avoid: Mutex::new(Avoid::default()),
            next: AtomicUsize::new(0),
            declined_for,
            unreachable_for,
            stats: RouteStats::default(),
        }
    }

    /// Replaces the copy with the live nodes' sets as just read (this node's own left out).
    pub fn refresh(&self, nodes: Vec<WarmNode>) {
        let mut by_target: HashMap<String, Vec<Arc<Peer>>> = HashMap::new();
        let mut counts = Vec::new();
        for n in nodes {
            if n.node_id == self.me {
                continue;
            }
            counts.push((n.node_id.clone(), n.targets.len()));
            let peer = Arc::new(Peer {
                node_id: n.node_id,
                address: n.address,
            });
            for t in n.targets {
                by_target.entry(t).or_default().push(Arc::clone(&peer));
            }
        }
        *self
            .by_target
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = by_target;
        *self
            .counts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
        lock(&self.avoid).prune(Instant::now());
    }

    /// Forgets every other node's set (this node cannot tell who is alive any more).
    pub fn clear(&self) {
        self.refresh(Vec::new());
    }

    /// A live peer advertising `target` that has not recently declined it nor been
    /// unreachable; several are taken in turn. `None`: run locally.
    pub fn pick(&self, target: &str) -> Option<Arc<Peer>> {
        let map = self
            .by_target
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let peers = map.get(target)?;
        let now = Instant::now();
        let avoid = lock(&self.avoid);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..peers.len())
            .map(|i| &peers[(start + i) % peers.len()])
            .find(|p| !avoid.avoids(p, target, now))
            .cloned()
    }

    /// `peer` had no idle environment for `target`: not asked for it again for a while.
    pub fn declined(&self, peer: &Peer, target: &str) {
        self.stats.declined.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + self.declined_for;
        lock(&self.avoid)
            .targets
            .entry(peer.node_id.clone())
            .or_default()
            .insert(target.to_string(), until);
    }

    /// `peer` could not be reached: not asked at all for a while (by then it is alive again,
    /// or declared dead and gone from the copy).
    pub fn unreachable(&self, peer: &Peer) {
        self.stats.unreachable.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + self.unreachable_for;
        lock(&self.avoid).nodes.insert(peer.node_id.clone(), until);
    }

    /// How many targets each other live node advertises, as this node last read it.
    pub fn advertised(&self) -> Vec<(String, usize)> {
        self.counts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A node's set as it is written: sorted, without duplicates.
pub fn normalize(mut targets: Vec<String>) -> Vec<String> {
    targets.sort_unstable();
    targets.dedup();
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, targets: &[&str]) -> WarmNode {
        WarmNode {
            node_id: id.into(),
            address: format!("{id}:1"),
            targets: targets.iter().map(|t| (*t).to_string()).collect(),
        }
    }

    fn dir() -> Directory {
        Directory::new("me", Duration::from_millis(200), Duration::from_secs(5))
    }

    #[test]
    fn a_target_goes_to_a_peer_advertising_it_never_to_this_node() {
        let d = dir();
        d.refresh(vec![
            node("a", &["f:$LATEST:r1"]),
            node("me", &["f:$LATEST:r1", "g:1:r"]),
        ]);
        assert_eq!(d.pick("f:$LATEST:r1").unwrap().node_id, "a");
        assert_eq!(d.pick("f:$LATEST:r1").unwrap().address, "a:1");
        // Another revision (an update since) or a target only this node holds: local.
        assert!(d.pick("f:$LATEST:r2").is_none());
        assert!(d.pick("g:1:r").is_none());
        assert_eq!(d.advertised(), vec![("a".to_string(), 1)]);
    }

    #[test]
    fn several_peers_are_taken_in_turn() {
        let d = dir();
        d.refresh(vec![node("a", &["f:1:r"]), node("b", &["f:1:r"])]);
        let mut seen: Vec<String> = (0..4)
            .map(|_| d.pick("f:1:r").unwrap().node_id.clone())
            .collect();
        seen.sort();
        assert_eq!(seen, ["a", "a", "b", "b"]);
    }

    #[test]
    fn a_declining_peer_is_skipped_for_that_target_for_a_while() {
        let d = Directory::new("me", Duration::from_millis(50), Duration::from_secs(5));
        d.refresh(vec![node("a", &["f:1:r", "g:1:r"])]);
        let a = d.pick("f:1:r").unwrap();
        d.declined(&a, "f:1:r");
        assert!(d.pick("f:1:r").is_none(), "a is full for f: run locally");
        assert!(d.pick("g:1:r").is_some(), "other targets still go to a");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            d.pick("f:1:r").is_some(),
            "asked again once the period is over"
        );
        assert_eq!(d.stats.declined.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_unreachable_peer_is_skipped_for_every_target_and_others_are_used() {
        let d = dir();
        d.refresh(vec![node("a", &["f:1:r", "g:1:r"]), node("b", &["f:1:r"])]);
        let a = Peer {
            node_id: "a".into(),
            address: "a:1".into(),
        };
        d.unreachable(&a);
        for _ in 0..4 {
            assert_eq!(d.pick("f:1:r").unwrap().node_id, "b");
        }
        assert!(d.pick("g:1:r").is_none());
        // A refresh that no longer lists the dead node forgets it.
        d.refresh(vec![node("b", &["f:1:r"])]);
        assert_eq!(d.pick("f:1:r").unwrap().node_id, "b");
        d.clear();
        assert!(d.pick("f:1:r").is_none());
    }

    #[test]
    fn sets_are_written_sorted_and_deduplicated() {
        assert_eq!(
            normalize(vec!["b".into(), "a".into(), "b".into()]),
            ["a".to_string(), "b".to_string()]
        );
    }
}
