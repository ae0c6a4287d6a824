//! Connection slots: at most [`EdgeConfig::max_connections`](crate::EdgeConfig) open
//! connections, at most [`EdgeConfig::max_connections_per_ip`](crate::EdgeConfig) from one
//! remote address, and room made for a new connection by closing the ones idle the longest.
//!
//! Every connection is either *busy* (from the moment its request head is complete until
//! its response body is done) or *idle* (waiting for its first head, or between requests,
//! since some instant). When a connection arrives and every slot is taken, the connection
//! idle the longest is asked to close ([`Slot::shed_requested`]) and the new one is served
//! as soon as it is gone, as HTTP servers shed idle keep-alive connections; a busy
//! connection is never chosen. Without this, idle connections (a client pool left open, or
//! connections opened and never used) would hold every slot and keep new clients waiting in
//! the kernel's backlog until the header timeout closed them.
//!
//! Remote peers (not the loopback) have a cap of their own, so one host cannot hold every
//! slot: a connection beyond it closes that host's own connection idle the longest, or is
//! refused when all of them are busy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// [`Tracker::state`] of a connection with a request in progress.
const BUSY: u64 = u64::MAX;

/// Every connection's slot.
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    per_ip: usize,
    epoch: Instant,
    table: Mutex<Table>,
    /// Set while a new connection waits for a slot: connections going idle then say so.
    starved: AtomicBool,
    became_idle: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Arc<Tracker>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's state, shared between its task and [`Slots`].
pub(crate) struct Tracker {
    /// Microseconds since [`Slots::epoch`] at which the connection became idle, or [`BUSY`].
    state: AtomicU64,
    shed: AtomicBool,
    shed_wake: Notify,
    /// The remote address counted against the per-address cap (`None` for the loopback).
    counted_ip: Option<IpAddr>,
}

/// What became of a connection asking for a slot.
pub(crate) enum Admission {
    Admitted(Slot),
    /// Its address holds its cap of connections, all busy: close it.
    Refused,
}

