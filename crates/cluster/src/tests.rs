//! Membership against an in-memory node store whose database can be cut.

use kindling_store::nodes::{Grant, GrantRecord, GrantRequest, Registration, WarmNode, fair_share};

use super::*;

/// One "database" for several nodes; `cut` makes every call of `node` fail.
#[derive(Default)]
struct FakeDb {
    nodes: Mutex<BTreeMap<String, (i64, Instant, bool)>>,
    leases: Mutex<BTreeMap<String, (Option<String>, i64)>>,
    /// (scope, node) -> (granted, demand).
    grants: Mutex<BTreeMap<(String, String), (u32, u32)>>,
    /// Advertised warm targets by node: (incarnation, targets).
    warm: Mutex<BTreeMap<String, (i64, Vec<String>)>>,
    cut: Mutex<Option<String>>,
}

struct Handle {
    db: Arc<FakeDb>,
    node: String,
}

impl Handle {
    fn check(&self) -> kindling_store::Result<()> {
        if lock(&self.db.cut).as_deref() == Some(self.node.as_str()) {
            return Err(StoreError::Invalid("cut from the database"));
        }
        Ok(())
    }
}

impl NodeStore for Handle {
    fn register_node(
        &self,
        node_id: &str,
        _: &str,
        _: u64,
    ) -> kindling_store::Result<Registration> {
        self.check()?;
        let mut nodes = lock(&self.db.nodes);
        let inc = nodes.get(node_id).map_or(1, |n| n.0 + 1);
        nodes.insert(node_id.into(), (inc, Instant::now(), true));
        Ok(Registration {
            incarnation: inc,
            db_now_ms: 0,
        })
    }
    fn heartbeat(&self, node_id: &str, inc: i64, _: u64) -> kindling_store::Result<bool> {
        self.check()?;
        let mut nodes = lock(&self.db.nodes);
        match nodes.get_mut(node_id) {
            Some(n) if n.0 == inc && n.2 => {
                n.1 = Instant::now();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    fn reap_dead_nodes(&self, dead_after_ms: i64) -> kindling_store::Result<Vec<String>> {
        self.check()?;
        let mut dead = Vec::new();
        for (id, n) in lock(&self.db.nodes).iter_mut() {
            if n.2 && n.1.elapsed() > Duration::from_millis(dead_after_ms as u64) {
                n.2 = false;
                dead.push(id.clone());
            }
        }
        for l in lock(&self.db.leases).values_mut() {
            if l.0.as_ref().is_some_and(|o| dead.contains(o)) {
                l.0 = None;
            }
        }
        lock(&self.db.grants).retain(|(_, n), _| !dead.contains(n));
        Ok(dead)
    }
    fn leave_node(&self, _: &str, _: i64) -> kindling_store::Result<()> {
        Ok(())
    }
    fn nodes(&self) -> kindling_store::Result<Vec<NodeRecord>> {
        self.check()?;
        Ok(lock(&self.db.nodes)
            .iter()
            .map(|(id, n)| NodeRecord {
                node_id: id.clone(),
                address: String::new(),
                incarnation: n.0,
                started_ms: 0,
                heartbeat_ms: 0,
                load: 0,
                alive: n.2,
                owned: 0,
                leased_events: 0,
            })
            .collect())
    }
    fn claim_resources(
        &self,
        node_id: &str,
        inc: i64,
        resources: &[String],
        share: usize,
    ) -> kindling_store::Result<Option<Vec<(String, i64)>>> {
        self.check()?;
        if lock(&self.db.nodes)
            .get(node_id)
            .is_none_or(|n| n.0 != inc || !n.2)
        {
            return Ok(None);
        }
        let mut leases = lock(&self.db.leases);
        for r in resources {
            let owned = resources
                .iter()
                .filter(|r| {
                    leases
                        .get(*r)
                        .is_some_and(|l| l.0.as_deref() == Some(node_id))
                })
                .count();
            let l = leases.entry(r.clone()).or_insert((None, 0));
            if l.0.is_none() && owned < share {
                *l = (Some(node_id.into()), l.1 + 1);
            }
        }
        Ok(Some(
            resources
                .iter()
                .filter_map(|r| {
                    let l = leases.get(r)?;
                    (l.0.as_deref() == Some(node_id)).then(|| (r.clone(), l.1))
                })
                .collect(),
        ))
    }
    fn release_resources(&self, _: &str, _: &[(String, i64)]) -> kindling_store::Result<()> {
        Ok(())
    }
    fn resource_leases(&self) -> kindling_store::Result<Vec<ResourceLease>> {
        Ok(Vec::new())
    }
    fn put_schedule_owned(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: i64,
    ) -> kindling_store::Result<bool> {
        Ok(true)
    }
    fn set_source_position_owned(
        &self,
        _: &str,
        _: &str,
        _: i64,
        _: &str,
        _: &str,
        _: i64,
    ) -> kindling_store::Result<bool> {
        Ok(true)
    }
    fn advertise_warm(
        &self,
        node_id: &str,
        inc: i64,
        targets: &[String],
    ) -> kindling_store::Result<bool> {
        self.check()?;
        if lock(&self.db.nodes)
            .get(node_id)
            .is_none_or(|n| n.0 != inc || !n.2)
        {
            return Ok(false);
        }
        lock(&self.db.warm).insert(node_id.into(), (inc, targets.to_vec()));
        Ok(true)
    }
    fn warm_nodes(&self) -> kindling_store::Result<Vec<WarmNode>> {
        self.check()?;
        let nodes = lock(&self.db.nodes);
        Ok(lock(&self.db.warm)
            .iter()
            .filter(|(id, (inc, t))| {
                !t.is_empty() && nodes.get(*id).is_some_and(|n| n.0 == *inc && n.2)
            })
            .map(|(id, (_, t))| WarmNode {
                node_id: id.clone(),
                address: format!("{id}:80"),
                targets: t.clone(),
            })
            .collect())
    }
    fn route_token(&self) -> kindling_store::Result<String> {
        Ok("token".into())
    }
    fn sync_grants(
        &self,
        node_id: &str,
        inc: i64,
        requests: &[GrantRequest],
    ) -> kindling_store::Result<Option<Vec<Grant>>> {
        self.check()?;
        let nodes = lock(&self.db.nodes);
        if nodes.get(node_id).is_none_or(|n| n.0 != inc || !n.2) {
            return Ok(None);
        }
        let live = nodes.values().filter(|n| n.2).count();
        let mut grants = lock(&self.db.grants);
        let mut out = Vec::new();
        for r in requests {
            let key = (r.scope.clone(), node_id.to_string());
            let current = grants.get(&key).map_or(0, |g| g.0);
            let others: Vec<(u32, u32)> = grants
                .iter()
                .filter(|((s, n), _)| *s == r.scope && n != node_id)
                .map(|(_, g)| *g)
                .collect();
            let held: u32 = others.iter().map(|g| g.0).sum();
            let demands: Vec<u32> = others.iter().map(|g| g.1).collect();
            let target = fair_share(r.limit, live, r.demand, &demands);
            let base = r.keep.min(current);
            let free = r.limit.saturating_sub(held + base);
            let granted = if base < target {
                base + free.min(target - base)
            } else {
                base
            };
            grants.insert(key, (granted, r.demand));
            out.push(Grant {
                scope: r.scope.clone(),
                granted,
                target,
            });
        }
        Ok(Some(out))
    }
    fn concurrency_grants(&self) -> kindling_store::Result<Vec<GrantRecord>> {
        Ok(lock(&self.db.grants)
            .iter()
            .map(|((scope, node_id), g)| GrantRecord {
                scope: scope.clone(),
                node_id: node_id.clone(),
                granted: g.0,
                demand: g.1,
                limit: 0,
            })
            .collect())
    }
}

/// A node's admission as the grant rounds see it: a fixed demand, nothing in flight.
#[derive(Default)]
struct FakeTable {
    demand: std::sync::atomic::AtomicU32,
    /// (granted, last fair share)
    grant: Mutex<(u32, Option<u32>)>,
}

impl GrantTable for FakeTable {
    fn round(&self) -> Vec<GrantRequest> {
        let mut g = lock(&self.grant);
        if let Some(t) = g.1 {
            g.0 = g.0.min(t);
        }
        vec![GrantRequest {
            scope: "unreserved".into(),
            limit: 10,
            demand: self.demand.load(Ordering::Relaxed),
            keep: g.0,
        }]
    }
    fn ask(&self, _: &str) -> Option<GrantRequest> {
        let g = lock(&self.grant);
        Some(GrantRequest {
            scope: "unreserved".into(),
            limit: 10,
            demand: self.demand.load(Ordering::Relaxed),
            keep: g.0,
        })
    }
    fn apply(&self, grants: &[Grant], current: &dyn Fn() -> bool) {
        let mut g = lock(&self.grant);
        if current() {
            *g = (grants[0].granted, Some(grants[0].target));
        }
    }
    fn revoke(&self) {
        *lock(&self.grant) = (0, None);
    }
}

fn config(node: &str) -> ClusterConfig {
    ClusterConfig::new(
        node,
        "127.0.0.1:1",
        Duration::from_millis(20),
        Duration::from_millis(400),
    )
}

async fn node(db: &Arc<FakeDb>, id: &str) -> Cluster {
    let store = Arc::new(Handle {
        db: Arc::clone(db),
        node: id.into(),
    });
    Cluster::join(store, config(id), Arc::new(|| 0))
        .await
        .expect("join")
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_node_fences_itself_before_the_others_take_its_resources() {
    let db = Arc::new(FakeDb::default());
    let a = node(&db, "a").await;
    let b = node(&db, "b").await;
    let _ha = a.start(std::future::pending());
    let _hb = b.start(std::future::pending());
    let ids = vec!["m1".to_string(), "m2".to_string()];
    // A alone at first: it takes both (the share counts live nodes once B's heartbeat ran).
    until("b to see two nodes", || {
        b.inner.alive_nodes.load(Ordering::Acquire) == 2
    })
    .await;
    until("a to see two nodes", || {
        a.inner.alive_nodes.load(Ordering::Acquire) == 2
    })
    .await;
    let owned_a = a.owned("esm", &ids).await;
    let owned_b = b.owned("esm", &ids).await;
    assert_eq!(owned_a.len(), 1, "{owned_a:?}");
    assert_eq!(owned_b.len(), 1, "{owned_b:?}");
    let (a_res, a_epoch) = owned_a.iter().next().map(|(k, v)| (k.clone(), *v)).unwrap();

    *lock(&db.cut) = Some("a".into());
    let cut = Instant::now();
    // A stops by itself (fence_after = 200 ms after its last heartbeat) ...
    until("a to fence itself", || !a.healthy()).await;
    let fenced = cut.elapsed();
    assert!(fenced < Duration::from_secs(2), "fenced after {fenced:?}");
    assert!(!a.still_owns("esm", &a_res, a_epoch));
    assert!(a.owned("esm", &ids).await.is_empty());
    // ... and B gets A's resource, with a higher epoch, only once A had stopped: whenever B
    // owns it, A (still cut) does not consider itself healthy.
    let mut taken = BTreeMap::new();
    until_async(&b, &ids, &mut taken).await;
    assert!(!a.healthy(), "b took over while a still took work");
    assert!(taken[&a_res] > a_epoch);

    // Reconnected, A learns it was declared dead, registers again and owns nothing.
    *lock(&db.cut) = None;
    until("a to be healthy again", || a.healthy()).await;
    assert!(a.owned("esm", &ids).await.is_empty());
    assert!(b.owned("esm", &ids).await.len() == 2);
}

async fn until_async(b: &Cluster, ids: &[String], out: &mut BTreeMap<String, i64>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        *out = b.owned("esm", ids).await;
        if out.len() == 2 {
            return;
        }
        assert!(Instant::now() < deadline, "b never took a's resource");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_single_node_is_always_healthy_and_owns_everything() {
    let c = Cluster::single("n", "127.0.0.1:1", Arc::new(|| 3));
    assert!(c.healthy() && !c.is_shared());
    let owned = c.owned("schedule", &["x".to_string()]).await;
    assert_eq!(owned.get("x"), Some(&0));
    let view = c.view().await.unwrap();
    assert_eq!(view.mode, "single");
    assert_eq!(view.nodes[0].load, 3);
}

#[tokio::test]
async fn grants_follow_the_demand_and_a_dead_node_gives_its_slots_back() {
    let db = Arc::new(FakeDb::default());
    let nodes = [
        node(&db, "a").await,
        node(&db, "b").await,
        node(&db, "c").await,
    ];
    let tables: Vec<Arc<FakeTable>> = (0..3).map(|_| Arc::new(FakeTable::default())).collect();
    for (n, t) in nodes.iter().zip(&tables) {
        n.set_grant_table(Arc::clone(t) as Arc<dyn GrantTable>);
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tasks: Vec<_> = nodes.iter().map(|n| n.start(stop(rx.clone()))).collect();
    let total = || -> u32 { lock(&db.grants).values().map(|g| g.0).sum() };
    // Idle: an equal part each.
    until("idle shares", || {
        tables.iter().all(|t| lock(&t.grant).0 == 3)
    })
    .await;
    // All demand on A: it ends up with the whole limit, never more in total.
    tables[0].demand.store(50, Ordering::Relaxed);
    until("A holds the limit", || {
        assert!(total() <= 10);
        lock(&tables[0].grant).0 == 10
    })
    .await;
    // The slow path takes only free slots: nothing is free now.
    tables[1].demand.store(1, Ordering::Relaxed);
    nodes[1].ask_grant("unreserved".into()).await;
    assert!(total() <= 10);
    // A is cut from the database: fenced, then declared dead; its slots go to B.
    *lock(&db.cut) = Some("a".into());
    tables[1].demand.store(50, Ordering::Relaxed);
    until("B holds the limit after A died", || {
        assert!(total() <= 10);
        lock(&tables[1].grant).0 == 10
    })
    .await;
    assert!(!nodes[0].healthy());
    let _ = tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
}

/// A node's warm targets reach the others with their heartbeats; a dead node's stop counting
/// once it is declared dead, and a fenced node routes nothing (its copy may be stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_targets_route_to_live_nodes_only() {
    let db = Arc::new(FakeDb::default());
    let a = node(&db, "a").await;
    let b = node(&db, "b").await;
    assert_eq!(b.route_token(), Some("token"));
    let warm = Arc::new(Mutex::new(vec!["f:1:r".to_string()]));
    a.set_warm_source({
        let warm = Arc::clone(&warm);
        Arc::new(move || lock(&warm).clone())
    });
    let _ha = a.start(std::future::pending());
    let _hb = b.start(std::future::pending());
    until("b to route f to a", || {
        b.route("f:1:r")
            .is_some_and(|p| p.node_id == "a" && p.address == "a:80")
    })
    .await;
    assert!(a.route("f:1:r").is_none(), "never to itself");
    assert!(b.route("g:1:r").is_none());
    // The set changes: written again, read again.
    lock(&warm).push("g:1:r".into());
    until("b to route g to a", || b.route("g:1:r").is_some()).await;
    assert_eq!(b.directory().advertised(), vec![("a".to_string(), 2)]);

    // B is cut from the database: fenced, it routes nothing.
    *lock(&db.cut) = Some("b".into());
    until("b to fence itself", || !b.healthy()).await;
    assert!(b.route("f:1:r").is_none(), "a fenced node routes nothing");
    // A is cut instead: B, back, stops routing to it once it declared A dead.
    *lock(&db.cut) = Some("a".into());
    until("b to forget a", || {
        b.healthy() && b.route("f:1:r").is_none() && b.directory().advertised().is_empty()
    })
    .await;
}
