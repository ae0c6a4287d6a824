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
//! refused when all of them are busy or closing. A close request is not counted as room: the
//! host holds at most its cap of connections not asked to close, and twice its cap in all
//! (one asked to close goes once its answer is sent, or once its client has read nothing of
//! it for the connection's flush limit, after at most a short lingering close while its
//! client still sends).

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// [`Tracker::state`] of a connection with a request in progress.
const BUSY: u64 = u64::MAX;

/// While a new connection waits for a slot, how often the connections are looked over again
/// (a wake-up missed by the relaxed orderings of the request path is made up for here).
const RESCAN: Duration = Duration::from_millis(50);

/// A connection asked to close that is still there after this long no longer keeps another
/// one from being asked (one flushing a large answer to a slow reader, or in a slow head):
/// only close requests younger than this hold the next one back.
const CLOSE_STALE: Duration = Duration::from_secs(1);

/// Every connection's slot.
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    per_ip: usize,
    /// The loopback counted against the per-address cap like any remote address (tests only:
    /// their clients are all on the loopback).
    loopback_counted: bool,
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
    /// Connections asked to close that have neither closed nor started a request since.
    closing: usize,
}

/// One connection's state, shared between its task and [`Slots`]; taken once at registration,
/// so the request path touches only this connection's own cache lines.
pub(crate) struct Tracker {
    slots: Arc<Slots>,
    /// Microseconds since [`Slots::epoch`] at which the connection became idle, or [`BUSY`].
    state: AtomicU64,
    /// Asked to close (never asked twice).
    shed: AtomicBool,
    /// Counted in [`Table::closing`] (asked, not yet gone nor busy again).
    outstanding: AtomicBool,
    /// Microseconds since [`Slots::epoch`] at which it was asked to close (under the table's
    /// lock).
    asked_at: AtomicU64,
    shed_wake: AtomicWaker,
    /// The remote address (an IPv6 peer's /64) counted against the per-address cap (`None` for
    /// the loopback).
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
        Self::build(max, per_ip, false)
    }

    fn build(max: usize, per_ip: usize, loopback_counted: bool) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            per_ip,
            loopback_counted,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            starved: AtomicBool::new(false),
            became_idle: Notify::new(),
        })
    }

    /// As [`Slots::new`], with the loopback's connections capped like a remote address's.
    #[cfg(test)]
    pub(crate) fn counting_loopback(max: usize, per_ip: usize) -> Arc<Self> {
        Self::build(max, per_ip, true)
    }

    /// A slot for a connection from `ip`: at once when one is free; otherwise the connection
    /// idle the longest is asked to close and this waits until a slot is free (or `stop`
    /// resolves: `None`).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Admission> {
        let counted_ip = (self.per_ip > 0)
            .then(|| address_key(ip, self.loopback_counted))
            .flatten();
        if let Some(ip) = counted_ip {
            let (held, closing) = {
                let table = self.lock();
                let held = table.per_ip.get(&ip).copied().unwrap_or(0);
                let closing = if held >= self.per_ip {
                    table
                        .conns
                        .values()
                        .filter(|t| t.counted_ip == Some(ip) && t.shed.load(Ordering::Acquire))
                        .count()
                } else {
                    0
                };
                (held, closing)
            };
            // A close request is not room until the connection is gone: above the cap only
            // while fewer than the cap are not closing, and never past twice the cap.
            if held >= self.per_ip
                && (held >= self.per_ip.saturating_mul(2)
                    || (held - closing >= self.per_ip && !self.shed_oldest(Some(ip))))
            {
                return Some(Admission::Refused);
            }
        }
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => self.wait_for_room(stop).await?,
        };
        Some(Admission::Admitted(self.register(counted_ip, permit)))
    }

    /// Every slot is taken: closes idle connections, oldest first, one at a time, until one
    /// is free.
    async fn wait_for_room(
        self: &Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<OwnedSemaphorePermit> {
        tokio::pin!(stop);
        self.starved.store(true, Ordering::SeqCst);
        let permit = loop {
            let ask = {
                let table = self.lock();
                table.closing == 0 || !self.fresh_close(&table)
            };
            if ask {
                self.shed_oldest(None);
            }
            tokio::select! {
                () = &mut stop => break None,
                p = Arc::clone(&self.permits).acquire_owned() => break p.ok(),
                // A busy connection went idle (it is now the one to close), or the one asked
                // started a request.
                () = self.became_idle.notified() => {}
                () = tokio::time::sleep(RESCAN) => {}
            }
        };
        self.starved.store(false, Ordering::SeqCst);
        permit
    }

    /// Whether a close request younger than [`CLOSE_STALE`] is outstanding: a stale one (a
    /// connection still flushing) does not hold up the next newcomer.
    fn fresh_close(&self, table: &Table) -> bool {
        let stale = u64::try_from(CLOSE_STALE.as_micros()).unwrap_or(u64::MAX);
        let fresh_after = self.now().saturating_sub(stale);
        table.conns.values().any(|t| {
            t.outstanding.load(Ordering::Relaxed)
                && t.asked_at.load(Ordering::Relaxed) > fresh_after
        })
    }

    /// Asks the connection idle the longest (of `ip`'s, or of all) to close; `false` when
    /// every one is busy or already closing.
    fn shed_oldest(&self, ip: Option<IpAddr>) -> bool {
        let mut table = self.lock();
        let oldest = table
            .conns
            .iter()
            .filter(|(_, t)| ip.is_none() || t.counted_ip == ip)
            .filter(|(_, t)| !t.shed.load(Ordering::Relaxed))
            .filter_map(|(id, t)| {
                let since = t.state.load(Ordering::Acquire);
                (since != BUSY).then_some(((since, *id), t))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, t)| Arc::clone(t));
        let Some(tracker) = oldest else {
            return false;
        };
        table.closing += 1;
        tracker.asked_at.store(self.now(), Ordering::Relaxed);
        tracker.outstanding.store(true, Ordering::Relaxed);
        drop(table);
        tracker.shed.store(true, Ordering::Release);
        tracker.shed_wake.wake();
        true
    }

    fn register(
        self: &Arc<Self>,
        counted_ip: Option<IpAddr>,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        let tracker = Arc::new(Tracker {
            slots: Arc::clone(self),
            state: AtomicU64::new(self.now()),
            shed: AtomicBool::new(false),
            outstanding: AtomicBool::new(false),
            asked_at: AtomicU64::new(0),
            shed_wake: AtomicWaker::new(),
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
            id,
            tracker,
            started: AtomicBool::new(false),
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

/// The key `ip` is counted under for the per-address cap: IPv4-mapped addresses as IPv4, an
/// IPv6 peer by its /64 (a host is commonly given a whole /64); `None` for the loopback
/// unless `loopback_counted`.
fn address_key(ip: IpAddr, loopback_counted: bool) -> Option<IpAddr> {
    let ip = ip.to_canonical();
    if ip.is_loopback() && !loopback_counted {
        return None;
    }
    Some(match ip {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 @ IpAddr::V4(_) => v4,
    })
}

/// A connection's hold on a slot; dropping it frees the slot.
pub(crate) struct Slot {
    id: u64,
    tracker: Arc<Tracker>,
    /// A request head has completed on this connection.
    started: AtomicBool,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Resolves when the server asks this connection to close to make room (at once if it
    /// already has).
    pub(crate) async fn shed_requested(&self) {
        let tracker = &self.tracker;
        poll_fn(|cx| {
            if tracker.shed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            tracker.shed_wake.register(cx.waker());
            if tracker.shed.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether the server asked this connection to close.
    pub(crate) fn was_shed(&self) -> bool {
        self.tracker.shed.load(Ordering::Acquire)
    }

    /// Whether a request head ever completed on this connection.
    pub(crate) fn has_started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Marks a request in progress until the returned guard is dropped (with the response
    /// body, once it is sent).
    pub(crate) fn busy(&self) -> Busy {
        let tracker = &self.tracker;
        tracker.state.store(BUSY, Ordering::Release);
        if !self.started.load(Ordering::Relaxed) {
            self.started.store(true, Ordering::Relaxed);
        }
        if tracker.outstanding.load(Ordering::Relaxed) {
            // Asked to close, it answers a request first: another one is to be asked.
            let slots = &tracker.slots;
            let mut table = slots.lock();
            if tracker.outstanding.swap(false, Ordering::Relaxed) {
                table.closing -= 1;
            }
            drop(table);
            if slots.starved.load(Ordering::Relaxed) {
                slots.became_idle.notify_one();
            }
        }
        Busy {
            tracker: Arc::clone(tracker),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.tracker.slots.lock();
        table.conns.remove(&self.id);
        if self.tracker.outstanding.swap(false, Ordering::Relaxed) {
            table.closing -= 1;
        }
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
    tracker: Arc<Tracker>,
}

impl Busy {
    /// Nothing: lets a closure own the guard (and drop it with itself).
    pub(crate) fn keep(&self) {}
}

impl Drop for Busy {
    fn drop(&mut self) {
        let slots = &self.tracker.slots;
        self.tracker.state.store(slots.now(), Ordering::Release);
        // Relaxed: a wake-up missed here is made up for by the waiter's periodic re-scan.
        if slots.starved.load(Ordering::Relaxed) {
            slots.became_idle.notify_one();
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

    #[tokio::test]
    async fn ipv6_peers_count_by_their_slash_64_and_mapped_ipv4_as_ipv4() {
        let slots = Slots::new(100, 2);
        let v6 =
            |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        let a = admit(&slots, v6(1)).await.unwrap();
        let b = admit(&slots, v6(2)).await.unwrap();
        let (_a, _b) = (a.busy(), b.busy());
        assert!(
            admit(&slots, v6(3)).await.is_none(),
            "one /64: its cap reached"
        );
        let next = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(admit(&slots, next).await.is_some(), "another /64");
        let r1 = admit(&slots, REMOTE).await.unwrap();
        let r2 = admit(&slots, REMOTE).await.unwrap();
        let (_r1, _r2) = (r1.busy(), r2.busy());
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert!(admit(&slots, mapped).await.is_none(), "the same IPv4 host");
        let mapped_loopback = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert_eq!(admit_n(&slots, mapped_loopback, 5).await.len(), 5);
    }

    #[tokio::test]
    async fn one_close_at_a_time_and_another_when_the_one_asked_starts_a_request() {
        let slots = Slots::new(3, 0);
        let a = admit(&slots, LOCAL).await.unwrap();
        let b = admit(&slots, LOCAL).await.unwrap();
        let c = admit(&slots, LOCAL).await.unwrap();
        let (ba, bb, bc) = (a.busy(), b.busy(), c.busy());
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.admit(LOCAL, std::future::pending()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(ba);
        tokio::time::timeout(Duration::from_secs(1), a.shed_requested())
            .await
            .expect("a, idle, is asked to close");
        // b goes idle while a's close is outstanding: not asked as well.
        drop(bb);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!shed(&b).await, "one close at a time");
        // a completes a head instead of closing: b is asked now.
        let _ba = a.busy();
        tokio::time::timeout(Duration::from_secs(1), b.shed_requested())
            .await
            .expect("b asked once a turned busy");
        assert!(!shed(&c).await);
        drop(b);
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(1), waiting).await,
            Ok(Ok(Some(Admission::Admitted(_))))
        ));
        drop(bc);
    }

    #[tokio::test]
    async fn a_stale_close_request_does_not_hold_up_the_next_newcomer() {
        let slots = Slots::new(3, 0);
        let a = admit(&slots, LOCAL).await.unwrap();
        let b = admit(&slots, LOCAL).await.unwrap();
        let c = admit(&slots, LOCAL).await.unwrap();
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.admit(LOCAL, std::future::pending()).await })
        };
        tokio::time::timeout(Duration::from_secs(1), a.shed_requested())
            .await
            .expect("a, idle the longest, is asked to close");
        // a never goes (a flush to a client that reads nothing): b is asked once a's request
        // is stale, and closes at once.
        tokio::time::timeout(CLOSE_STALE * 2, b.shed_requested())
            .await
            .expect("b asked once a's close request is stale");
        drop(b);
        let d = match tokio::time::timeout(Duration::from_secs(1), waiting).await {
            Ok(Ok(Some(Admission::Admitted(slot)))) => slot,
            _ => panic!("admitted once b closed"),
        };
        // The next newcomer: only a's stale request is outstanding, c is asked at once (not
        // CLOSE_STALE after b was asked).
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.admit(LOCAL, std::future::pending()).await })
        };
        tokio::time::timeout(CLOSE_STALE / 4, c.shed_requested())
            .await
            .expect("c asked at once");
        assert!(!shed(&d).await);
        drop(c);
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(1), waiting).await,
            Ok(Ok(Some(Admission::Admitted(_))))
        ));
        drop(a);
    }

    #[tokio::test]
    async fn a_close_request_is_not_room_for_a_remote_address() {
        let slots = Slots::new(100, 2);
        let r1 = admit(&slots, REMOTE).await.unwrap();
        let r2 = admit(&slots, REMOTE).await.unwrap();
        // r1 asked to close (it never goes; say it flushes to a reader that never reads).
        let r3 = admit(&slots, REMOTE).await.unwrap();
        assert!(shed(&r1).await);
        // r2, r3 not closing and both busy: refused, r1's close request is no room.
        let (_b2, _b3) = (r2.busy(), r3.busy());
        assert!(
            admit(&slots, REMOTE).await.is_none(),
            "r1 closing is no room"
        );
        drop(_b3);
        // r3 idle: asked to close, the newcomer admitted (2 not closing, 4 held).
        let r4 = admit(&slots, REMOTE).await.unwrap();
        assert!(shed(&r3).await);
        let _b4 = r4.busy();
        drop(_b2);
        // Twice the cap held: refused even with r2 idle, until a closing one is gone.
        assert!(
            admit(&slots, REMOTE).await.is_none(),
            "twice the cap at most"
        );
        assert!(!shed(&r2).await);
        drop(r1);
        let _r5 = admit(&slots, REMOTE).await.unwrap();
        assert!(shed(&r2).await);
    }

    async fn admit_n(slots: &Arc<Slots>, ip: IpAddr, n: usize) -> Vec<Slot> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(admit(slots, ip).await.unwrap());
        }
        v
    }
}