impl Slots {
    /// `per_ip`: connections at once from one remote address (0: no cap).
    pub(crate) fn new(max: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            per_ip,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            starved: AtomicBool::new(false),
            became_idle: Notify::new(),
        })
    }

    /// A slot for a connection from `ip`: at once when one is free; otherwise the connection
    /// idle the longest is asked to close and this waits until a slot is free (or `stop`
    /// resolves: `None`).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Admission> {
        let counted_ip =
            (self.per_ip > 0 && !ip.is_loopback() && !is_mapped_loopback(ip)).then_some(ip);
        if let Some(ip) = counted_ip {
            let held = self.lock().per_ip.get(&ip).copied().unwrap_or(0);
            if held >= self.per_ip && !self.shed_oldest(Some(ip)) {
                return Some(Admission::Refused);
            }
        }
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => self.wait_for_room(stop).await?,
        };
        Some(Admission::Admitted(self.register(counted_ip, permit)))
    }

    /// Every slot is taken: closes idle connections, oldest first, until one is free.
    async fn wait_for_room(
        self: &Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<OwnedSemaphorePermit> {
        tokio::pin!(stop);
        let permit = loop {
            self.starved.store(true, Ordering::SeqCst);
            self.shed_oldest(None);
            tokio::select! {
                () = &mut stop => break None,
                p = Arc::clone(&self.permits).acquire_owned() => break p.ok(),
                // A busy connection went idle: it is now the one to close.
                () = self.became_idle.notified() => {}
            }
        };
        self.starved.store(false, Ordering::SeqCst);
        permit
    }

    /// Asks the connection idle the longest (of `ip`'s, or of all) to close; `false` when
    /// every one is busy or already closing.
    fn shed_oldest(&self, ip: Option<IpAddr>) -> bool {
        let table = self.lock();
        let oldest = table
            .conns
            .iter()
            .filter(|(_, t)| ip.is_none() || t.counted_ip == ip)
            .filter(|(_, t)| !t.shed.load(Ordering::Relaxed))
            .filter_map(|(id, t)| {
                let since = t.state.load(Ordering::SeqCst);
                (since != BUSY).then_some(((since, *id), t))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, t)| Arc::clone(t));
        drop(table);
        let Some(tracker) = oldest else {
            return false;
        };
        tracker.shed.store(true, Ordering::Relaxed);
        tracker.shed_wake.notify_one();
        true
    }

    fn register(
        self: &Arc<Self>,
        counted_ip: Option<IpAddr>,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        let tracker = Arc::new(Tracker {
            state: AtomicU64::new(self.now()),
            shed: AtomicBool::new(false),
            shed_wake: Notify::new(),
            counted_ip,
        });
        let mut table = self.lock();
        let id = table.next_id;
        table.next_id += 1;
        table.conns.insert(id, Arc::clone(&tracker));
        if let Some(ip) = counted_ip {
            *table.per_ip.entry(ip).or_default() += 1;
        }
        Slot {
            slots: Arc::clone(self),
            id,
            tracker,
            _permit: permit,
        }
    }

    /// Waits until every slot is free (every connection gone).
    pub(crate) async fn drained(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(BUSY - 1)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `::ffff:127.0.0.1` (a dual-stack listener's view of an IPv4 loopback peer).
fn is_mapped_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

/// A connection's hold on a slot; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    tracker: Arc<Tracker>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Resolves when the server asks this connection to close to make room.
    pub(crate) async fn shed_requested(&self) {
        self.tracker.shed_wake.notified().await;
    }

    /// Whether a request is in progress.
    pub(crate) fn is_busy(&self) -> bool {
        self.tracker.state.load(Ordering::SeqCst) == BUSY
    }

    /// Marks a request in progress until the returned guard is dropped (with the response
    /// body, once it is sent).
    pub(crate) fn busy(&self) -> Busy {
        self.tracker.state.store(BUSY, Ordering::SeqCst);
        Busy {
            slots: Arc::clone(&self.slots),
            tracker: Arc::clone(&self.tracker),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.slots.lock();
        table.conns.remove(&self.id);
        if let Some(ip) = self.tracker.counted_ip
            && let Some(n) = table.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                table.per_ip.remove(&ip);
            }
        }
    }
}

/// A request in progress on a connection (see [`Slot::busy`]).
pub(crate) struct Busy {
    slots: Arc<Slots>,
    tracker: Arc<Tracker>,
}

impl Busy {
    /// Nothing: lets a closure own the guard (and drop it with itself).
    pub(crate) fn keep(&self) {}
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.tracker.state.store(self.slots.now(), Ordering::SeqCst);
        if self.slots.starved.load(Ordering::SeqCst) {
            self.slots.became_idle.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8));

    async fn admit(slots: &Arc<Slots>, ip: IpAddr) -> Option<Slot> {
        match tokio::time::timeout(
            Duration::from_millis(100),
            slots.admit(ip, std::future::pending()),
        )
        .await
        .expect("admitted or refused at once")
        {
            Some(Admission::Admitted(slot)) => Some(slot),
            Some(Admission::Refused) => None,
            None => unreachable!("never stopped"),
        }
    }

    /// Whether `slot` was asked to close.
    async fn shed(slot: &Slot) -> bool {
        tokio::time::timeout(Duration::from_millis(1), slot.shed_requested())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_full_server_closes_the_connection_idle_the_longest_never_a_busy_one() {
        let slots = Slots::new(3, 0);
        let a = admit(&slots, LOCAL).await.unwrap();
        let b = admit(&slots, LOCAL).await.unwrap();
        let c = admit(&slots, LOCAL).await.unwrap();
        // `a` is busy, `b` idle since before `c`.
        let request = a.busy();
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.admit(LOCAL, std::future::pending()).await })
        };
        tokio::time::timeout(Duration::from_secs(1), b.shed_requested())
            .await
            .expect("b, idle the longest, is asked to close");
        assert!(!shed(&a).await);
        assert!(!shed(&c).await);
        assert!(!waiting.is_finished(), "b has not closed yet");
        drop(b);
        let d = match tokio::time::timeout(Duration::from_secs(1), waiting).await {
            Ok(Ok(Some(Admission::Admitted(slot)))) => slot,
            _ => panic!("admitted once b closed"),
        };
        // All busy: the next one waits until one goes idle, then closes that one.
        let _c_busy = c.busy();
        let _d_busy = d.busy();
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.admit(LOCAL, std::future::pending()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!shed(&a).await && !shed(&c).await && !shed(&d).await);
        drop(request);
        tokio::time::timeout(Duration::from_secs(1), a.shed_requested())
            .await
            .expect("a, idle again, is asked to close");
        drop(a);
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(1), waiting).await,
            Ok(Ok(Some(Admission::Admitted(_))))
        ));
    }

    #[tokio::test]
    async fn one_remote_address_holds_at_most_its_cap_and_the_loopback_none() {
        let slots = Slots::new(100, 2);
        let r1 = admit(&slots, REMOTE).await.unwrap();
        let r2 = admit(&slots, REMOTE).await.unwrap();
        let _b1 = r1.busy();
        // The third closes its own idle connection; other addresses are not touched.
        let other = admit(&slots, OTHER).await.unwrap();
        let r3 = admit(&slots, REMOTE).await.unwrap();
        assert!(shed(&r2).await);
        assert!(!shed(&other).await && !shed(&r1).await);
        drop(r2);
        let _b3 = r3.busy();
        assert!(admit(&slots, REMOTE).await.is_none(), "all busy: refused");
        // The loopback has no cap of its own.
        let local: Vec<_> = admit_n(&slots, LOCAL, 10).await;
        assert_eq!(local.len(), 10);
    }

    async fn admit_n(slots: &Arc<Slots>, ip: IpAddr, n: usize) -> Vec<Slot> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(admit(slots, ip).await.unwrap());
        }
        v
    }
}
